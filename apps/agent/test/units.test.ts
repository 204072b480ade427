// Pure pieces of the agent: backoff, identity files, the fake trainer, update building.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, statSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { decodeFrame, type Manifest, type RoundConfig } from '@fedclr/protocol';
import { Backoff } from '../src/backoff.js';
import { isAgentError } from '../src/errors.js';
import { createFakeTrainer, fakeLocalWeights } from '../src/fake-trainer.js';
import { defaultAgentId, loadOrCreateIdentity } from '../src/identity.js';
import { buildUpdate } from '../src/update.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'fedclr-agent-'));

const CONFIG: RoundConfig = {
  localEpochs: 1,
  batchSize: 8,
  learningRate: 0.01,
  optimizer: 'sgd',
  loss: 'ntxent',
  temperature: 0.5,
  fedproxMu: 0,
  clipNorm: 0,
  deadlineMs: 5000,
  aggregation: 'plain',
  cohortSize: 3,
};

test('backoff grows exponentially, caps, jitters within bounds, resets, and gives up', () => {
  const none = new Backoff({ initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0 });
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => none.next()), [100, 200, 400, 800, 1000, 1000]);
  none.reset();
  assert.equal(none.next(), 100);
  const low = new Backoff({ initialDelayMs: 100, jitter: 0.5 }, () => 0);
  const high = new Backoff({ initialDelayMs: 100, jitter: 0.5 }, () => 0.999999);
  assert.deepEqual([low.next(), low.next()], [50, 100]);
  assert.deepEqual([high.next(), high.next()], [100, 200]);
  const limited = new Backoff({ maxAttempts: 2 });
  limited.next();
  assert.equal(limited.exhausted, false);
  limited.next();
  assert.equal(limited.exhausted, true);
  for (let i = 0; i < 100; i++) {
    const b = new Backoff({ initialDelayMs: 1000, jitter: 1 });
    const d = b.next();
    assert.ok(d >= 0 && d <= 1000);
  }
});

test('identity: created once with mode 0600 in a 0700 dir, reloaded, and refused when readable by others', async () => {
  const dir = join(tmp(), 'state');
  const a = await loadOrCreateIdentity(dir);
  assert.equal(a.created, true);
  assert.equal(a.agentId, defaultAgentId(a.publicKey));
  assert.equal(statSync(a.path).mode & 0o777, 0o600);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  const b = await loadOrCreateIdentity(dir);
  assert.equal(b.created, false);
  assert.deepEqual(b.publicKey, a.publicKey);
  const msg = new TextEncoder().encode('proof');
  assert.ok(nacl.sign.detached.verify(msg, nacl.sign.detached(msg, b.secretKey), a.publicKey));
  assert.equal((await loadOrCreateIdentity(dir, 'explicit-id')).agentId, 'explicit-id');
  chmodSync(a.path, 0o644);
  await assert.rejects(loadOrCreateIdentity(dir), (e: unknown) => isAgentError(e, 'FEDCLR_AGENT_IDENTITY_INSECURE'));
  chmodSync(a.path, 0o600);
  writeFileSync(a.path, '{"version":1}');
  await assert.rejects(loadOrCreateIdentity(dir), (e: unknown) => isAgentError(e, 'FEDCLR_AGENT_IDENTITY_CORRUPT'));
  await assert.rejects(loadOrCreateIdentity(tmp(), 'bad id!'), (e: unknown) => isAgentError(e, 'FEDCLR_AGENT_CONFIG_INVALID'));
});

test('fake trainer: deterministic per (seed, round), honours abort, reports progress', async () => {
  const g = Float32Array.from({ length: 50 }, (_, i) => i / 50);
  const manifest: Manifest = [{ name: 'w', shape: [50], dtype: 'float32' }];
  const t = createFakeTrainer({ seed: 's', exampleCount: 7, scale: 0.1 });
  const progress: number[] = [];
  const out = await t.train({ round: 3, globalWeights: g, manifest, config: CONFIG }, new AbortController().signal, (p) => progress.push(p));
  assert.deepEqual(out.weights, fakeLocalWeights(g, 's', 3, 0.1));
  assert.notDeepEqual(fakeLocalWeights(g, 's', 4, 0.1), out.weights);
  assert.equal(out.exampleCount, 7);
  assert.deepEqual(progress, [0.25, 0.5, 0.75, 1]);
  const slow = createFakeTrainer({ delayMs: 10_000 });
  const ac = new AbortController();
  const p = slow.train({ round: 1, globalWeights: g, manifest, config: CONFIG }, ac.signal);
  ac.abort(new Error('stop'));
  await assert.rejects(p, /stop/);
});

test('buildUpdate: delta = local - global in the global manifest, clipping, DP noise, scalar metrics only', () => {
  const manifest: Manifest = [
    { name: 'a', shape: [2, 2], dtype: 'float32' },
    { name: 'b', shape: [2], dtype: 'float32' },
  ];
  const global = Float32Array.of(1, 2, 3, 4, 5, 6);
  const local = Float32Array.of(1.5, 2, 3, 4, 5, 3);
  const base = { roundId: 4, modelVersion: 'a'.repeat(64), manifest, global, config: CONFIG, durationMs: 12.4, limits: { maxFrameBytes: 1 << 20, maxMetrics: 4 } };
  const built = buildUpdate({ ...base, output: { weights: local, exampleCount: 9, metrics: { loss: 0.7, steps: 12, acc: 0.5, 'bad name': 1, nan: Number.NaN } } });
  const m = built.message;
  assert.deepEqual(Object.keys(m).sort(), ['exampleCount', 'frame', 'metrics', 'modelVersion', 'roundId', 'type']);
  assert.deepEqual(m.metrics, { loss: 0.7, steps: 12, durationMs: 12, extra: { acc: 0.5 } });
  const f = decodeFrame(m.frame, { expected: manifest, checkFinite: true });
  assert.deepEqual(Array.from(new Float32Array(f.data.buffer, f.data.byteOffset, 6)), [0.5, 0, 0, 0, 0, -3]);
  assert.ok(Math.abs(built.deltaNorm - Math.sqrt(9.25)) < 1e-9);

  const clipped = buildUpdate({ ...base, config: { ...CONFIG, clipNorm: 1 }, output: { weights: local, exampleCount: 1, metrics: {} } });
  const cf = decodeFrame(clipped.message.frame);
  const cd = new Float32Array(cf.data.buffer, cf.data.byteOffset, 6);
  assert.ok(clipped.clipped);
  assert.ok(Math.abs(Math.hypot(...cd) - 1) < 1e-6);

  // A plain DP round's noise is the coordinator's (dp.noise 'coordinator'): the agent sends its clipped delta only.
  const central = buildUpdate({ ...base, config: { ...CONFIG, clipNorm: 1, dp: { noiseMultiplier: 1.5, noise: 'coordinator' } }, output: { weights: local, exampleCount: 1, metrics: {} } });
  assert.deepEqual(central.message.frame, clipped.message.frame);

  const bad = (weights: Float32Array, exampleCount = 1) => () => buildUpdate({ ...base, output: { weights, exampleCount, metrics: {} } });
  const code = 'FEDCLR_AGENT_TRAINER_OUTPUT';
  assert.throws(bad(Float32Array.of(1, 2)), (e: unknown) => isAgentError(e, code));
  assert.throws(bad(Float32Array.of(1, 2, 3, 4, 5, Number.NaN)), (e: unknown) => isAgentError(e, code));
  assert.throws(bad(local, 0), (e: unknown) => isAgentError(e, code));
  const secure = buildUpdate({ ...base, config: { ...CONFIG, aggregation: 'secure' }, output: { weights: local, exampleCount: 3, metrics: {} } });
  assert.equal(secure.message.exampleCount, undefined, 'no plaintext count in a secure round');
});
