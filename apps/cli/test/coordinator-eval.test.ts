// fedclr coordinator --eval-data: the evaluation worker reads a labeled folder once and scores the
// encoders it is sent (linear probe + kNN) off the main thread; rounds waiting behind a busy
// worker collapse to the newest; a folder that cannot be evaluated is a usage error at start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { initialState, recipeModelSpec } from '@fedclr/contrastive';
import { initBackend } from '@fedclr/tensor';
import type { CoordinatorHandle } from '@fedclr/coordinator';
import { CoordinatorEvaluation } from '../src/coordinator-eval.js';
import { grayPng } from './png.js';

const spec = recipeModelSpec({ encoder: 'convnet-s', widths: [4, 4, 8], head: { hidden: 8, out: 4 }, input: { height: 12, width: 12, channels: 1 } });
const logger = pino({ level: process.env['FEDCLR_LOG_LEVEL'] ?? 'warn' });

function labeledFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fedclr-eval-data-'));
  // Two visually different classes: bright left half, bright right half.
  for (const [name, bright] of [['left', (x: number) => x < 6], ['right', (x: number) => x >= 6]] as const) {
    mkdirSync(join(dir, name));
    for (let i = 0; i < 10; i++) writeFileSync(join(dir, name, `${i}.png`), grayPng(12, 12, (x, y) => (bright(x) ? 200 + ((x + y + i) % 40) : 20 + ((x * y + i) % 30))));
  }
  return dir;
}

test('the evaluation worker scores each checkpoint sent; a busy worker keeps only the newest waiting one', { timeout: 120_000 }, async () => {
  const ev = await CoordinatorEvaluation.start({ dir: labeledFolder(), height: 12, width: 12, channels: 1, testFraction: 0.2, seed: 0, k: 3, spec }, logger);
  const recorded: { roundId: number; metrics: Record<string, number> }[] = [];
  (ev as unknown as { record: (r: number, m: Record<string, number>) => void }).record = (roundId, metrics) => recorded.push({ roundId, metrics });
  try {
    await initBackend(); // initialState draws the weights with tfjs (the worker has its own backend)
    const w = initialState(spec, 1).params;
    ev.submit(1, new Float32Array(w));
    ev.submit(2, new Float32Array(w)); // waits
    ev.submit(3, new Float32Array(w)); // replaces 2
    await ev.drain(100_000);
    assert.deepEqual(recorded.map((r) => r.roundId), [1, 3]);
    for (const r of recorded) {
      assert.ok(r.metrics['evalLinearProbe'] !== undefined && r.metrics['evalLinearProbe'] >= 0 && r.metrics['evalLinearProbe'] <= 1);
      assert.ok(r.metrics['evalKnn'] !== undefined && r.metrics['evalKnn'] >= 0 && r.metrics['evalKnn'] <= 1);
      assert.ok((r.metrics['evalMs'] ?? -1) >= 0);
    }
    // The same weights, the same data: the same scores (deterministic).
    assert.deepEqual(recorded[0]?.metrics['evalKnn'], recorded[1]?.metrics['evalKnn']);
  } finally {
    await ev.close();
  }
});

test("the run's last round is evaluated even when the run stops (drain) before its checkpoint is read", { timeout: 120_000 }, async () => {
  const ev = await CoordinatorEvaluation.start({ dir: labeledFolder(), height: 12, width: 12, channels: 1, testFraction: 0.2, seed: 0, k: 3, spec }, logger);
  try {
    await initBackend();
    const weights = initialState(spec, 2).params;
    const recorded: number[] = [];
    // What attach() uses of a coordinator: a one-round run whose round 1 has just been committed.
    const events = new EventEmitter();
    const handle = {
      events,
      config: { rounds: 1 },
      status: () => ({ completedRounds: 0 }),
      globalModel: () => ({ roundId: 1, weights }),
      recordRoundMetrics: (roundId: number) => recorded.push(roundId),
    } as unknown as CoordinatorHandle;
    ev.attach(handle, 1);
    events.emit('round-completed', { roundId: 1 });
    // As fedclr coordinator's stop() on the last round: in the same turn, before the checkpoint is read.
    await ev.drain(100_000);
    assert.deepEqual(recorded, [1]);
  } finally {
    await ev.close();
  }
});

test('--eval-data without two class folders stops the start-up with a usage error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedclr-eval-bad-'));
  mkdirSync(join(dir, 'only'));
  for (let i = 0; i < 5; i++) writeFileSync(join(dir, 'only', `${i}.png`), grayPng(12, 12, () => 100));
  await assert.rejects(
    CoordinatorEvaluation.start({ dir, height: 12, width: 12, channels: 1, testFraction: 0.2, seed: 0, k: 3, spec }, logger),
    (err: Error) => err.name === 'UsageError' || /--eval-data .*2 class/.test(err.message),
  );
});
