// --dp-noise, --dp-clip and --dp-central (fedclr coordinator and fedclr simulate): mapped onto
// training.clipNorm and training.dp, over --config's training block, and refused early when the
// combination cannot protect anyone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig } from '@fedclr/coordinator';
import { parseCoordinatorArgs } from '../src/commands/coordinator.js';
import { parseSimulateArgs } from '../src/commands/simulate.js';
import { dpFlags, dpFromFlags } from '../src/dp-flags.js';

test('DP flags set training.clipNorm and training.dp; they override the file', () => {
  const values = parseCoordinatorArgs(['--dp-noise', '1.1', '--dp-clip', '0.5']);
  const secure = dpFromFlags(values, undefined, 'secure');
  assert.deepEqual(secure, { clipNorm: 0.5, dp: { noiseMultiplier: 1.1 } });
  // The same object --config's training sets: resolveConfig takes it (noise defaults to the agents').
  assert.deepEqual(resolveConfig({ stateDir: 'x', training: secure }).training.dp, { noiseMultiplier: 1.1, noise: 'agents' });
  // Flags over the file; the file alone stands.
  const file = { clipNorm: 2, dp: { noiseMultiplier: 0.3 } };
  assert.deepEqual(dpFromFlags(parseCoordinatorArgs(['--dp-noise', '0.9']), file, 'secure'), { clipNorm: 2, dp: { noiseMultiplier: 0.9 } });
  assert.deepEqual(dpFromFlags(parseCoordinatorArgs([]), file, 'secure'), { clipNorm: 2, dp: { noiseMultiplier: 0.3 } });
  assert.deepEqual(dpFromFlags(parseCoordinatorArgs([]), undefined, 'secure'), {});
  const central = dpFromFlags(parseCoordinatorArgs(['--dp-noise', '1', '--dp-clip', '1', '--dp-central']), undefined, 'plain');
  assert.deepEqual(central, { clipNorm: 1, dp: { noiseMultiplier: 1, noise: 'coordinator' } });
  // simulate hands them to its coordinator flag by flag.
  assert.deepEqual(dpFlags(central), ['--dp-noise', '1', '--dp-clip', '1', '--dp-central']);
  assert.deepEqual(dpFlags(dpFromFlags(parseSimulateArgs(['--dp-noise', '2', '--dp-clip', '0.1', '--aggregation', 'secure']), undefined, 'secure')), ['--dp-noise', '2', '--dp-clip', '0.1']);
});

test('DP flags: refusals name the flag and say what to do', () => {
  const refuses = (argv: string[], aggregation: 'plain' | 'secure', re: RegExp, file?: { clipNorm?: number; dp?: { noiseMultiplier: number } }) =>
    assert.throws(() => dpFromFlags(parseCoordinatorArgs(argv), file, aggregation), (e: unknown) => (e as { code?: string }).code === 'FEDCLR_CLI_USAGE' && re.test((e as Error).message));
  refuses(['--dp-noise', '1'], 'secure', /--dp-clip C .*no default/);
  refuses(['--dp-noise', '1'], 'secure', /--dp-clip C/, { clipNorm: 0 });
  refuses(['--dp-noise', '0', '--dp-clip', '1'], 'secure', /--dp-noise must be a number > 0/);
  refuses(['--dp-noise', 'NaN', '--dp-clip', '1'], 'secure', /--dp-noise must be a number > 0/);
  refuses(['--dp-noise', '5000', '--dp-clip', '1'], 'secure', /--dp-noise must be a number in \(0, 1000\]/);
  refuses(['--dp-noise', '1', '--dp-clip=-1'], 'secure', /--dp-clip must be a number > 0/);
  refuses(['--dp-clip', '1'], 'secure', /--dp-clip goes with --dp-noise/);
  refuses(['--dp-central'], 'plain', /--dp-central goes with --dp-noise/);
  refuses(['--dp-noise', '1', '--dp-clip', '1', '--dp-central'], 'secure', /--dp-central .* needs --aggregation plain/);
  refuses(['--dp-noise', '1', '--dp-clip', '1'], 'plain', /--aggregation plain needs --dp-central/);
});
