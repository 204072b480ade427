// Configuration validation, the SQLite state (migrations, WAL), checkpoint files (atomic
// writes, corruption, uncommitted leftovers) and resume rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { resolveConfig } from '../src/config.js';
import { StateDb, MIGRATIONS } from '../src/db.js';
import { isCoordinatorError } from '../src/errors.js';
import { FileModelStore, checkpointDirName, type Checkpoint } from '../src/model-store.js';
import { makeGlobalModel } from '../src/engine.js';
import { startCoordinator } from '../src/coordinator.js';
import { makeModel } from './helpers.js';
import { tempDir } from './harness.js';

const code = (fn: () => unknown, c: string, re?: RegExp) =>
  assert.throws(fn, (e: unknown) => isCoordinatorError(e) && e.code === c && (re === undefined || re.test(e.message)));

test('config: defaults, and errors that name the field', () => {
  const c = resolveConfig({ stateDir: '/tmp/x' });
  assert.equal(c.port, 8080);
  assert.equal(c.host, '127.0.0.1');
  assert.deepEqual(c.strategy, { name: 'fedavg', lr: 1 });
  assert.deepEqual(c.quorum, { fraction: 0.5, minCount: 1 });
  assert.equal(c.training.fedproxMu, 0);
  assert.deepEqual(resolveConfig({ stateDir: 'x', strategy: { name: 'fedadam' } }).strategy, { name: 'fedadam', lr: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 });
  assert.equal(resolveConfig({ stateDir: 'x', training: { fedproxMu: 0.01 } }).training.fedproxMu, 0.01);
  const bad = 'FEDCLR_COORD_CONFIG_INVALID';
  code(() => resolveConfig({} as never), bad, /stateDir/);
  code(() => resolveConfig({ stateDir: 'x', minCohort: 5, maxCohort: 3 }), bad, /maxCohort/);
  code(() => resolveConfig({ stateDir: 'x', aggregation: 'plain', minCohort: 2, quorum: { minCount: 3 } }), bad, /quorum\.minCount/);
  code(() => resolveConfig({ stateDir: 'x', port: 70000 }), bad, /'port'/);
  code(() => resolveConfig({ stateDir: 'x', deadlineMs: 10 }), bad, /deadlineMs/);
  code(() => resolveConfig({ stateDir: 'x', colour: 'red' } as never), bad, /colour/);
  code(() => resolveConfig({ stateDir: 'x', strategy: { name: 'fedavg', momentum: 0.9 } as never }), bad, /strategy\.momentum/);
  code(() => resolveConfig({ stateDir: 'x', strategy: { name: 'fedyogi' } as never }), bad, /strategy\.name/);
  code(() => resolveConfig({ stateDir: 'x', training: { dp: { noiseMultiplier: 1 } } }), bad, /clipNorm/);
  code(() => resolveConfig({ stateDir: 'x', limits: { maxFrameBytes: 3 } }), bad, /limits/);
});

test("config: training.loss is one of the losses agents train, with that loss's defaults; margin and mining only where they apply; moco is accepted (MoCo trains)", () => {
  const bad = 'FEDCLR_COORD_CONFIG_INVALID';
  const training = (t: Record<string, unknown>) => resolveConfig({ stateDir: 'x', training: t }).training;
  assert.deepEqual([training({}).loss, training({}).temperature, training({}).margin, training({}).mining], ['ntxent', 0.2, undefined, undefined]);
  assert.equal(training({ loss: 'supcon' }).temperature, 0.1);
  assert.deepEqual([training({ loss: 'triplet' }).margin, training({ loss: 'triplet' }).mining], [0.2, 'semi-hard']);
  assert.deepEqual([training({ loss: 'triplet', margin: 0.5, mining: 'hard' }).margin, training({ loss: 'triplet', mining: 'hard' }).mining], [0.5, 'hard']);
  assert.equal(training({ loss: 'margin' }).margin, 1);
  assert.ok(!('mining' in training({ loss: 'margin' })), 'a margin round carries no mining');
  code(() => training({ loss: 'infonce' }), bad, /'training\.loss' must be one of ntxent, dcl, moco, triplet, margin, supcon; got "infonce"/);
  assert.deepEqual([training({ loss: 'moco' }).loss, training({ loss: 'moco' }).temperature, training({ loss: 'moco' }).margin], ['moco', 0.2, undefined]);
  code(() => training({ loss: 'moco', margin: 0.2 }), bad, /'training\.margin' must be absent: loss 'moco' takes no margin/);
  code(() => training({ margin: 0.2 }), bad, /'training\.margin' must be absent: loss 'ntxent' takes no margin/);
  code(() => training({ loss: 'margin', mining: 'all' }), bad, /'training\.mining' must be absent: loss 'margin' takes no mining/);
  code(() => training({ loss: 'triplet', mining: 'easy' }), bad, /'training\.mining' must be one of all, hard, semi-hard; got "easy"/);
  code(() => training({ loss: 'margin', margin: 5 }), bad, /'training\.margin' must be a number in \[0, 4\]/);
});

test('database: versioned migrations, WAL, refuses a newer schema', () => {
  const dir = tempDir();
  const path = join(dir, 'state.db');
  const db = new StateDb(path);
  assert.equal(db.schemaVersion(), MIGRATIONS.length);
  db.setMeta('k', 'v');
  db.close();
  const raw = new Database(path);
  assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
  const applied = raw.prepare('SELECT version, name FROM schema_migrations').all();
  assert.deepEqual(applied, MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
  raw.close();
  const again = new StateDb(path); // no re-run, data kept
  assert.equal(again.getMeta('k'), 'v');
  again.close();
  const tamper = new Database(path);
  tamper.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, ?, 0)').run('from the future');
  tamper.close();
  code(() => new StateDb(path), 'FEDCLR_COORD_SCHEMA_TOO_NEW');
});

function checkpoint(roundId: number): Checkpoint {
  const { manifest, weights } = makeModel(3, 2, roundId);
  const g = makeGlobalModel({ architecture: 'a', manifest, weights, roundId, completedRounds: roundId });
  return {
    roundId,
    completedRounds: roundId,
    architecture: 'a',
    manifest,
    weights,
    modelVersion: g.modelVersion,
    strategyState: { strategy: 'fedadam', step: roundId, buffers: { m: new Float64Array(weights.length).fill(0.5), v: new Float64Array(weights.length).fill(2) } },
  };
}

test('checkpoints: atomic round directories, exporters, corruption detected, uncommitted ones skipped', async () => {
  const dir = join(tempDir(), 'checkpoints');
  const exported: string[] = [];
  const store = new FileModelStore({
    dir,
    exporters: [
      {
        name: 'marker',
        write: async (cp, into) => {
          exported.push(into);
          writeFileSync(join(into, 'model.json'), JSON.stringify({ round: cp.roundId }));
        },
      },
    ],
  });
  await store.save(checkpoint(1));
  await store.save(checkpoint(2));
  await store.save(checkpoint(3));
  assert.deepEqual(await store.list(), [1, 2, 3]);
  assert.ok(exported.every((p) => p.includes('.tmp-')), 'exporters write into the temporary directory');
  assert.ok(existsSync(join(dir, checkpointDirName(2), 'model.json')), 'exported files land in the round directory');
  const back = await store.load(2);
  assert.ok(back !== undefined);
  assert.deepEqual(back.weights, checkpoint(2).weights);
  assert.equal(back.modelVersion, checkpoint(2).modelVersion);
  assert.deepEqual(back.strategyState?.buffers['v'], checkpoint(2).strategyState?.buffers['v']);
  assert.equal(await store.load(7), undefined);

  // Corrupt round 3's weights: detected by the model-version hash.
  writeFileSync(join(dir, checkpointDirName(3), 'weights.bin'), Buffer.alloc(4 * 8, 1));
  await assert.rejects(store.load(3), (e: unknown) => isCoordinatorError(e, 'FEDCLR_COORD_CHECKPOINT_CORRUPT'));
  const corrupt: number[] = [];
  const latest = await store.loadLatest(() => true, (id) => corrupt.push(id));
  assert.equal(latest?.roundId, 2);
  assert.deepEqual(corrupt, [3]);
  assert.equal((await store.loadLatest((id) => id === 1))?.roundId, 1, 'only committed rounds count');

  // A crash mid-write leaves a temp dir: swept, never listed.
  mkdirSync(join(dir, `${checkpointDirName(4)}.tmp-123-0`));
  assert.deepEqual(await store.list(), [1, 2, 3]);
  await store.sweep();
  assert.ok(!readdirSync(dir).some((n) => n.includes('.tmp-')));
});

test('resume: checkpoint files without a committed round are ignored and removed; a different model is refused', async () => {
  const dir = tempDir();
  const stateDir = join(dir, 'c');
  const { manifest, weights } = makeModel(4, 3, 9);
  const init = { architecture: 'test-mlp', manifest, weights };
  const c1 = await startCoordinator({ stateDir, port: 0, logLevel: 'silent' }, { initialModel: init });
  const v0 = c1.globalModel().modelVersion;
  await c1.close();
  // Files of a round that never committed (crash between the files and the DB transaction).
  const store = new FileModelStore({ dir: join(stateDir, 'checkpoints') });
  const stray = makeGlobalModel({ architecture: 'test-mlp', manifest, weights: weights.map((x) => x + 1), roundId: 1, completedRounds: 1 });
  await store.save({ roundId: 1, completedRounds: 1, architecture: 'test-mlp', manifest, weights: stray.weights, modelVersion: stray.modelVersion });
  const c2 = await startCoordinator({ stateDir, port: 0, logLevel: 'silent' }, { initialModel: init });
  assert.equal(c2.globalModel().modelVersion, v0, 'the uncommitted checkpoint was not used');
  assert.equal(c2.status().completedRounds, 0);
  await c2.close();
  assert.deepEqual(await store.list(), [], 'and it was removed');
  await assert.rejects(
    startCoordinator({ stateDir, port: 0, logLevel: 'silent' }, { initialModel: { ...init, architecture: 'other' } }),
    (e: unknown) => isCoordinatorError(e, 'FEDCLR_COORD_MODEL_MISMATCH'),
  );
  await assert.rejects(startCoordinator({ stateDir: join(dir, 'empty'), port: 0, logLevel: 'silent' }), (e: unknown) =>
    isCoordinatorError(e, 'FEDCLR_COORD_MODEL_MISSING'),
  );
});

test('config: pingTimeoutMs defaults to socket.io\'s 20 s and is refused below 1 s', () => {
  assert.equal(resolveConfig({ stateDir: 'x', aggregation: 'plain' }).pingTimeoutMs, 20_000);
  assert.equal(resolveConfig({ stateDir: 'x', aggregation: 'plain', pingTimeoutMs: 120_000 }).pingTimeoutMs, 120_000);
  assert.throws(() => resolveConfig({ stateDir: 'x', aggregation: 'plain', pingTimeoutMs: 10 }), /pingTimeoutMs/);
});
