// SecureAggregationSession through the aggregation interface and through the RoundEngine, with
// real SecAggAgents in process (no sockets): what it reveals, what it holds, and that the engine
// applies the strategy to the secure sum exactly as to the plain one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { decodeFrame, encodeFrame } from '@fedclr/protocol';
import { preQuantized } from '@fedclr/secagg';
import type { AggregationStatus, AggregationStep, AggregatorFactory, OutboundSecagg } from '../src/aggregation.js';
import { plainAggregator } from '../src/aggregation.js';
import { resolveConfig } from '../src/config.js';
import type { EngineEvent } from '../src/engine.js';
import { isCoordinatorError } from '../src/errors.js';
import { SecureAggregationSession, loadOrCreateSecaggIdentity, maskedManifest, secureAggregator } from '../src/secure-aggregation.js';
import { fedAdam, fedAvg, type Strategy } from '../src/strategy.js';
import { tempDir } from './harness.js';
import { deltaFor, makeEngine, makeModel, updateMessage } from './helpers.js';
import { deliverToAgent, makeAgents, sameValues, sessionOptions, typedArraysIn, type InProcessAgent } from './secagg-helpers.js';

const IDS = ['a0', 'a1', 'a2', 'a3', 'a4'];
const WEIGHTS = [10, 20, 30, 40, 100];
const MODEL_VERSION = 'a'.repeat(64);

function expectedMean(agents: readonly InProcessAgent[], d: number): Float64Array {
  const out = new Float64Array(d);
  const total = agents.reduce((s, a) => s + a.weight, 0);
  for (const a of agents) for (let i = 0; i < d; i++) out[i] = (out[i] as number) + (a.weight * (a.delta[i] as number)) / total;
  return out;
}

test('secure session, through the aggregation interface: only the weighted sum comes out (within the quantisation bound), and no individual unmasked update is ever held', async () => {
  const { manifest, weights } = makeModel(4, 3);
  const d = weights.length;
  const agents = makeAgents(IDS, (i) => deltaFor(d, i, 0.05), (i) => WEIGHTS[i] as number);
  const session = secureAggregator(sessionOptions(agents)).open({ roundId: 1, modelVersion: MODEL_VERSION, cohort: IDS, manifest, dimension: d });
  assert.ok(session instanceof SecureAggregationSession);
  assert.equal(session.mode, 'secure');
  assert.deepEqual(session.updateManifest, maskedManifest(d));
  const encoding = session.encoding;
  assert.ok(encoding !== undefined);

  // Everything the session can reach, after every step: no agent's encoded input, delta, or
  // clipped-and-weighted values; at most one vector of the encoded length (the masked running sum).
  let checks = 0;
  const assertHoldsNoIndividualUpdate = (): void => {
    const held = typedArraysIn(session);
    for (const a of agents.values()) {
      const forbidden: ArrayLike<number>[] = [a.delta, preQuantized(a.delta, a.weight, encoding)];
      if (a.input !== undefined) forbidden.push(a.input);
      for (const v of held) for (const f of forbidden) assert.ok(!sameValues(v, f), `the session holds ${a.id}'s unmasked update`);
    }
    assert.ok(held.filter((v) => (v as unknown as ArrayLike<number>).length === d + 1).length <= 1, 'at most one vector: the masked sum');
    checks++;
  };

  const outbox: OutboundSecagg[] = [];
  let final: AggregationStatus | undefined;
  const settle = async (step: AggregationStep): Promise<void> => {
    assertHoldsNoIndividualUpdate();
    outbox.push(...step.messages);
    if (step.status.kind === 'done' || step.status.kind === 'aborted') final = step.status;
  };
  // a4 drops out after it confirmed its shares (before its masked input): its pairwise masks
  // must be removed through the neighbours' key shares.
  const silentFrom = new Map([['a4', 'participants']]);
  const run = async (): Promise<void> => {
    for (let m = outbox.shift(); m !== undefined; m = outbox.shift()) {
      const to = m.to[0] as string;
      assert.equal(m.to.length, 1, 'one envelope per recipient');
      assert.equal(m.message.to, to);
      if (silentFrom.get(to) === m.message.stage) {
        silentFrom.set(to, 'gone');
        await settle(session.drop(to));
        continue;
      }
      if (silentFrom.get(to) === 'gone') continue;
      for (const o of await deliverToAgent(agents.get(to) as InProcessAgent, m.message, MODEL_VERSION)) {
        if (o.kind === 'secagg') await settle(session.receive(to, o.message));
        else await settle(session.addUpdate(to, { frame: o.frame, exampleCount: undefined }));
      }
    }
  };
  await settle(session.start());
  await run();
  assert.equal(final as AggregationStatus | undefined, undefined, 'waits for the collection close');
  // A plaintext float update cannot even be submitted: the layout is the masked uint32 vector.
  const plainFrame = decodeFrame(encodeFrame({ manifest, data: deltaFor(d, 9) }));
  assert.throws(() => session.addUpdate('a0', { frame: plainFrame, exampleCount: 10 }), (e: unknown) => isCoordinatorError(e, 'FEDCLR_COORD_AGGREGATION_INPUT'));
  const closing = session.close(); // the engine's collection close
  assert.equal(closing.status.kind, 'finishing');
  await settle(closing);
  await run(); // unmask requests and answers
  const end = final as AggregationStatus | undefined;
  assert.ok(end !== undefined && end.kind === 'done', `done, got ${JSON.stringify(end)}`);
  const aggregate = end.aggregate;
  assert.deepEqual([...aggregate.contributors].sort(), ['a0', 'a1', 'a2', 'a3']);
  const survivors = ['a0', 'a1', 'a2', 'a3'].map((id) => agents.get(id) as InProcessAgent);
  assert.equal(aggregate.totalWeight, 100, 'the masked weights sum exactly');
  const bound = aggregate.metrics?.['secaggQuantisationBound'] ?? Number.NaN;
  assert.ok(bound > 0 && bound < 1e-6, `quantisation bound ${bound}`);
  const want = expectedMean(survivors, d);
  let worst = 0;
  for (let i = 0; i < d; i++) worst = Math.max(worst, Math.abs((aggregate.weightedSum[i] as number) / aggregate.totalWeight - (want[i] as number)));
  assert.ok(worst <= bound, `mean off by ${worst} > bound ${bound}`);
  assert.equal(aggregate.metrics?.['secaggThreshold'], 3);
  assert.equal(aggregate.metrics?.['secaggDropouts'], 1);
  assert.ok(checks > 20);
});

/** Runs one round of the engine with in-process agents; returns the committed weights. */
async function engineRound(aggregator: AggregatorFactory, strategy: Strategy, agents: Map<string, InProcessAgent>): Promise<{ weights: Float32Array; metrics: Readonly<Record<string, number>> }> {
  const { engine, manifest } = makeEngine({ rounds: 1, minCohort: 5, maxCohort: 5, quorum: { fraction: 1, minCount: 5 } }, { aggregator, strategy });
  const events: EngineEvent[] = [...agents.keys()].map((agentId) => ({ type: 'agent-ready', agentId }));
  events.push({ type: 'start' });
  let modelVersion = '';
  for (let ev = events.shift(); ev !== undefined; ev = events.shift()) {
    for (const a of engine.handle(ev, Date.now())) {
      if (a.type === 'send' && a.message.type === 'round-start') {
        modelVersion = a.message.modelVersion;
        const ag = agents.get(a.to) as InProcessAgent;
        if (a.message.config.aggregation === 'plain') events.push({ type: 'update', agentId: a.to, message: updateMessage(a.message.roundId, modelVersion, manifest, ag.delta, ag.weight) });
      } else if (a.type === 'send' && a.message.type === 'secagg') {
        for (const o of await deliverToAgent(agents.get(a.to) as InProcessAgent, a.message, modelVersion)) {
          events.push(o.kind === 'secagg' ? { type: 'secagg', agentId: a.to, message: o.message } : { type: 'update', agentId: a.to, message: o.message });
        }
      } else if (a.type === 'commit') {
        return { weights: a.record.model.weights, metrics: a.record.summary.metrics };
      } else if (a.type === 'round-failed') {
        throw new Error(`round failed: ${a.summary.reason}`);
      }
    }
  }
  throw new Error('the round stalled');
}

test('through the engine: FedAvg and FedAdam on the secure sum match plain mode within the quantisation bound', async () => {
  const d = makeModel(4, 3).weights.length;
  for (const make of [() => fedAvg(), () => fedAdam({ lr: 0.1 })]) {
    const agents = makeAgents(IDS, (i) => deltaFor(d, i, 0.05), (i) => WEIGHTS[i] as number);
    const plain = await engineRound(plainAggregator, make(), agents);
    for (const a of agents.values()) a.agent = undefined;
    const secure = await engineRound(secureAggregator(sessionOptions(agents)), make(), agents);
    const bound = secure.metrics['secaggQuantisationBound'] ?? Number.NaN;
    assert.ok(bound > 0 && bound < 1e-6);
    // FedAdam's step is at most lr (1 - beta1) / tau = 10 times as sensitive to the mean delta.
    const tol = 20 * bound + 1e-7;
    let worst = 0;
    for (let i = 0; i < d; i++) worst = Math.max(worst, Math.abs((secure.weights[i] as number) - (plain.weights[i] as number)));
    assert.ok(worst <= tol, `${make().name}: secure vs plain ${worst} > ${tol}`);
    assert.equal(secure.metrics['included'], 5);
    assert.equal(secure.metrics['totalWeight'], 200);
  }
});

test('config: secure is the default aggregation; its parameters are validated; plain still works', () => {
  const bad = (fn: () => unknown, re: RegExp) =>
    assert.throws(fn, (e: unknown) => isCoordinatorError(e, 'FEDCLR_COORD_CONFIG_INVALID') && re.test(e.message));
  const c = resolveConfig({ stateDir: 'x' });
  assert.equal(c.aggregation, 'secure');
  assert.equal(c.minCohort, 3);
  assert.deepEqual(c.secagg, { clip: 0.1, maxWeight: 10_000, dropoutFraction: 0.2, corruptFraction: 0.1, stageTimeoutMs: 30_000, prg: 'aes-256-ctr' });
  assert.equal(resolveConfig({ stateDir: 'x', training: { clipNorm: 0.3 } }).secagg.clip, 0.3);
  assert.equal(resolveConfig({ stateDir: 'x', training: { clipNorm: 5 } }).secagg.clip, 0.5);
  assert.equal(resolveConfig({ stateDir: 'x', maxExampleCount: 500 }).secagg.maxWeight, 500);
  const plain = resolveConfig({ stateDir: 'x', aggregation: 'plain', minCohort: 2 });
  assert.equal(plain.aggregation, 'plain');
  assert.equal(plain.minCohort, 2);
  bad(() => resolveConfig({ stateDir: 'x', aggregation: 'clear' as never }), /'aggregation'/);
  bad(() => resolveConfig({ stateDir: 'x', minCohort: 2 }), /'minCohort'.*secure/);
  bad(() => resolveConfig({ stateDir: 'x', secagg: { clip: 0 } }), /secagg\.clip/);
  bad(() => resolveConfig({ stateDir: 'x', secagg: { prg: 'rc4' as never } }), /secagg\.prg/);
  bad(() => resolveConfig({ stateDir: 'x', secagg: { rounds: 2 } as never }), /secagg\.rounds/);
  bad(() => resolveConfig({ stateDir: 'x', maxCohort: 5000 }), /'maxCohort'.*THRESHOLD|'maxCohort'.*threshold/i);
});

test("the coordinator's secagg signing key persists across restarts (agents pin it), mode 0600", async () => {
  const dir = tempDir();
  const first = await loadOrCreateSecaggIdentity(dir);
  const again = await loadOrCreateSecaggIdentity(dir);
  assert.deepEqual(again.publicKey, first.publicKey);
  assert.deepEqual(again.secretKey, first.secretKey);
  const path = join(dir, 'secagg-identity.json');
  assert.equal(statSync(path).mode & 0o777, 0o600);
  chmodSync(path, 0o644);
  await assert.rejects(loadOrCreateSecaggIdentity(dir), (e: unknown) => isCoordinatorError(e, 'FEDCLR_COORD_SECAGG_IDENTITY'));
});
