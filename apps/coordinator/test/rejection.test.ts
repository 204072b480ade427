// Misbehaving agents over real sockets: malformed, wrong-shape, non-finite, oversize, unsigned,
// stale and late updates are rejected with a reason sent to that agent, and never reach the
// model. Also enrolment and key-possession checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pino } from 'pino';
import { decodeFrame, encodeFrame } from '@fedclr/protocol';
import type { UpdateMessage, UpdateRejectedMessage } from '@fedclr/protocol';
import { createFakeTrainer, fakeLocalWeights, loadOrCreateIdentity, startAgent, type AgentHandle, type Connector } from '@fedclr/agent';
import { startTestCoordinator, tamperingConnector, tempDir, trust, withTimeout, type TamperOptions } from './harness.js';

const agentLogger = pino({ level: process.env['FEDCLR_LOG_LEVEL'] ?? 'warn', base: { svc: 'agent' } });

type Mutation = (m: UpdateMessage) => Record<string, unknown>;

test('bad updates are rejected with a clear reason and the model only averages the good ones', async () => {
  const dir = tempDir();
  const mutations: Record<string, { tamper: TamperOptions; reason: string }> = {
    'wrong-shape': {
      reason: 'manifest-mismatch',
      tamper: {
        update: ((m) => {
          const d = decodeFrame(m.frame);
          const manifest = d.manifest.map((t) => (t.name === 'dense/kernel' ? { ...t, shape: [...t.shape].reverse() } : t));
          return { ...m, frame: encodeFrame({ manifest, data: d.data }) };
        }) as Mutation,
      },
    },
    nan: {
      reason: 'non-finite',
      tamper: {
        update: ((m) => {
          const d = decodeFrame(m.frame, { copy: true });
          const f = new Float32Array(d.data.buffer, d.data.byteOffset, d.data.byteLength / 4);
          f[7] = Number.NaN;
          return { ...m, frame: encodeFrame({ manifest: d.manifest, data: f }) };
        }) as Mutation,
      },
    },
    garbage: { reason: 'bad-frame', tamper: { update: ((m) => ({ ...m, frame: Buffer.alloc(4096, 7) })) as Mutation } },
    'no-count': {
      reason: 'invalid-message',
      tamper: {
        update: ((m) => {
          const { exampleCount: _drop, ...rest } = m;
          return rest;
        }) as Mutation,
      },
    },
    'extra-field': {
      reason: 'invalid-message',
      tamper: { update: ((m) => ({ ...m, images: Buffer.alloc(784) })) as Mutation },
    },
    unsigned: { reason: 'bad-signature', tamper: { update: ((m) => ({ ...m, exampleCount: 1_000_000 })) as Mutation, resign: false } },
    oversize: { reason: 'too-large', tamper: { update: ((m) => ({ ...m, frame: Buffer.alloc(1536 * 1024) })) as Mutation } },
    stale: { reason: 'stale-model', tamper: { update: ((m) => ({ ...m, modelVersion: 'e'.repeat(64) })) as Mutation } },
  };
  const names = Object.keys(mutations);
  const cohort = names.length + 3;
  const { coordinator, weights: initial } = await startTestCoordinator({
    stateDir: join(dir, 'coordinator'),
    rounds: 2,
    minCohort: cohort,
    maxCohort: cohort,
    deadlineMs: 10_000,
    quorum: { fraction: 0.1, minCount: 2 },
  });
  const agents: AgentHandle[] = [];
  const rejected = new Map<string, UpdateRejectedMessage[]>();
  const start = async (id: string, count: number, connector?: Connector): Promise<void> => {
    const stateDir = join(dir, id);
    const a = await startAgent({
      coordinatorUrl: coordinator.url,
      stateDir,
      agentId: id,
      trainer: createFakeTrainer({ seed: id, exampleCount: count, scale: 0.05 }),
      logger: agentLogger,
      ...trust(coordinator.publicKey),
      ...(connector === undefined ? {} : { connector }),
    });
    a.events.on('update-rejected', (r) => rejected.set(id, [...(rejected.get(id) ?? []), r]));
    agents.push(a);
  };
  try {
    await start('good-1', 10);
    await start('good-2', 30);
    await start('replayer', 20, tamperingConnector(join(dir, 'replayer'), { replayPrevious: true }));
    for (const n of names) await start(n, 1000, tamperingConnector(join(dir, n), (mutations[n] as { tamper: TamperOptions }).tamper));

    const round1 = await new Promise<number>((resolve) => coordinator.events.once('round-completed', (s) => resolve(s.roundId)));
    assert.equal(round1, 1);
    const completed = await withTimeout(coordinator.finished, 20_000, 'two rounds');
    assert.equal(completed, 2);

    for (const n of names) {
      const reasons = (rejected.get(n) ?? []).map((r) => r.reason);
      const expected = (mutations[n] as { reason: string }).reason;
      assert.deepEqual(reasons, [expected, expected], `${n}: rejected in both rounds as ${expected}`);
      assert.ok((rejected.get(n) ?? []).every((r) => r.message.length > 0), `${n}: with a message`);
    }
    // The replayer sent its round-1 update again during round 2: rejected as late; its real one counted.
    assert.deepEqual((rejected.get('replayer') ?? []).map((r) => [r.reason, r.roundId]), [['late', 1]]);
    assert.equal(rejected.get('good-1'), undefined);

    // Round 1's model: the example-weighted average of good-1, good-2 and replayer only.
    const { FileModelStore } = await import('../src/model-store.js');
    const r1 = await new FileModelStore({ dir: join(dir, 'coordinator', 'checkpoints') }).load(1);
    assert.ok(r1 !== undefined);
    const locals = [fakeLocalWeights(initial, 'good-1', 1, 0.05), fakeLocalWeights(initial, 'good-2', 1, 0.05), fakeLocalWeights(initial, 'replayer', 1, 0.05)];
    const counts = [10, 30, 20];
    let worst = 0;
    for (let i = 0; i < initial.length; i++) {
      const expected = locals.reduce((s, l, j) => s + (counts[j] as number) * (l[i] as number), 0) / 60;
      worst = Math.max(worst, Math.abs((r1.weights[i] as number) - expected));
    }
    assert.ok(worst < 1e-6, `round 1 model = average of the good updates (max error ${worst})`);

    const metrics = await (await fetch(`${coordinator.url}/metrics`)).text();
    for (const reason of ['manifest-mismatch', 'non-finite', 'bad-frame', 'invalid-message', 'bad-signature', 'too-large', 'stale-model', 'late']) {
      assert.match(metrics, new RegExp(`fedclr_updates_rejected_total\\{reason="${reason}"\\} \\d+`));
    }
    const detail = (await (await fetch(`${coordinator.url}/api/rounds/1`)).json()) as { participants: { agentId: string; status: string }[] };
    const status = Object.fromEntries(detail.participants.map((p) => [p.agentId, p.status]));
    for (const n of names) assert.equal(status[n], 'rejected', `${n} recorded as rejected`);
    assert.equal(status['good-1'], 'included');
  } finally {
    await Promise.all(agents.map((a) => a.close()));
    await coordinator.close();
  }
});

test('enrolment: allow-list admits listed keys only; an agent id stays bound to its key; a bad key proof is refused', async () => {
  const dir = tempDir();
  const listed = await loadOrCreateIdentity(join(dir, 'listed'), 'listed');
  const { coordinator } = await startTestCoordinator({
    stateDir: join(dir, 'coordinator'),
    rounds: 1,
    minCohort: 5,
    maxCohort: 5,
    enrolment: { mode: 'allow-list', publicKeys: [Buffer.from(listed.publicKey).toString('hex')] },
  });
  const open = await startTestCoordinator({ stateDir: join(dir, 'coordinator-open'), rounds: 1, minCohort: 5, maxCohort: 5 });
  const handles: AgentHandle[] = [];
  const agent = async (url: string, name: string, agentId: string, connector?: Connector): Promise<AgentHandle> => {
    const a = await startAgent({
      coordinatorUrl: url,
      stateDir: join(dir, name),
      agentId,
      trainer: createFakeTrainer(),
      logger: agentLogger,
      reconnect: { maxAttempts: 2, initialDelayMs: 20 },
      ...trust(url === coordinator.url ? coordinator.publicKey : open.coordinator.publicKey),
      ...(connector === undefined ? {} : { connector }),
    });
    handles.push(a);
    return a;
  };
  try {
    const ok = await agent(coordinator.url, 'listed', 'listed');
    await withTimeout(new Promise((resolve) => ok.events.once('welcome', resolve)), 5000, 'the listed agent to be welcomed');
    const stranger = await agent(coordinator.url, 'stranger', 'stranger');
    const exit = await withTimeout(stranger.done, 5000, 'the stranger to be refused');
    assert.equal(exit.reason, 'rejected');
    assert.match(exit.message ?? '', /not-enrolled/);

    // Open enrolment: first key wins the id.
    const first = await agent(open.coordinator.url, 'first', 'same-id');
    await withTimeout(new Promise((resolve) => first.events.once('welcome', resolve)), 5000, 'the first agent to be welcomed');
    const squatter = await agent(open.coordinator.url, 'squatter', 'same-id');
    const sq = await withTimeout(squatter.done, 5000, 'the squatter to be refused');
    assert.equal(sq.reason, 'rejected');
    assert.match(sq.message ?? '', /enrolled with another public key/);

    // A 'ready' whose signature does not verify: no session.
    const forger = await agent(
      open.coordinator.url,
      'forger',
      'forger',
      tamperingConnector(join(dir, 'forger'), { ready: (m) => ({ ...m, sig: Buffer.alloc(64, 1) }) }),
    );
    const fe = await withTimeout(forger.done, 5000, 'the forger to be refused');
    // A reject after the welcome is unsigned, so the agent reconnects instead of trusting it; every
    // attempt fails the same way, until it gives up.
    assert.equal(fe.reason, 'gave-up');
    assert.match(fe.message ?? '', /bad-signature/);
    assert.equal(open.coordinator.status().readyAgents, 1);

    // Another protocol major: refused at the hello, before any other field is looked at.
    const future = await agent(
      open.coordinator.url,
      'future',
      'future',
      tamperingConnector(join(dir, 'future'), { hello: (m) => ({ ...m, protocolVersion: '5.0', hologram: true }) }),
    );
    const fu = await withTimeout(future.done, 5000, 'the future agent to be refused');
    assert.equal(fu.reason, 'rejected');
    assert.equal((fu.error as { code?: string } | undefined)?.code, 'FEDCLR_PROTO_VERSION_INCOMPATIBLE');
  } finally {
    await Promise.all(handles.map((a) => a.close()));
    await coordinator.close();
    await open.coordinator.close();
  }
});
