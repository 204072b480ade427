// --sampling-rate Q (fedclr coordinator and fedclr simulate): mapped onto the config's sampling
// {mode: 'poisson', rate}, refused early with the flag's name when it cannot be a probability.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig } from '@fedclr/coordinator';
import { parseCoordinatorArgs } from '../src/commands/coordinator.js';
import { parseSimulateArgs, simulateCommand } from '../src/commands/simulate.js';
import { samplingFlags, samplingFromFlags } from '../src/sampling-flags.js';

test('--sampling-rate sets sampling {mode: poisson, rate}; it overrides the file and keeps its invitationWaitMs; simulate passes it on', () => {
  const s = samplingFromFlags(parseCoordinatorArgs(['--sampling-rate', '0.75']), undefined);
  assert.deepEqual(s, { mode: 'poisson', rate: 0.75 });
  assert.deepEqual(resolveConfig({ stateDir: 'x', sampling: s }).sampling, { mode: 'poisson', rate: 0.75, invitationWaitMs: 5000 });
  assert.deepEqual(samplingFromFlags(parseCoordinatorArgs(['--sampling-rate', '1']), { mode: 'poisson', rate: 0.1, invitationWaitMs: 200 }), { mode: 'poisson', rate: 1, invitationWaitMs: 200 });
  assert.deepEqual(samplingFromFlags(parseCoordinatorArgs([]), { mode: 'poisson', rate: 0.1 }), { mode: 'poisson', rate: 0.1 }, 'the file stands without the flag');
  assert.equal(samplingFromFlags(parseCoordinatorArgs([]), undefined), undefined);
  assert.deepEqual(samplingFlags(samplingFromFlags(parseSimulateArgs(['--sampling-rate', '0.5']), undefined)), ['--sampling-rate', '0.5']);
  assert.deepEqual(samplingFlags(undefined), []);
});

test('--sampling-rate: refusals name the flag; simulate refuses it with --cohort', async () => {
  for (const bad of ['0', '-0.2', '1.5', 'NaN', 'half', '']) {
    assert.throws(
      () => samplingFromFlags(parseCoordinatorArgs([`--sampling-rate=${bad}`]), undefined),
      (e: unknown) => (e as { code?: string }).code === 'FEDCLR_CLI_USAGE' && /--sampling-rate must be a number in \(0, 1\]/.test((e as Error).message),
      `'${bad}' is refused`,
    );
  }
  await assert.rejects(
    simulateCommand(['--clients', '4', '--cohort', '2', '--sampling-rate', '0.5'], () => undefined, () => undefined),
    (e: unknown) => (e as { code?: string }).code === 'FEDCLR_CLI_USAGE' && /--cohort and --sampling-rate exclude each other/.test((e as Error).message),
  );
});
