// A scripted in-memory coordinator for agent tests (an injected connector): each connection
// checks what the agent sends (schema, signatures) and delivers coordinator messages, signed
// for that connection by default (`deliver`) or exactly as given (`deliverRaw`: attacks).
import assert from 'node:assert/strict';
import nacl from 'tweetnacl';
import {
  AGENT_TO_COORDINATOR,
  computeModelHash,
  encodeFrame,
  parseMessage,
  respondToHello,
  signCoordinatorMessage,
  signingPayload,
} from '@fedclr/protocol';
import type { AgentMessage, ConnectionBinding, CoordinatorMessage, HelloMessage, Manifest, RoundConfig, RoundStartMessage, SignedCoordinatorMessage } from '@fedclr/protocol';
import type { AgentOutbound, AgentSocket, Connector } from '../src/agent.js';

export type KeyPair = { publicKey: Uint8Array; secretKey: Uint8Array };

/** The coordinator's identity (tweetnacl; the protocol signs with node:crypto, same bytes). */
export const COORDINATOR = nacl.sign.keyPair();
export const COORDINATOR_KEY = Buffer.from(COORDINATOR.publicKey).toString('hex');

export class FakeConnection implements AgentSocket {
  connected = false;
  readonly sent: AgentMessage[] = [];
  private onOpen: () => void = () => undefined;
  private onClose: (r: string) => void = () => undefined;
  private onMsg: (raw: unknown) => void = () => undefined;
  private waiters: { pred: (m: AgentMessage) => boolean; resolve: (m: AgentMessage) => void }[] = [];
  publicKey: Uint8Array | undefined;
  agentId = '';
  nonce: Uint8Array | undefined;

  constructor(
    readonly sessionId: string,
    readonly keys: KeyPair = COORDINATOR,
  ) {}

  onConnect(l: () => void): void {
    this.onOpen = l;
  }
  onConnectError(): void {}
  onDisconnect(l: (r: string) => void): void {
    this.onClose = l;
  }
  onMessage(l: (raw: unknown) => void): void {
    this.onMsg = l;
  }
  send(message: AgentOutbound): void {
    const parsed = parseMessage(AGENT_TO_COORDINATOR, message);
    if (parsed.type === 'hello') {
      this.publicKey = parsed.publicKey;
      this.agentId = parsed.agentId;
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
    queueMicrotask(() => this.onClose('io client disconnect'));
  }

  // ---- the coordinator's side ----

  /** This connection's binding (what the coordinator signs over). */
  get binding(): ConnectionBinding {
    return { agentId: this.agentId, nonce: this.nonce as Uint8Array, sessionId: this.sessionId };
  }
  /** `msg` signed for this connection (or for `binding`, with `keys`). */
  sign<M extends SignedCoordinatorMessage>(msg: M, keys: KeyPair = this.keys, binding: ConnectionBinding = this.binding): M {
    const b = msg.type === 'welcome' ? { ...binding, sessionId: msg.sessionId } : binding;
    return signCoordinatorMessage(msg, b, keys.secretKey);
  }
  /** Delivers `msg` signed for this connection by the coordinator key (rejects go unsigned). */
  deliver(msg: CoordinatorMessage): void {
    this.onMsg(msg.type === 'reject' ? msg : this.sign(msg));
  }
  /** Delivers exactly this (an attack). */
  deliverRaw(msg: unknown): void {
    this.onMsg(msg);
  }
  drop(reason = 'transport close'): void {
    this.connected = false;
    this.onClose(reason);
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
  /** Opens the connection and waits for the hello. */
  async open(): Promise<HelloMessage> {
    this.connected = true;
    this.onOpen();
    return (await this.next('hello')) as HelloMessage;
  }
  /** hello -> signed welcome (announcing `announce`'s key) -> signed ready. */
  async handshake(announce: KeyPair = this.keys): Promise<HelloMessage> {
    const hello = await this.open();
    this.deliver(respondToHello(hello, { sessionId: this.sessionId, coordinatorKey: announce.publicKey, heartbeatIntervalMs: 60_000 }));
    await this.next('ready');
    return hello;
  }
}

export class FakeNetwork {
  readonly connections: FakeConnection[] = [];
  private waiting: (() => void)[] = [];
  constructor(readonly keys: KeyPair = COORDINATOR) {}
  readonly connector: Connector = () => {
    const c = new FakeConnection(`attack-session-${String(this.connections.length).padStart(8, '0')}`, this.keys);
    this.connections.push(c);
    for (const w of this.waiting.splice(0)) w();
    return c;
  };
  async connection(i: number, timeoutMs = 5000): Promise<FakeConnection> {
    const started = Date.now();
    for (;;) {
      const c = this.connections[i];
      if (c !== undefined) return c;
      if (Date.now() - started > timeoutMs) throw new Error(`no connection #${i} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.waiting.push(resolve);
        setTimeout(resolve, 20);
      });
    }
  }
}

export const MANIFEST: Manifest = [
  { name: 'enc/kernel', shape: [8, 4], dtype: 'float32' },
  { name: 'enc/bias', shape: [4], dtype: 'float32' },
];
export const GLOBAL = Float32Array.from({ length: 36 }, (_, i) => Math.cos(i));
export const CONFIG: RoundConfig = {
  localEpochs: 1,
  batchSize: 16,
  learningRate: 0.05,
  optimizer: 'sgd',
  loss: 'ntxent',
  temperature: 0.2,
  fedproxMu: 0,
  clipNorm: 1,
  deadlineMs: 5000,
  aggregation: 'plain',
  cohortSize: 8,
};

export function roundStart(roundId: number, config: Partial<RoundConfig> = {}): RoundStartMessage {
  return {
    type: 'round-start',
    roundId,
    modelVersion: computeModelHash({ manifest: MANIFEST, data: GLOBAL }),
    config: { ...CONFIG, ...config },
    weights: encodeFrame({ manifest: MANIFEST, data: GLOBAL }),
  };
}
