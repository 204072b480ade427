// Every bad input is refused with a catalog error whose message names the parameter and says
// what is allowed; the catalog codes are stable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ErrorCodes,
  InvalidArgumentError,
  MAX_ORDER,
  RdpAccountant,
  calibrateNoise,
  computeRdp,
  epsilonFromRdp,
  rdpAtOrder,
  type Conversion,
} from '../src/index.js';
import { throwsWithCode } from './helpers.js';

const INVALID = ErrorCodes.INVALID_ARGUMENT;

function refuses(fn: () => unknown, parameter: string, why: RegExp): void {
  const err = throwsWithCode(fn, INVALID);
  assert.ok(err instanceof InvalidArgumentError);
  assert.ok(err.message.includes(`argument ${parameter}:`), `message should name ${parameter}: ${err.message}`);
  assert.match(err.message, why);
}

test('codes are stable strings', () => {
  assert.deepEqual(ErrorCodes, {
    INVALID_ARGUMENT: 'FEDCLR_PRIVACY_INVALID_ARGUMENT',
    STATE_INVALID: 'FEDCLR_PRIVACY_STATE_INVALID',
    TARGET_UNREACHABLE: 'FEDCLR_PRIVACY_TARGET_UNREACHABLE',
    NUMERICAL: 'FEDCLR_PRIVACY_NUMERICAL',
  });
});

test('sampling rate: NaN, negative, above 1, not a number', () => {
  const at = (samplingRate: unknown) => () => computeRdp({ samplingRate: samplingRate as number, noiseMultiplier: 1, orders: [2] });
  refuses(at(NaN), 'samplingRate', /must be a number, got NaN/);
  refuses(at(-0.1), 'samplingRate', /\[0, 1\], got -0.1/);
  refuses(at(1.5), 'samplingRate', /\[0, 1\], got 1.5/);
  refuses(at('0.1'), 'samplingRate', /must be a number, got string/);
  refuses(at(undefined), 'samplingRate', /must be a number/);
});

test('noise multiplier: NaN, negative, Infinity', () => {
  refuses(() => rdpAtOrder(0.1, NaN, 2), 'noiseMultiplier', /got NaN/);
  refuses(() => rdpAtOrder(0.1, -1, 2), 'noiseMultiplier', /finite number >= 0/);
  refuses(() => rdpAtOrder(0.1, Infinity, 2), 'noiseMultiplier', /finite number >= 0/);
});

test('orders: <= 1, above MAX_ORDER, Infinity, NaN, empty, not an array', () => {
  const at = (orders: unknown) => () => computeRdp({ samplingRate: 0.1, noiseMultiplier: 1, orders: orders as number[] });
  refuses(at([2, 1]), 'orders[1]', /Rényi order in \(1, 10000\], got 1$/);
  refuses(at([0.5]), 'orders[0]', /got 0.5/);
  refuses(at([MAX_ORDER + 1]), 'orders[0]', /got 10001/);
  refuses(at([Infinity]), 'orders[0]', /got Infinity/);
  refuses(at([NaN]), 'orders[0]', /got NaN/);
  refuses(at([]), 'orders', /non-empty array/);
  refuses(at(2), 'orders', /non-empty array/);
  refuses(() => rdpAtOrder(0.1, 1, 1), 'order', /got 1$/);
  refuses(() => new RdpAccountant([]), 'orders', /non-empty/);
});

test('counts: steps, count and rounds must be integers', () => {
  refuses(() => computeRdp({ samplingRate: 0.1, noiseMultiplier: 1, orders: [2], steps: 2.5 }), 'steps', /integer >= 0, got 2.5/);
  refuses(() => computeRdp({ samplingRate: 0.1, noiseMultiplier: 1, orders: [2], steps: -1 }), 'steps', /integer >= 0/);
  refuses(() => new RdpAccountant().step(1, 0.1, 1.5), 'count', /integer >= 0, got 1.5/);
  refuses(() => new RdpAccountant().step(1, 0.1, NaN), 'count', /got NaN/);
  const calibrate = (rounds: number) => () => calibrateNoise({ targetEpsilon: 1, delta: 1e-5, rounds, samplingRate: 0.1 });
  refuses(calibrate(0), 'rounds', /integer >= 1, got 0/);
  refuses(calibrate(10.5), 'rounds', /integer >= 1/);
});

test('delta must be in (0, 1); epsilon targets finite and > 0', () => {
  const accountant = new RdpAccountant();
  for (const delta of [0, 1, -1e-5, 2, NaN]) refuses(() => accountant.epsilon(delta), 'delta', /in \(0, 1\)|must be a number/);
  refuses(() => epsilonFromRdp([2], [0.1], 0), 'delta', /in \(0, 1\)/);
  refuses(() => accountant.wouldExceed(1, 1, 1, 0.1), 'delta', /in \(0, 1\)/);
  for (const eps of [0, -1, Infinity, NaN]) refuses(() => accountant.wouldExceed(eps, 1e-5, 1, 0.1), 'targetEpsilon', /./);
  refuses(() => calibrateNoise({ targetEpsilon: 0, delta: 1e-5, rounds: 1, samplingRate: 0.1 }), 'targetEpsilon', /> 0/);
  refuses(() => calibrateNoise({ targetEpsilon: 1, delta: 1e-5, rounds: 1, samplingRate: 0.1, tolerance: 0 }), 'tolerance', /\(0, 1\)/);
  refuses(
    () => calibrateNoise({ targetEpsilon: 1, delta: 1e-5, rounds: 1, samplingRate: 0.1, maxNoiseMultiplier: -1 }),
    'maxNoiseMultiplier',
    />= 0/,
  );
});

test('epsilonFromRdp: rdp length, negative or NaN rdp, unknown conversion', () => {
  refuses(() => epsilonFromRdp([2, 3], [0.1], 1e-5), 'rdp', /one value per order \(2\), got 1/);
  refuses(() => epsilonFromRdp([2, 3], [0.1, -0.2], 1e-5), 'rdp[1]', />= 0/);
  refuses(() => epsilonFromRdp([2, 3], [0.1, NaN], 1e-5), 'rdp[1]', /got NaN/);
  refuses(() => epsilonFromRdp([2], [0.1], 1e-5, 'renyi' as Conversion), 'conversion', /balle2020, mironov2017/);
});
