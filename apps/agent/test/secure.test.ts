// Secure rounds on the agent side, against a scripted coordinator (an injected connector) that
// runs a real SecAggServer with two in-process peer agents: the agent trains while the key
// stages run, sends its masked input as a signed header plus a uint32 update frame, and refuses
// (typed errors) unsigned, replayed, mis-addressed and untrusted messages, and a coordinator
// that asks for both shares of one neighbour.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import nacl from 'tweetnacl';
import { AGENT_TO_COORDINATOR, computeModelHash, decodeFrame, encodeFrame, parseMessage, respondToHello, signCoordinatorMessage, signingPayload } from '@fedclr/protocol';
import type { AgentMessage, CoordinatorMessage, HelloMessage, Manifest, RoundConfig, RoundStartMessage, SecaggMessage, UpdateMessage } from '@fedclr/protocol';
import {
  SecAggAgent,
  SecAggServer,
  decodeCanonical,
  deriveDpEncoding,
  deriveFixedPoint,
  deriveSecAggParams,
  encodeCanonical,
  encodeFixedPoint,
  generateSigningKeyPair,
  seededRandomWords,
  signEnvelope,
  type AgentMessage as SecAggAgentMessage,
  type CanonicalValue,
  type FixedPointParams,
  type ServerMessage,
  type SigningKeyPair,
} from '@fedclr/secagg';
import { startAgent, type AgentEvents, type AgentOutbound, type AgentSocket } from '../src/agent.js';
import { createFakeTrainer, fakeLocalWeights } from '../src/fake-trainer.js';

const logger = pino({ level: process.env['FEDCLR_LOG_LEVEL'] ?? 'warn', base: { svc: 'agent-secure-test' } });
const SERVER = '@coordinator';
const ME = 'unit-agent';
const PEERS = ['peer-1', 'peer-2'];
const MANIFEST: Manifest = [
  { name: 'enc/kernel', shape: [8, 4], dtype: 'float32' },
  { name: 'enc/bias', shape: [4], dtype: 'float32' },
];
const GLOBAL = Float32Array.from({ length: 36 }, (_, i) => Math.cos(i) * 0.1);
const CONFIG: RoundConfig = {
  localEpochs: 1,
  batchSize: 16,
  learningRate: 0.05,
  optimizer: 'sgd',
  loss: 'ntxent',
  temperature: 0.2,
  fedproxMu: 0,
  clipNorm: 0,
  deadlineMs: 10_000,
  aggregation: 'secure',
  cohortSize: 3,
};
/** The coordinator's identity: signs its protocol messages and its secagg envelopes (the agent pins it). */
const COORD_KEYS = generateSigningKeyPair();

/** One in-memory connection; every message the agent sends is schema-checked and signature-checked. */
class Conn implements AgentSocket {
  connected = false;
  readonly sent: AgentMessage[] = [];
  readonly sessionId = 'secure-session-000000001';
  publicKey: Uint8Array | undefined;
  nonce: Uint8Array | undefined;
  private listeners: { open: () => void; message: (raw: unknown) => void; close: (r: string) => void } = {
    open: () => undefined,
    message: () => undefined,
    close: () => undefined,
  };
  private waiters: { pred: (m: AgentMessage) => boolean; resolve: (m: AgentMessage) => void }[] = [];
  onConnect(l: () => void): void {
    this.listeners.open = l;
  }
  onConnectError(): void {}
  onDisconnect(l: (r: string) => void): void {
    this.listeners.close = l;
  }
  onMessage(l: (raw: unknown) => void): void {
    this.listeners.message = l;
  }
  send(message: AgentOutbound): void {
    const parsed = parseMessage(AGENT_TO_COORDINATOR, message);
    if (parsed.type === 'hello') {
      this.publicKey = parsed.publicKey;
      this.nonce = parsed.nonce;
    } else {
      const sig = (parsed as { sig?: Uint8Array }).sig;
      assert.ok(sig !== undefined && nacl.sign.detached.verify(signingPayload(parsed, this.sessionId), sig, this.publicKey as Uint8Array), `${parsed.type} signature`);
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
    queueMicrotask(() => this.listeners.close('io client disconnect'));
  }
  /** Delivers a coordinator message, signed for this connection. */
  deliver(msg: CoordinatorMessage): void {
    if (msg.type === 'reject') {
      this.listeners.message(msg);
      return;
    }
    const sessionId = msg.type === 'welcome' ? msg.sessionId : this.sessionId;
    this.listeners.message(signCoordinatorMessage(msg, { agentId: ME, nonce: this.nonce as Uint8Array, sessionId }, COORD_KEYS.secretKey));
  }
  next<T extends AgentMessage>(pred: (m: AgentMessage) => boolean, what: string, timeoutMs = 5000): Promise<T> {
    const seen = this.sent.find(pred);
    if (seen !== undefined) return Promise.resolve(seen as T);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (m) => {
          clearTimeout(t);
          resolve(m as T);
        },
      });
    });
  }
  async handshake(): Promise<void> {
    this.connected = true;
    this.listeners.open();
    const hello = (await this.next((m) => m.type === 'hello', 'hello')) as HelloMessage;
    this.deliver(respondToHello(hello, { sessionId: this.sessionId, coordinatorKey: COORD_KEYS.publicKey, heartbeatIntervalMs: 60_000 }));
    await this.next((m) => m.type === 'ready', 'ready');
  }
}

const isSecagg = (stage: string) => (m: AgentMessage) => m.type === 'secagg' && m.stage === stage;

function roundStart(roundId: number, config: RoundConfig = CONFIG): RoundStartMessage {
  return {
    type: 'round-start',
    roundId,
    modelVersion: computeModelHash({ manifest: MANIFEST, data: GLOBAL }),
    config,
    weights: encodeFrame({ manifest: MANIFEST, data: GLOBAL }),
  };
}

/** A scripted coordinator: SecAggServer + two peers in process; the agent under test over `conn`. */
class Coordinator {
  readonly keys: SigningKeyPair;
  readonly peerKeys = new Map(PEERS.map((id) => [id, generateSigningKeyPair()] as const));
  readonly peers = new Map<string, SecAggAgent>();
  server: SecAggServer | undefined;
  readonly peerWeights = new Map([['peer-1', 7], ['peer-2', 9]]);
  readonly peerDeltas = new Map(PEERS.map((id, j) => [id, Float32Array.from({ length: GLOBAL.length }, (_, i) => 0.01 * Math.sin(i + 3 * j))] as const));
  constructor(readonly conn: Conn, readonly roundId: number, keys: SigningKeyPair = COORD_KEYS) {
    this.keys = keys;
  }

  open(
    agentKey: Uint8Array,
    session = `fedclr/test/round-${this.roundId}`,
    encoding: FixedPointParams = deriveFixedPoint({ dimension: GLOBAL.length, clip: 0.1, cohortSize: 3, maxWeight: 100 }),
  ): ServerMessage[] {
    const enrolled = new Map<string, Uint8Array>([[ME, agentKey], ...[...this.peerKeys].map(([id, k]) => [id, k.publicKey] as const)]);
    this.server = new SecAggServer({ session, serverId: SERVER, identity: this.keys, enrolled, cohort: [ME, ...PEERS], dropoutFraction: 0, corruptFraction: 0, encoding });
    for (const id of PEERS) this.peers.set(id, new SecAggAgent({ id, identity: this.peerKeys.get(id) as SigningKeyPair, serverPublicKey: this.keys.publicKey, serverId: SERVER, session }));
    return this.server.start();
  }

  wrap(m: ServerMessage | Record<string, unknown>, to: string, keys: SigningKeyPair = this.keys, roundId = this.roundId): SecaggMessage {
    const stage = String((m as { stage: string }).stage);
    return { type: 'secagg', roundId, stage, from: SERVER, to, payload: encodeCanonical({ envelope: m as unknown as CanonicalValue, signer: keys.publicKey }) };
  }

  /** Delivers server messages: peers answer at once (and set their input after setup); the agent over the connection. */
  async route(messages: readonly ServerMessage[]): Promise<void> {
    for (const m of messages) {
      for (const to of m.recipients) {
        if (to === ME) {
          this.conn.deliver(this.wrap(m, ME));
          continue;
        }
        const peer = this.peers.get(to) as SecAggAgent;
        const out: SecAggAgentMessage[] = [...(await peer.receive(m))];
        if (m.stage === 'setup') {
          const x = encodeFixedPoint(this.peerDeltas.get(to) as Float32Array, this.peerWeights.get(to) as number, peer.config!.encoding, seededRandomWords(createHash('sha256').update(to).digest()));
          out.push(...(await peer.setInput(x)));
        }
        for (const o of out) await this.route((await (this.server as SecAggServer).receive(o)).messages);
      }
    }
  }

  /** Feeds one agent message (secagg, or the masked input's header + update) to the server. */
  async fromAgent(m: SecaggMessage, update?: UpdateMessage): Promise<void> {
    let envelope = decodeCanonical(m.payload) as Record<string, unknown>;
    if (update !== undefined) {
      const frame = decodeFrame(update.frame);
      assert.deepEqual(frame.manifest, [{ name: 'secagg/masked', shape: [GLOBAL.length + 1], dtype: 'uint32' }]);
      const header = envelope.payload as Record<string, unknown>;
      envelope = { ...envelope, payload: { ...header, masked: new Uint32Array(frame.data.buffer, frame.data.byteOffset, GLOBAL.length + 1) } };
    }
    await this.route((await (this.server as SecAggServer).receive(envelope)).messages);
  }
}

async function setup(): Promise<{ conn: Conn; coord: Coordinator; errors: AgentEvents['secagg-error'][0][]; close: () => Promise<unknown> }> {
  let conn: Conn | undefined;
  const agent = await startAgent({
    coordinatorUrl: 'https://coordinator.test',
    stateDir: mkdtempSync(join(tmpdir(), 'fedclr-agent-secure-')),
    agentId: ME,
    trainer: createFakeTrainer({ seed: 'me', exampleCount: 42, scale: 0.02, delayMs: 300 }),
    connector: () => (conn = new Conn()),
    logger,
    reconnect: { initialDelayMs: 60_000 },
    coordinatorKey: COORD_KEYS.publicKey,
    policy: { minCohort: 3 },
  });
  const errors: AgentEvents['secagg-error'][0][] = [];
  agent.events.on('secagg-error', (e) => errors.push(e));
  while (conn === undefined) await new Promise((r) => setTimeout(r, 5));
  await conn.handshake();
  return { conn, coord: new Coordinator(conn, 7), errors, close: () => agent.close() };
}

const settle = () => new Promise((r) => setTimeout(r, 50));

test('secure round: keys are exchanged while training runs; the masked input goes out as a signed header + uint32 frame; the server unmasks weight x delta and the count', async () => {
  const { conn, coord, errors, close } = await setup();
  try {
    conn.deliver(roundStart(7));
    const setupMsgs = coord.open(conn.publicKey as Uint8Array);
    await coord.route(setupMsgs);
    const advertise = await conn.next<SecaggMessage>(isSecagg('advertise'), 'advertise');
    assert.ok(!conn.sent.some((m) => m.type === 'update'), 'key setup runs before training is done');
    assert.equal(advertise.from, ME);
    assert.equal(advertise.to, SERVER);
    await coord.fromAgent(advertise);
    await coord.fromAgent(await conn.next<SecaggMessage>(isSecagg('share-keys'), 'share-keys'));
    await coord.fromAgent(await conn.next<SecaggMessage>(isSecagg('share-check'), 'share-check'));
    const header = await conn.next<SecaggMessage>(isSecagg('masked-input'), 'masked-input header');
    const update = await conn.next<UpdateMessage>((m) => m.type === 'update', 'masked update');
    assert.equal(update.exampleCount, undefined, 'no plaintext example count in a secure round');
    assert.ok(conn.sent.indexOf(header) < conn.sent.indexOf(update), 'the header precedes the vector');
    assert.deepEqual(Object.keys((decodeCanonical(header.payload) as { payload: object }).payload), ['maskedWith'], 'the header carries no vector');
    await coord.fromAgent(header, update);
    await coord.fromAgent(await conn.next<SecaggMessage>(isSecagg('consistency'), 'consistency'));
    await coord.fromAgent(await conn.next<SecaggMessage>(isSecagg('unmask-response'), 'unmask-response'));
    const status = (coord.server as SecAggServer).status;
    assert.equal(status.kind, 'done');
    if (status.kind !== 'done') return;
    const { decoded } = status.result;
    assert.equal(decoded.weight, 42 + 7 + 9, 'the masked counts sum exactly');
    // sum of w_i clip(delta_i) / W, decoded; the agent's delta is its fake local model minus the global one.
    const local = fakeLocalWeights(GLOBAL, 'me', 7, 0.02);
    let worst = 0;
    for (let i = 0; i < GLOBAL.length; i++) {
      const mine = Math.fround((local[i] as number) - (GLOBAL[i] as number));
      const want = (42 * mine + 7 * (coord.peerDeltas.get('peer-1')?.[i] as number) + 9 * (coord.peerDeltas.get('peer-2')?.[i] as number)) / 100;
      worst = Math.max(worst, Math.abs((decoded.values[i] as number) - want));
    }
    assert.ok(worst <= decoded.valueErrorBound, `decoded sum off by ${worst} > ${decoded.valueErrorBound}`);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('secure round: unsigned, replayed, mis-addressed and untrusted messages are refused (typed, round goes on); asking for both shares of a neighbour makes the agent leave and report', async () => {
  const { conn, coord, errors, close } = await setup();
  try {
    conn.deliver(roundStart(7));
    const [setupMsg] = coord.open(conn.publicKey as Uint8Array) as [ServerMessage];
    const refusedSoFar = () => errors.filter((e) => !e.fatal && e.error.message !== '').length;
    const expectRefusal = async (n: number, re: RegExp): Promise<void> => {
      await settle();
      assert.equal(refusedSoFar(), n, `refusal #${n}`);
      const e = errors[n - 1];
      assert.equal((e?.error as { code?: string }).code, 'FEDCLR_AGENT_SECAGG_REFUSED');
      assert.match(`${e?.error.message} ${String((e?.error as { cause?: { code?: string } }).cause?.code)}`, re);
    };
    // Mis-addressed: another agent's envelope.
    conn.deliver({ ...coord.wrap(setupMsg, ME), to: 'peer-1' });
    await expectRefusal(1, /mis-addressed/);
    // Unsigned: the envelope's signature stripped.
    const rogue = generateSigningKeyPair();
    const { signature: _sig, ...unsigned } = setupMsg as unknown as Record<string, unknown>;
    conn.deliver(coord.wrap(unsigned, ME));
    await expectRefusal(2, /FEDCLR_SECAGG_MALFORMED/);
    // Tampered: a bogus signature.
    conn.deliver(coord.wrap({ ...(setupMsg as unknown as Record<string, unknown>), signature: new Uint8Array(64).fill(7) }, ME));
    await expectRefusal(3, /FEDCLR_SECAGG_BAD_SIGNATURE/);
    // Replayed from another round (a genuine setup of round 6's session, and a message of round 6).
    const other = new Coordinator(conn, 6, coord.keys);
    const [oldSetup] = other.open(conn.publicKey as Uint8Array, 'fedclr/test/round-6') as [ServerMessage];
    conn.deliver(coord.wrap(oldSetup, ME, other.keys, 7));
    await expectRefusal(4, /round-6/);
    conn.deliver(coord.wrap(setupMsg, ME, coord.keys, 6));
    await expectRefusal(5, /no secure round with this id/);
    assert.ok(!conn.sent.some((m) => m.type === 'secagg'), 'nothing answered so far');

    // The genuine setup is accepted (and pins the coordinator key)...
    await coord.route([setupMsg]);
    const advertise = await conn.next<SecaggMessage>(isSecagg('advertise'), 'advertise');
    // ...after which the same setup again is a replay, and a setup signed by another key is untrusted.
    conn.deliver(coord.wrap(setupMsg, ME));
    await expectRefusal(6, /FEDCLR_SECAGG_UNEXPECTED_STAGE/);
    conn.deliver(coord.wrap(signEnvelope({ session: 'fedclr/test/round-7', stage: 'keys', sender: SERVER, recipients: [ME], payload: { advertisements: [] } }, rogue.secretKey), ME, rogue));
    await expectRefusal(7, /not the trusted coordinator key/);

    // The round goes on to the unmask stage.
    await coord.fromAgent(advertise);
    await coord.fromAgent(await conn.next<SecaggMessage>(isSecagg('share-keys'), 'share-keys'));
    await coord.fromAgent(await conn.next<SecaggMessage>(isSecagg('share-check'), 'share-check'));
    const header = await conn.next<SecaggMessage>(isSecagg('masked-input'), 'masked-input');
    await coord.fromAgent(header, await conn.next<UpdateMessage>((m) => m.type === 'update', 'update'));
    await coord.fromAgent(await conn.next<SecaggMessage>(isSecagg('consistency'), 'consistency'));
    await conn.next<SecaggMessage>(isSecagg('unmask-response'), 'unmask-response');
    assert.equal(errors.filter((e) => e.fatal).length, 0);

    // A second announcement for the same session, signed by the coordinator, now calls peer-2 a
    // dropout: answering would hand over peer-2's mask key on top of its self-mask seed.
    const split = signEnvelope(
      { session: 'fedclr/test/round-7', stage: 'unmask', sender: SERVER, recipients: [ME], payload: { survivors: [ME, 'peer-1'], dropouts: ['peer-2'], signatures: [] } },
      coord.keys.secretKey,
    );
    conn.deliver(coord.wrap(split, ME));
    const report = await conn.next<Extract<AgentMessage, { type: 'error' }>>((m) => m.type === 'error', 'error report');
    assert.equal(report.code, 'FEDCLR_AGENT_SECAGG_FAILED');
    assert.equal(report.roundId, 7);
    assert.match(report.message, /FEDCLR_SECAGG_UNMASK_CONFLICT/);
    const fatal = errors.find((e) => e.fatal);
    assert.equal((fatal?.error as { code?: string }).code, 'FEDCLR_AGENT_SECAGG_FAILED');
    assert.equal(conn.sent.filter(isSecagg('unmask-response')).length, 1, 'no second unmask answer');
  } finally {
    await close();
  }
});

const DP_CONFIG: RoundConfig = { ...CONFIG, clipNorm: 0.5, dp: { noiseMultiplier: 1, noise: 'agents' } };
const DP_ENCODING = deriveDpEncoding({ noiseMultiplier: 1, clipNorm: 0.5 }, GLOBAL.length, deriveSecAggParams({ cohortSize: 3, dropoutFraction: 0, corruptFraction: 0 }));

test('secure DP round: the agent encodes weight 1 (not its 42 images) with its noise, and the sum unmasks', async () => {
  const { conn, coord, errors, close } = await setup();
  try {
    for (const id of PEERS) coord.peerWeights.set(id, 1);
    conn.deliver(roundStart(7, DP_CONFIG));
    await coord.route(coord.open(conn.publicKey as Uint8Array, undefined, DP_ENCODING));
    await coord.fromAgent(await conn.next<SecaggMessage>(isSecagg('advertise'), 'advertise'));
    await coord.fromAgent(await conn.next<SecaggMessage>(isSecagg('share-keys'), 'share-keys'));
    await coord.fromAgent(await conn.next<SecaggMessage>(isSecagg('share-check'), 'share-check'));
    const header = await conn.next<SecaggMessage>(isSecagg('masked-input'), 'masked-input header');
    await coord.fromAgent(header, await conn.next<UpdateMessage>((m) => m.type === 'update', 'masked update'));
    await coord.fromAgent(await conn.next<SecaggMessage>(isSecagg('consistency'), 'consistency'));
    await coord.fromAgent(await conn.next<SecaggMessage>(isSecagg('unmask-response'), 'unmask-response'));
    const status = (coord.server as SecAggServer).status;
    assert.ok(status.kind === 'done');
    assert.equal(status.result.decoded.weight, 3, 'three agents, one count each');
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});

test('secure DP round: a setup whose encoding cannot carry the noise (example-weighted, as before 3.0) makes the agent leave before it advertises a key', async () => {
  const { conn, coord, errors, close } = await setup();
  try {
    conn.deliver(roundStart(7, DP_CONFIG));
    const weighted = deriveFixedPoint({ dimension: GLOBAL.length, clip: DP_ENCODING.clip, cohortSize: 3, maxWeight: 100 });
    await coord.route(coord.open(conn.publicKey as Uint8Array, undefined, weighted));
    const report = await conn.next<Extract<AgentMessage, { type: 'error' }>>((m) => m.type === 'error', 'error report');
    assert.equal(report.code, 'FEDCLR_AGENT_SECAGG_FAILED');
    assert.match(report.message, /FEDCLR_SECAGG_PARAMS_MISMATCH.*config\.encoding\.weighted/);
    assert.ok(errors.some((e) => e.fatal));
    assert.ok(!conn.sent.some(isSecagg('advertise')), 'no key advertised');
  } finally {
    await close();
  }
});
