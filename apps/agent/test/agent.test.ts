// The agent against a scripted in-memory coordinator (an injected connector): handshake and key
// proof, training and upload, aborts, errors, reconnection and shutdown. Every message the agent
// sends is validated against the protocol schema and its signature checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import nacl from 'tweetnacl';
import {
  AGENT_TO_COORDINATOR,
  computeModelHash,
  decodeFrame,
  encodeFrame,
  parseMessage,
  respondToHello,
  signCoordinatorMessage,
  signingPayload,
} from '@fedclr/protocol';
import type { AgentMessage, CoordinatorMessage, HelloMessage, Manifest, RoundConfig, RoundStartMessage } from '@fedclr/protocol';
import { convnetS, withProjectionHead } from '@fedclr/contrastive';
import type { ImageDataset } from '@fedclr/data';
import { startAgent, type AgentHandle, type AgentOutbound, type AgentSocket, type Connector } from '../src/agent.js';
import { createContrastiveTrainer } from '../src/contrastive-trainer.js';
import { createFakeTrainer, fakeLocalWeights, type FakeTrainerOptions } from '../src/fake-trainer.js';
import type { LocalTrainer } from '../src/trainer.js';

const logger = pino({ level: process.env['FEDCLR_LOG_LEVEL'] ?? 'warn', base: { svc: 'agent-test' } });
const tmp = () => mkdtempSync(join(tmpdir(), 'fedclr-agent-'));
/** The scripted coordinator's Ed25519 identity (tweetnacl; the protocol signs with node:crypto). */
const COORD = nacl.sign.keyPair();
const COORD_KEY = Buffer.from(COORD.publicKey).toString('hex');
/** These tests exercise the mechanics: plain rounds of small cohorts are fine (policy: see attacks.test.ts). */
const LAX_POLICY = { requireSecure: false, minCohort: 1 };
const ALLOWED = new Set(['hello', 'ready', 'update', 'error', 'heartbeat']);

/** One fake connection, driven by the test as the coordinator. */
class FakeConnection implements AgentSocket {
  connected = false;
  readonly sent: AgentMessage[] = [];
  private onOpen: () => void = () => undefined;
  private onFail: (e: Error) => void = () => undefined;
  private onClose: (r: string) => void = () => undefined;
  private onMsg: (raw: unknown) => void = () => undefined;
  private waiters: { pred: (m: AgentMessage) => boolean; resolve: (m: AgentMessage) => void }[] = [];
  sessionId = 'test-session-0000000001';
  publicKey: Uint8Array | undefined;
  agentId = '';
  nonce: Uint8Array | undefined;

  onConnect(l: () => void): void {
    this.onOpen = l;
  }
  onConnectError(l: (e: Error) => void): void {
    this.onFail = l;
  }
  onDisconnect(l: (r: string) => void): void {
    this.onClose = l;
  }
  onMessage(l: (raw: unknown) => void): void {
    this.onMsg = l;
  }
  send(message: AgentOutbound): void {
    // Everything the agent sends must be a valid agent-to-coordinator message of an allowed type...
    const parsed = parseMessage(AGENT_TO_COORDINATOR, message);
    assert.ok(ALLOWED.has(parsed.type), `agent sent a '${parsed.type}'`);
    if (parsed.type === 'hello') {
      this.publicKey = parsed.publicKey;
      this.agentId = parsed.agentId;
      this.nonce = parsed.nonce;
    } else {
      // ...and, after the hello, signed for this session.
      const sig = (parsed as { sig?: Uint8Array }).sig;
      assert.ok(sig !== undefined, `${parsed.type} must be signed`);
      assert.ok(nacl.sign.detached.verify(signingPayload(parsed, this.sessionId), sig, this.publicKey as Uint8Array), `${parsed.type} signature`);
    }
    this.sent.push(parsed);
    for (const w of [...this.waiters]) {
      if (w.pred(parsed)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(parsed);
      }
    }
  }
  close(): void {
    if (!this.connected) return;
    this.connected = false;
    queueMicrotask(() => this.onClose('io client disconnect'));
  }
  // ---- test side ----
  open(): void {
    this.connected = true;
    this.onOpen();
  }
  fail(message: string): void {
    this.onFail(new Error(message));
  }
  drop(reason = 'transport close'): void {
    this.connected = false;
    this.onClose(reason);
  }
  /** Delivers a message signed by the coordinator for this connection (rejects are never signed). */
  deliver(msg: CoordinatorMessage): void {
    if (msg.type === 'reject') {
      this.onMsg(msg);
      return;
    }
    const sessionId = msg.type === 'welcome' ? msg.sessionId : this.sessionId;
    this.onMsg(signCoordinatorMessage(msg, { agentId: this.agentId, nonce: this.nonce as Uint8Array, sessionId }, COORD.secretKey));
  }
  next(type: string, pred: (m: AgentMessage) => boolean = () => true, timeoutMs = 5000): Promise<AgentMessage> {
    const seen = this.sent.find((m) => m.type === type && pred(m));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no '${type}' within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        pred: (m) => m.type === type && pred(m),
        resolve: (m) => {
          clearTimeout(t);
          resolve(m);
        },
      });
    });
  }
  /** Completes the handshake: hello -> welcome -> signed ready. */
  async handshake(heartbeatIntervalMs = 60_000): Promise<HelloMessage> {
    this.open();
    const hello = (await this.next('hello')) as HelloMessage;
    const welcome = respondToHello(hello, { sessionId: this.sessionId, coordinatorKey: COORD.publicKey, heartbeatIntervalMs });
    this.deliver(welcome);
    await this.next('ready');
    return hello;
  }
}

class FakeNetwork {
  readonly connections: FakeConnection[] = [];
  private waiting: ((c: FakeConnection) => void)[] = [];
  readonly connector: Connector = () => {
    const c = new FakeConnection();
    c.sessionId = `test-session-${String(this.connections.length).padStart(10, '0')}`;
    this.connections.push(c);
    for (const w of this.waiting.splice(0)) w(c);
    return c;
  };
  connection(i: number, timeoutMs = 5000): Promise<FakeConnection> {
    const c = this.connections[i];
    if (c !== undefined) return Promise.resolve(c);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no connection #${i} within ${timeoutMs} ms`)), timeoutMs);
      const check = (): void => {
        const x = this.connections[i];
        if (x !== undefined) {
          clearTimeout(t);
          resolve(x);
        } else this.waiting.push(check);
      };
      this.waiting.push(check);
    });
  }
}

const MANIFEST: Manifest = [
  { name: 'enc/kernel', shape: [8, 4], dtype: 'float32' },
  { name: 'enc/bias', shape: [4], dtype: 'float32' },
];
const GLOBAL = Float32Array.from({ length: 36 }, (_, i) => Math.cos(i));
const CONFIG: RoundConfig = {
  localEpochs: 2,
  batchSize: 16,
  learningRate: 0.05,
  optimizer: 'sgd',
  loss: 'ntxent',
  temperature: 0.2,
  fedproxMu: 0.01,
  clipNorm: 0,
  deadlineMs: 5000,
  aggregation: 'plain',
  cohortSize: 3,
};

function roundStart(roundId: number, config: Partial<RoundConfig> = {}, weights = GLOBAL): RoundStartMessage {
  const frame = encodeFrame({ manifest: MANIFEST, data: weights });
  return { type: 'round-start', roundId, modelVersion: computeModelHash({ manifest: MANIFEST, data: weights }), config: { ...CONFIG, ...config }, weights: frame };
}

async function agentWith(trainer: LocalTrainer | FakeTrainerOptions, extra: Record<string, unknown> = {}): Promise<{ agent: AgentHandle; net: FakeNetwork }> {
  const net = new FakeNetwork();
  const agent = await startAgent({
    coordinatorUrl: 'https://coordinator.test',
    stateDir: tmp(),
    agentId: 'unit-agent',
    trainer: 'train' in trainer ? (trainer as LocalTrainer) : createFakeTrainer(trainer as FakeTrainerOptions),
    connector: net.connector,
    logger,
    reconnect: { initialDelayMs: 10, maxDelayMs: 40 },
    coordinatorKey: COORD_KEY,
    policy: LAX_POLICY,
    ...extra,
  });
  return { agent, net };
}

test('handshake, key proof, training, signed upload of the delta only, heartbeats, completed shutdown', async () => {
  const { agent, net } = await agentWith({ seed: 'u', exampleCount: 42, scale: 0.1, delayMs: 150 });
  const c = await net.connection(0);
  const hello = await c.handshake(100);
  assert.equal(hello.agentId, 'unit-agent');
  assert.equal(Buffer.from(hello.publicKey).toString('hex'), agent.publicKey);

  const start = roundStart(3);
  c.deliver(start);
  const hb = await c.next('heartbeat', (m) => m.type === 'heartbeat' && m.state === 'training');
  assert.equal((hb as { roundId?: number }).roundId, 3);
  const upd = await c.next('update');
  assert.ok(upd.type === 'update');
  assert.equal(upd.roundId, 3);
  assert.equal(upd.modelVersion, start.modelVersion);
  assert.equal(upd.exampleCount, 42);
  assert.ok((upd.metrics?.loss ?? 0) > 0);
  const f = decodeFrame(upd.frame, { expected: MANIFEST, checkFinite: true });
  const delta = new Float32Array(f.data.buffer, f.data.byteOffset, GLOBAL.length);
  const local = fakeLocalWeights(GLOBAL, 'u', 3, 0.1);
  for (let i = 0; i < GLOBAL.length; i++) assert.equal(delta[i], Math.fround((local[i] as number) - (GLOBAL[i] as number)));

  c.deliver({ type: 'round-end', roundId: 3, outcome: 'completed', included: true, participants: 3, modelVersion: 'b'.repeat(64) });
  c.deliver({ type: 'shutdown', reason: 'completed' });
  const exit = await agent.done;
  assert.equal(exit.reason, 'completed');
  assert.equal(c.connected, false);
  assert.deepEqual([...new Set(c.sent.map((m) => m.type))].sort(), ['heartbeat', 'hello', 'ready', 'update']);
});

test('round-end aborted stops training: no update is sent', async () => {
  const { agent, net } = await agentWith({ delayMs: 10_000 });
  const c = await net.connection(0);
  await c.handshake();
  c.deliver(roundStart(1));
  await new Promise((r) => setTimeout(r, 50));
  c.deliver({ type: 'round-end', roundId: 1, outcome: 'aborted', reason: 'quorum not reached' });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(agent.state(), 'idle');
  assert.equal(c.sent.filter((m) => m.type === 'update' || m.type === 'error').length, 0);
  await agent.close();
});

test('deadline, trainer failure, NaN output, corrupt frame and non-float32 models become error messages, never updates', async () => {
  const failing: LocalTrainer = {
    train: async (input) => {
      if (input.round === 2) throw new Error('out of memory');
      if (input.round === 3) return { weights: new Float32Array(input.globalWeights.length).fill(Number.NaN), exampleCount: 1, metrics: {} };
      return new Promise(() => undefined); // round 1: hangs past the deadline
    },
  };
  const { agent, net } = await agentWith(failing, { uploadMarginMs: 900 });
  const c = await net.connection(0);
  await c.handshake();
  const code = async (roundId: number) => {
    const e = await c.next('error', (m) => m.type === 'error' && m.roundId === roundId, 4000);
    return e.type === 'error' ? e.code : '';
  };
  c.deliver(roundStart(1, { deadlineMs: 1000 }));
  assert.equal(await code(1), 'FEDCLR_AGENT_ROUND_ABORTED');
  c.deliver(roundStart(2));
  assert.equal(await code(2), 'FEDCLR_AGENT_TRAINING_FAILED');
  c.deliver(roundStart(3));
  assert.equal(await code(3), 'FEDCLR_AGENT_TRAINER_OUTPUT');
  const corrupt = roundStart(4);
  const w = corrupt.weights as Uint8Array;
  w[w.length - 1] = (w[w.length - 1] as number) ^ 1;
  c.deliver(corrupt);
  assert.equal(await code(4), 'FEDCLR_PROTO_HASH_MISMATCH');
  // (Secure rounds are supported now: see secure.test.ts.) A model with a non-float32 tensor is not.
  const intManifest: Manifest = [{ name: 'enc/steps', shape: [4], dtype: 'int32' }];
  const ints = Int32Array.from([1, 2, 3, 4]);
  c.deliver({ ...roundStart(5), modelVersion: computeModelHash({ manifest: intManifest, data: ints }), weights: encodeFrame({ manifest: intManifest, data: ints }) });
  assert.equal(await code(5), 'FEDCLR_AGENT_ROUND_UNSUPPORTED');
  assert.equal(c.sent.filter((m) => m.type === 'update').length, 0);
  await agent.close();
});

test('a supcon round reaching an agent without labels is refused with the reason, sent to the coordinator (which records it); no update', async () => {
  const spec = withProjectionHead(convnetS({ height: 8, width: 8, channels: 1, widths: [2, 2, 2] }), 2, { hidden: 2, out: 2 });
  const images: ImageDataset = { images: new Uint8Array(4 * 64).fill(7), labels: null, count: 4, height: 8, width: 8, channels: 1, classNames: [] };
  const { agent, net } = await agentWith(createContrastiveTrainer({ dataset: images, spec }));
  const c = await net.connection(0);
  await c.handshake();
  c.deliver(roundStart(6, { loss: 'supcon', temperature: 0.1 }));
  const refusal = await c.next('error', (m) => m.type === 'error' && m.roundId === 6, 4000);
  assert.ok(refusal.type === 'error');
  assert.equal(refusal.code, 'FEDCLR_AGENT_RECIPE_REFUSED', refusal.message);
  assert.match(refusal.message, /Round 6: this agent cannot run the coordinator's training recipe: loss 'supcon' needs class labels and this agent trains without them/);
  assert.equal(c.sent.filter((m) => m.type === 'update').length, 0);
  for (let i = 0; i < 100 && agent.state() !== 'idle'; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(agent.state(), 'idle', 'the agent is ready for the next round');
  await agent.close();
});

test('reconnects with backoff after a lost connection, a failed connect and a retryable reject', async () => {
  const { agent, net } = await agentWith({});
  const reconnects: number[] = [];
  agent.events.on('reconnecting', (r) => reconnects.push(r.delayMs));
  const c0 = await net.connection(0);
  await c0.handshake();
  c0.drop();
  const c1 = await net.connection(1);
  c1.fail('ECONNREFUSED');
  const c2 = await net.connection(2);
  c2.open();
  const hello = (await c2.next('hello')) as HelloMessage;
  assert.equal(hello.agentId, 'unit-agent');
  c2.deliver({ type: 'reject', reason: 'capacity', message: 'full', protocolVersion: '2.0' });
  const c3 = await net.connection(3);
  await c3.handshake();
  assert.equal(reconnects.length, 3);
  assert.ok(reconnects.every((d) => d >= 0 && d <= 40));
  // A restart notice: come back after reconnectAfterMs.
  c3.deliver({ type: 'shutdown', reason: 'restarting', reconnectAfterMs: 20 });
  const c4 = await net.connection(4);
  await c4.handshake();
  // A stop notice: the agent ends.
  c4.deliver({ type: 'shutdown', reason: 'stopping' });
  assert.equal((await agent.done).reason, 'stopping');
});

test('a fatal reject (not-enrolled) ends the agent; so does running out of attempts', async () => {
  const { agent, net } = await agentWith({});
  const c = await net.connection(0);
  c.open();
  await c.next('hello');
  c.deliver({ type: 'reject', reason: 'not-enrolled', message: 'not on the allow-list', protocolVersion: '2.0' });
  const exit = await agent.done;
  assert.equal(exit.reason, 'rejected');
  assert.match(exit.message ?? '', /not-enrolled/);

  const { agent: a2, net: n2 } = await agentWith({}, { reconnect: { initialDelayMs: 1, maxDelayMs: 2, maxAttempts: 2 } });
  (await n2.connection(0)).fail('ECONNREFUSED');
  (await n2.connection(1)).fail('ECONNREFUSED');
  (await n2.connection(2)).fail('ECONNREFUSED');
  const e2 = await a2.done;
  assert.equal(e2.reason, 'gave-up');
  assert.equal(e2.error !== undefined && (e2.error as { code?: string }).code, 'FEDCLR_AGENT_GAVE_UP');
});

test('startAgent validates its options', async () => {
  await assert.rejects(startAgent({ coordinatorUrl: 'ftp://x', stateDir: tmp(), trainer: createFakeTrainer(), coordinatorKey: COORD_KEY }), /coordinatorUrl/);
  await assert.rejects(startAgent({ coordinatorUrl: 'https://x', stateDir: '', trainer: createFakeTrainer(), coordinatorKey: COORD_KEY }), /stateDir/);
  await assert.rejects(startAgent({ coordinatorUrl: 'https://x', stateDir: tmp(), trainer: {} as LocalTrainer, coordinatorKey: COORD_KEY }), /trainer/);
});

/** A loopback port nothing listens on (bound, then released). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr !== null ? addr.port : 0));
    });
  });
}

/** Event-loop-holding resources of the kinds an agent creates: timers and TCP sockets. */
function liveHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r.startsWith('TCP')).length;
}

test('close() before the coordinator was ever reached settles promptly and leaves no timer or socket', async () => {
  const url = `http://127.0.0.1:${await closedPort()}`;
  const baseline = liveHandles();
  // 0 ms: the first connection attempt is still pending; 100 ms: refused, now in backoff.
  for (const waitMs of [0, 100]) {
    // A long connect timeout: close() must not wait for it.
    const agent = await startAgent({ coordinatorUrl: url, stateDir: tmp(), trainer: createFakeTrainer(), logger, connectTimeoutMs: 30_000, coordinatorKey: COORD_KEY });
    await new Promise((r) => setTimeout(r, waitMs));
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      agent.close(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`close() after ${waitMs} ms did not settle within 2 s (state ${agent.state()})`)), 2000);
      }),
    ]);
    clearTimeout(timer);
    assert.equal(exit.reason, 'closed');
    assert.ok(Date.now() - started < 2000);
    assert.equal(agent.state(), 'stopped');
  }
  await new Promise((r) => setImmediate(r));
  assert.ok(liveHandles() <= baseline, `still alive: ${process.getActiveResourcesInfo().join(', ')}`);
});
