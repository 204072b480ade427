// --straggler-grace-ms and --ping-timeout-ms (fedclr coordinator): mapped onto stragglerGraceMs
// and pingTimeoutMs, absent when not given (so --config and the defaults hold), refused when
// they are not whole milliseconds in range.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig } from '@fedclr/coordinator';
import { coordinatorHelp, parseCoordinatorArgs } from '../src/commands/coordinator.js';
import { livenessFromFlags } from '../src/liveness-flags.js';

test('liveness flags set stragglerGraceMs and pingTimeoutMs; without them nothing is set', () => {
  const flags = livenessFromFlags(parseCoordinatorArgs(['--straggler-grace-ms', '500', '--ping-timeout-ms', '120000']));
  assert.deepEqual(flags, { stragglerGraceMs: 500, pingTimeoutMs: 120_000 });
  const resolved = resolveConfig({ stateDir: 'x', ...flags });
  assert.equal(resolved.stragglerGraceMs, 500);
  assert.equal(resolved.pingTimeoutMs, 120_000);
  assert.deepEqual(livenessFromFlags(parseCoordinatorArgs([])), {});
  assert.equal(resolveConfig({ stateDir: 'x', ...livenessFromFlags(parseCoordinatorArgs([])) }).pingTimeoutMs, 20_000);
  assert.deepEqual(livenessFromFlags(parseCoordinatorArgs(['--straggler-grace-ms', '0'])), { stragglerGraceMs: 0 });
  assert.match(coordinatorHelp, /--straggler-grace-ms MS/);
  assert.match(coordinatorHelp, /--ping-timeout-ms MS/);
});

test('liveness flags refuse values that are not whole milliseconds in range', () => {
  for (const argv of [['--straggler-grace-ms=-1'], ['--straggler-grace-ms', '1.5'], ['--ping-timeout-ms', '999'], ['--ping-timeout-ms', 'soon']]) {
    const flag = (argv[0] as string).split('=')[0] as string;
    assert.throws(
      () => livenessFromFlags(parseCoordinatorArgs(argv)),
      (e: unknown) => (e as { code?: string }).code === 'FEDCLR_CLI_USAGE' && (e as Error).message.includes(flag),
      argv.join(' '),
    );
  }
});
