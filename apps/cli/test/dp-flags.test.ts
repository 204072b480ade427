// --dp-noise, --dp-clip and --dp-central (fedclr coordinator and fedclr simulate): mapped onto
// training.clipNorm and training.dp, over --config's training block, and refused early when the
// combination cannot protect anyone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig } from '@fedclr/coordinator';
import { parseCoordinatorArgs } from '../src/commands/coordinator.js';
import { parseSimulateArgs } from '../src/commands/simulate.js';
import { calibrateNoise, DEFAULT_ORDERS, epsilonFromRdp } from '@fedclr/privacy';
import { dpFlags, dpFromFlags } from '../src/dp-flags.js';

test('DP flags set training.clipNorm and training.dp; they override the file', () => {
  const values = parseCoordinatorArgs(['--dp-noise', '1.1', '--dp-clip', '0.5']);
  const secure = dpFromFlags(values, undefined, 'secure');
  assert.deepEqual(secure, { clipNorm: 0.5, dp: { noiseMultiplier: 1.1 }, privacy: {} });
  // The same object --config's training sets: resolveConfig takes it (noise defaults to the agents').
  assert.deepEqual(resolveConfig({ stateDir: 'x', training: { clipNorm: secure.clipNorm, dp: secure.dp } }).training.dp, { noiseMultiplier: 1.1, noise: 'agents' });
  // Flags over the file; the file alone stands.
  const file = { clipNorm: 2, dp: { noiseMultiplier: 0.3 } };
  assert.deepEqual(dpFromFlags(parseCoordinatorArgs(['--dp-noise', '0.9']), file, 'secure'), { clipNorm: 2, dp: { noiseMultiplier: 0.9 }, privacy: {} });
  assert.deepEqual(dpFromFlags(parseCoordinatorArgs([]), file, 'secure'), { clipNorm: 2, dp: { noiseMultiplier: 0.3 }, privacy: {} });
  assert.deepEqual(dpFromFlags(parseCoordinatorArgs([]), undefined, 'secure'), {});
  const central = dpFromFlags(parseCoordinatorArgs(['--dp-noise', '1', '--dp-clip', '1', '--dp-central']), undefined, 'plain');
  assert.deepEqual(central, { clipNorm: 1, dp: { noiseMultiplier: 1, noise: 'coordinator' }, privacy: {} });
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

test('--dp-delta and --target-epsilon: the budget goes to the config; without --dp-noise, sigma is calibrated for the planned rounds', () => {
  const budget = dpFromFlags(parseCoordinatorArgs(['--dp-noise', '1', '--dp-clip', '1', '--dp-delta', '1e-6', '--target-epsilon', '8']), undefined, 'secure', { rounds: 10 });
  assert.deepEqual(budget, { clipNorm: 1, dp: { noiseMultiplier: 1 }, privacy: { delta: 1e-6, targetEpsilon: 8 } });
  assert.deepEqual(resolveConfig({ stateDir: 'x', training: { clipNorm: 1, dp: { noiseMultiplier: 1 } }, privacy: budget.privacy }).privacy, { delta: 1e-6, targetEpsilon: 8 });
  // The file's "privacy" stands under the flags.
  assert.deepEqual(dpFromFlags(parseCoordinatorArgs(['--dp-noise', '1', '--dp-clip', '1', '--target-epsilon', '4']), undefined, 'secure', { rounds: 10 }, { delta: 1e-7, targetEpsilon: 9 }).privacy, { delta: 1e-7, targetEpsilon: 4 });

  const calibrated = dpFromFlags(parseSimulateArgs(['--target-epsilon', '8', '--dp-delta', '1e-5', '--dp-clip', '0.5', '--aggregation', 'secure']), undefined, 'secure', { rounds: 20 });
  const want = calibrateNoise({ targetEpsilon: 8, delta: 1e-5, rounds: 20, samplingRate: 1 });
  assert.equal(calibrated.dp?.noiseMultiplier, want.noiseMultiplier);
  assert.deepEqual(calibrated.calibrated, { noiseMultiplier: want.noiseMultiplier, epsilon: want.epsilon, rounds: 20, samplingRate: 1 });
  // Under --sampling-rate 0.2 each round costs less: the calibrated noise is lower, at q = 0.2.
  const sampled = dpFromFlags(parseSimulateArgs(['--target-epsilon', '8', '--dp-clip', '0.5', '--aggregation', 'secure']), undefined, 'secure', { rounds: 20, samplingRate: 0.2 });
  const atQ = calibrateNoise({ targetEpsilon: 8, delta: 1e-5, rounds: 20, samplingRate: 0.2 });
  assert.deepEqual(sampled.calibrated, { noiseMultiplier: atQ.noiseMultiplier, epsilon: atQ.epsilon, rounds: 20, samplingRate: 0.2 });
  assert.ok(atQ.noiseMultiplier < want.noiseMultiplier);
  // The calibrated sigma meets the budget over 20 rounds (closed form, q = 1), and 1% less noise does not.
  const eps = (sigma: number) => epsilonFromRdp(DEFAULT_ORDERS, DEFAULT_ORDERS.map((a) => (20 * a) / (2 * sigma * sigma)), 1e-5).epsilon;
  assert.ok(eps(want.noiseMultiplier) <= 8 && eps(want.noiseMultiplier * 0.99) > 8);
  // simulate passes the calibrated sigma and the budget on, so its coordinator enforces it.
  assert.deepEqual(dpFlags(calibrated), ['--dp-noise', String(want.noiseMultiplier), '--dp-clip', '0.5', '--dp-delta', '0.00001', '--target-epsilon', '8']);
});

test('budget flags: refusals name the flag and say what to do', () => {
  const refuses = (argv: string[], re: RegExp, rounds: number | null = 10) =>
    assert.throws(() => dpFromFlags(parseCoordinatorArgs(argv), undefined, 'secure', { rounds: rounds ?? undefined }), (e: unknown) => (e as { code?: string }).code === 'FEDCLR_CLI_USAGE' && re.test((e as Error).message), argv.join(' '));
  refuses(['--dp-delta', '1e-5'], /--dp-delta goes with --dp-noise SIGMA or --target-epsilon/);
  refuses(['--dp-noise', '1', '--dp-clip', '1', '--dp-delta', '0.5'], /--dp-delta must be a number in \(0, 0\.1\)/);
  refuses(['--dp-noise', '1', '--dp-clip', '1', '--dp-delta', '0'], /--dp-delta must be a number > 0/);
  refuses(['--dp-noise', '1', '--dp-clip', '1', '--target-epsilon=-1'], /--target-epsilon must be a number > 0/);
  refuses(['--target-epsilon', '8', '--dp-clip', '1'], /give --rounds R/, null);
  refuses(['--target-epsilon', '8'], /--dp-clip C/);
  refuses(['--target-epsilon', '1e-9', '--dp-clip', '1'], /--target-epsilon 1e-9 over 10 rounds.*unreachable/i);
});
