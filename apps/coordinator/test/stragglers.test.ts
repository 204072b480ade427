// Straggler grace (EngineSettings.stragglerGraceMs), pure engine: once the quorum of updates is
// in, collection closes after the grace instead of waiting for the slowest agent until the
// deadline; the late agents are recorded as timeouts and their updates refused as late.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RoundStartMessage } from '@fedclr/protocol';
import { resolveConfig } from '../src/config.js';
import type { EngineAction, RoundEngine } from '../src/engine.js';
import { deltaFor, makeEngine, ofType, sends, updateMessage } from './helpers.js';

function startRound(engine: RoundEngine, ids: string[]): RoundStartMessage {
  engine.handle({ type: 'start' }, 0);
  const out: EngineAction[] = [];
  for (const id of ids) out.push(...engine.handle({ type: 'agent-ready', agentId: id }, 0));
  const msg = sends(out, 'round-start')[0]?.message as unknown as RoundStartMessage | undefined;
  assert.ok(msg !== undefined, 'the round started');
  return msg;
}

test('stragglers: at the quorum a grace timer is armed; when it fires the round commits without the slow agents', () => {
  const { engine, manifest, weights } = makeEngine({ minCohort: 4, maxCohort: 4, quorum: { fraction: 0.5, minCount: 1 }, stragglerGraceMs: 250 });
  const msg = startRound(engine, ['a', 'b', 'c', 'd']);
  const first = engine.handle({ type: 'update', agentId: 'a', message: updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 0), 5) }, 10);
  assert.equal(ofType(first, 'set-timer').filter((t) => t.timer === 'straggler').length, 0, 'no grace before the quorum');
  const second = engine.handle({ type: 'update', agentId: 'b', message: updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 1), 5) }, 20);
  assert.deepEqual(ofType(second, 'set-timer').filter((t) => t.timer === 'straggler').map((t) => t.delayMs), [250], 'quorum (2 of 4) in: grace armed');
  assert.equal(engine.phase, 'collecting');
  const closed = engine.handle({ type: 'timer', timer: 'straggler', roundId: 1 }, 270);
  const commit = ofType(closed, 'commit')[0];
  assert.ok(commit !== undefined, 'the round commits at the end of the grace');
  const status = Object.fromEntries(commit.record.summary.participants.map((p) => [p.agentId, p.status]));
  assert.deepEqual(status, { a: 'included', b: 'included', c: 'timeout', d: 'timeout' });
  assert.match(commit.record.summary.participants.find((p) => p.agentId === 'c')?.reason ?? '', /straggler grace \(250 ms\)/);
  const late = engine.handle({ type: 'update', agentId: 'c', message: updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 2), 5) }, 300);
  assert.deepEqual(ofType(late, 'update-rejected').map((r) => r.reason), ['late'], 'a straggler\'s update after the grace never reaches the aggregate');
});

test('stragglers: everyone answering within the grace closes at once and clears the timer; off by default', () => {
  const { engine, manifest, weights } = makeEngine({ minCohort: 2, maxCohort: 2, quorum: { fraction: 0.5, minCount: 1 }, stragglerGraceMs: 1000 });
  const msg = startRound(engine, ['a', 'b']);
  engine.handle({ type: 'update', agentId: 'a', message: updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 0), 5) }, 10);
  const all = engine.handle({ type: 'update', agentId: 'b', message: updateMessage(1, msg.modelVersion, manifest, deltaFor(weights.length, 1), 5) }, 20);
  assert.equal(ofType(all, 'commit').length, 1);
  assert.ok(ofType(all, 'clear-timer').some((t) => t.timer === 'straggler'));
  // A stale grace timer after the round closed does nothing.
  const stale = engine.handle({ type: 'timer', timer: 'straggler', roundId: 1 }, 1010);
  assert.equal(ofType(stale, 'commit').length + ofType(stale, 'round-failed').length, 0);

  const { engine: off, manifest: m2, weights: w2 } = makeEngine({ minCohort: 3, maxCohort: 3, quorum: { fraction: 0.3, minCount: 1 } });
  const msg2 = startRound(off, ['a', 'b', 'c']);
  const out = off.handle({ type: 'update', agentId: 'a', message: updateMessage(1, msg2.modelVersion, m2, deltaFor(w2.length, 0), 5) }, 10);
  assert.equal(ofType(out, 'set-timer').filter((t) => t.timer === 'straggler').length, 0, 'without stragglerGraceMs the round waits for all or the deadline');
  assert.equal(off.phase, 'collecting');
});

test('config: stragglerGraceMs is off by default, a non-negative integer otherwise', () => {
  assert.equal(resolveConfig({ stateDir: 'x', aggregation: 'plain' }).stragglerGraceMs, null);
  assert.equal(resolveConfig({ stateDir: 'x', aggregation: 'plain', stragglerGraceMs: 500 }).stragglerGraceMs, 500);
  assert.throws(() => resolveConfig({ stateDir: 'x', aggregation: 'plain', stragglerGraceMs: -1 }), (e: Error & { code?: string }) => e.code === 'FEDCLR_COORD_CONFIG_INVALID' && /stragglerGraceMs/.test(e.message));
});
