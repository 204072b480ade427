// End to end: `fedclr simulate` with a privacy budget (central DP, plain aggregation, three agents
// on a slice of Fashion-MNIST). --target-epsilon leaves room for exactly two of the five planned
// rounds: the coordinator stops before the third (stoppedBy privacy-budget), epsilon is in every
// round's progress line and record, it never exceeds the budget, and it equals the no-sampling
// closed form (alpha / (2 sigma^2) per round at every order).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ORDERS, epsilonFromRdp } from '@fedclr/privacy';
import { BIN } from './helpers.js';

const SIGMA = 3;
const DELTA = 1e-5;
const closedForm = (rounds: number): number => epsilonFromRdp(DEFAULT_ORDERS, DEFAULT_ORDERS.map((a) => (rounds * a) / (2 * SIGMA * SIGMA)), DELTA).epsilon;

interface Report {
  completedRounds: number;
  stoppedBy: string;
  rounds: { round: number; dpEpsilon: number | null; dpDelta: number | null }[];
  privacy: { epsilon: number; delta: number; targetEpsilon: number; noiseMultiplier: number } | null;
  linearProbe: number;
}

test('fedclr simulate --target-epsilon: stops at its budget, prints epsilon each round, never exceeds it', async () => {
  const target = Math.round(((closedForm(2) + closedForm(3)) / 2) * 1000) / 1000;
  const out = join(mkdtempSync(join(tmpdir(), 'fedclr-sim-dp-')), 'run');
  const args = [
    BIN, 'simulate', '--clients', '3', '--limit', '384', '--rounds', '5', '--steps-per-round', '1', '--batch', '32',
    '--aggregation', 'plain', '--dp-central', '--dp-noise', String(SIGMA), '--dp-clip', '1', '--dp-delta', String(DELTA),
    '--target-epsilon', String(target), '--eval-workers', '0', '--seed', '3', '--widths', '8,16,32', '--view-size', '16',
    '--train-slots', '1', '--out', out,
  ];
  let stderr = '';
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdout.resume();
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, `simulate failed:\n${stderr.slice(-3000)}`);

  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
  assert.equal(report.stoppedBy, 'privacy-budget');
  assert.equal(report.completedRounds, 2);
  report.rounds.forEach((r, i) => {
    assert.ok(r.dpEpsilon !== null && Math.abs(r.dpEpsilon - closedForm(i + 1)) < 1e-4, `round ${r.round}: epsilon ${r.dpEpsilon} vs ${closedForm(i + 1)}`);
    assert.ok(r.dpEpsilon <= target, `round ${r.round} within the budget`);
    assert.equal(r.dpDelta, DELTA);
  });
  assert.ok(report.privacy !== null && Math.abs(report.privacy.epsilon - closedForm(2)) < 1e-4);
  assert.equal(report.privacy.targetEpsilon, target);
  // Every round's progress line (JSON on stderr, not a terminal) carries its epsilon.
  const lines = stderr.split('\n').filter((l) => l.startsWith('{"progress":"simulate"'));
  assert.deepEqual(lines.map((l) => (JSON.parse(l) as { dpEpsilon: number }).dpEpsilon), report.rounds.map((r) => r.dpEpsilon));
  assert.ok(report.linearProbe > 0.1, 'the final model was evaluated');
});
