// The socket.io edge: one session per connection. It runs the handshake (hello -> welcome ->
// signed ready), validates every message with @fedclr/protocol, checks signatures, and turns
// what is left into RoundEngine events. It holds no round logic: invalid updates become
// 'update-invalid' events so the engine decides, records and answers them like any other.
//
// Wire: both directions use the socket.io event 'message' carrying one protocol message
// (binary fields travel as socket.io binary attachments).
//
// Every message to an agent except `reject` (frozen across majors) is signed here with the
// coordinator's Ed25519 identity, bound to the connection: the agent id, the nonce of the
// agent's hello and this connection's session id (signCoordinatorMessage). The welcome carries
// the public key; agents pin it (--coordinator-key) or trust it on first use.
import type { KeyObject } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { Server, Socket } from 'socket.io';
import {
  AGENT_TO_COORDINATOR,
  canonicalJson,
  createSessionId,
  rejectForError,
  rejectMessage,
  respondToHello,
  signCoordinatorMessage,
  updateRejectReasonFor,
} from '@fedclr/protocol';
import type { AgentMessage, CoordinatorMessage, Protocol, RejectReason, UpdateRejectReason } from '@fedclr/protocol';
import type { Admission } from './admission.js';
import { ed25519PublicKey, verifyMessage } from './auth.js';
import type { StateDb } from './db.js';
import type { EngineEvent } from './engine.js';
import type { CoordinatorMetrics } from './metrics.js';

export const MESSAGE_EVENT = 'message';

type SessionState = 'hello' | 'proving' | 'ready' | 'closed';

interface Session {
  readonly socket: Socket;
  state: SessionState;
  readonly connectedAt: number;
  agentId?: string;
  publicKey?: Uint8Array;
  key?: KeyObject;
  sessionId?: string;
  /** The agent's hello.nonce: every signature to this connection covers it. */
  nonce?: Uint8Array;
  /** hello.token: a one-time enrolment token, consumed at the key proof if it enrols this key. */
  token?: string;
  handshakeTimer?: NodeJS.Timeout;
  lastSeen: number;
  heartbeat?: { state: string; roundId?: number; progress?: number; at: number };
}

/** Limits on connections before their agent is trusted (config.connections). */
export interface PendingLimits {
  /** Bytes a pending connection may send (transport framing included) before it is cut. */
  readonly preHandshakeMaxBytes: number;
  readonly maxPending: number;
  readonly maxPendingPerIp: number;
  readonly maxPerIp: number;
}

/** One transport connection, tracked from the engine.io handshake (before socket.io's CONNECT). */
interface Conn {
  readonly ip: string;
  bytes: number;
  /** The agent behind it proved its key (signed ready): no longer pending. */
  trusted: boolean;
  closed: boolean;
  stopCounting?: () => void;
  timer?: NodeJS.Timeout;
}

/** The engine.io socket, as far as the gateway uses it. */
interface EngineConn {
  readonly request: IncomingMessage;
  close(): void;
  once(event: 'close', listener: () => void): void;
}

export interface GatewayOptions {
  readonly io: Server;
  readonly protocol: Protocol;
  readonly logger: Logger;
  readonly db: StateDb;
  /** Who may join (admission.ts): checked at the hello and again, enrolling, at the key proof. */
  readonly admission: Admission;
  readonly metrics: CoordinatorMetrics;
  readonly coordinatorId: string;
  /** The coordinator's Ed25519 identity (tweetnacl layout): signs every message to agents. */
  readonly identity: { readonly publicKey: Uint8Array; readonly secretKey: Uint8Array };
  readonly heartbeatIntervalMs: number;
  readonly handshakeTimeoutMs: number;
  readonly requireSignatures: boolean;
  /** Most trusted (admitted, ready) agents at once; pending connections are capped by `pending`. */
  readonly maxAgents: number;
  readonly pending: PendingLimits;
  /** Why an upload for this round cannot be taken now (engine.uploadRefusal): asked before any decoding. */
  readonly uploadRefusal: (agentId: string, roundId: number) => { reason: UpdateRejectReason; message: string } | undefined;
  /** Feeds an event to the round engine. */
  readonly dispatch: (event: EngineEvent) => void;
  /** The current model version (announced in welcome). */
  readonly modelVersion: () => string;
}

export interface AgentInfo {
  readonly agentId: string;
  readonly connectedSince: number;
  readonly lastSeen: number;
  readonly state?: string;
  readonly progress?: number;
}

export class Gateway {
  private readonly o: GatewayOptions;
  private readonly sessions = new Set<Session>();
  /** Authenticated sessions by agent id. */
  private readonly byAgent = new Map<string, Session>();
  private closing = false;
  private readonly canonical = new WeakMap<object, string>();
  private readonly conns = new WeakMap<object, Conn>();
  private readonly perIp = new Map<string, { pending: number; total: number }>();
  /** Disconnected agents' last_seen, written together on the next turn of the loop (flushLastSeen). */
  private lastSeen = new Map<string, number>();
  private pendingCount = 0;

  constructor(options: GatewayOptions) {
    this.o = options;
    options.io.engine.on('connection', (conn: EngineConn) => this.onTransport(conn));
    options.io.on('connection', (socket) => this.onConnection(socket));
  }

  /** Connections whose agent has not proved its key yet. */
  get pending(): number {
    return this.pendingCount;
  }

  /**
   * engine.io's allowRequest: refuses a new transport before the websocket upgrade when the
   * pending caps or the per-IP cap are reached (HTTP 403, nothing allocated).
   */
  allowRequest(req: IncomingMessage, callback: (err: string | null | undefined, success: boolean) => void): void {
    const why = this.overLimit(remoteIp(req));
    if (why !== undefined) {
      this.o.metrics.handshakesRejected.inc({ reason: 'connection-limit' });
      callback(why, false);
      return;
    }
    callback(null, true);
  }

  private overLimit(ip: string): string | undefined {
    const l = this.o.pending;
    const n = this.perIp.get(ip);
    if (this.closing) return 'the coordinator is shutting down';
    if (this.pendingCount >= l.maxPending) return `too many connections awaiting their handshake (${l.maxPending})`;
    if ((n?.pending ?? 0) >= l.maxPendingPerIp) return `too many connections awaiting their handshake from ${ip} (${l.maxPendingPerIp})`;
    if ((n?.total ?? 0) >= l.maxPerIp) return `too many connections from ${ip} (${l.maxPerIp})`;
    return undefined;
  }

  /**
   * A new transport connection (engine.io handshake done, before any socket.io packet): it is
   * pending until its agent proves its key. While pending, every byte it sends is counted on the
   * raw socket as it arrives, so an oversize frame is cut after preHandshakeMaxBytes instead of
   * being buffered up to the transport's limit (maxHttpBufferSize holds for trusted agents).
   */
  private onTransport(engineConn: EngineConn): void {
    const o = this.o;
    const ip = remoteIp(engineConn.request);
    const why = this.overLimit(ip); // allowRequest already checked; this closes the race between upgrades
    if (why !== undefined) {
      o.metrics.handshakesRejected.inc({ reason: 'connection-limit' });
      engineConn.close();
      return;
    }
    const conn: Conn = { ip, bytes: 0, trusted: false, closed: false };
    this.conns.set(engineConn, conn);
    const counts = this.perIp.get(ip) ?? { pending: 0, total: 0 };
    counts.pending++;
    counts.total++;
    this.perIp.set(ip, counts);
    this.pendingCount++;
    const raw = engineConn.request.socket;
    const onData = (chunk: Buffer): void => {
      conn.bytes += chunk.length;
      if (conn.bytes > o.pending.preHandshakeMaxBytes && !conn.trusted) {
        conn.stopCounting?.();
        o.metrics.handshakesRejected.inc({ reason: 'too-large' });
        o.logger.warn({ ip, bytes: conn.bytes, limit: o.pending.preHandshakeMaxBytes }, 'connection sent more than the pre-handshake limit before proving its key; cut');
        raw.destroy();
      }
    };
    raw.on('data', onData);
    conn.stopCounting = () => {
      raw.removeListener('data', onData);
      delete conn.stopCounting;
    };
    conn.timer = setTimeout(() => {
      if (!conn.trusted && !conn.closed) {
        o.metrics.handshakesRejected.inc({ reason: 'timeout' });
        o.logger.info({ ip }, 'transport handshake timed out; disconnecting');
        engineConn.close();
      }
    }, o.handshakeTimeoutMs);
    engineConn.once('close', () => {
      conn.closed = true;
      if (conn.timer !== undefined) clearTimeout(conn.timer);
      conn.stopCounting?.();
      if (!conn.trusted) this.pendingCount--;
      const c = this.perIp.get(ip);
      if (c !== undefined) {
        if (!conn.trusted) c.pending--;
        c.total--;
        if (c.total <= 0) this.perIp.delete(ip);
      }
    });
  }

  /** The agent on this connection proved its key: lift the pending limits. */
  private trust(session: Session): void {
    const conn = this.conns.get(session.socket.conn);
    if (conn === undefined || conn.trusted) return;
    conn.trusted = true;
    conn.stopCounting?.();
    if (conn.timer !== undefined) clearTimeout(conn.timer);
    if (!conn.closed) {
      this.pendingCount--;
      const c = this.perIp.get(conn.ip);
      if (c !== undefined) c.pending--;
    }
  }

  get connected(): number {
    return this.sessions.size;
  }

  get authenticated(): number {
    return this.byAgent.size;
  }

  agents(): AgentInfo[] {
    return [...this.byAgent.values()].map((s) => ({
      agentId: s.agentId as string,
      connectedSince: s.connectedAt,
      lastSeen: s.lastSeen,
      ...(s.heartbeat === undefined ? {} : { state: s.heartbeat.state }),
      ...(s.heartbeat?.progress === undefined ? {} : { progress: s.heartbeat.progress }),
    }));
  }

  /** True when this agent id has an authenticated session. */
  isConnected(agentId: string): boolean {
    return this.byAgent.get(agentId)?.state === 'ready';
  }

  /** Refuse new connections from now on. */
  stopAccepting(): void {
    this.closing = true;
  }

  /** Sends a message to an authenticated agent; false if it is not connected. */
  send(agentId: string, message: CoordinatorMessage): boolean {
    const s = this.byAgent.get(agentId);
    if (s === undefined || s.state !== 'ready') return false;
    s.socket.emit(MESSAGE_EVENT, message.type === 'reject' ? message : this.sign(s, message));
    return true;
  }

  /**
   * Signs a message for one connection (agent id, hello nonce, session id). The canonical JSON
   * of a message object is computed once however many agents get it (the engine sends one
   * round-start object to the whole cohort, and never mutates a message it sent).
   */
  private sign<M extends Exclude<CoordinatorMessage, { type: 'reject' }>>(s: Session, message: M): M {
    const binding = { agentId: s.agentId as string, nonce: s.nonce as Uint8Array, sessionId: s.sessionId as string };
    let canonical = this.canonical.get(message);
    if (canonical === undefined) {
      canonical = canonicalJson(message);
      this.canonical.set(message, canonical);
    }
    return signCoordinatorMessage(message, binding, this.o.identity.secretKey, canonical);
  }

  /** Disconnects an agent (after a shutdown message, for instance). */
  disconnect(agentId: string): void {
    const s = this.byAgent.get(agentId);
    if (s !== undefined) s.socket.disconnect(true);
  }

  /**
   * Ends a revoked agent's session at once: a signed shutdown 'evicted' naming the reason, then
   * the disconnect. The engine hears 'agent-left' now, so it is never sampled again (and drops
   * out of a running round like any agent that leaves). False if it was not connected.
   */
  evict(agentId: string, reason: string): boolean {
    const s = this.byAgent.get(agentId);
    if (s === undefined) return false;
    const wasReady = s.state === 'ready';
    if (wasReady) s.socket.emit(MESSAGE_EVENT, this.sign(s, { type: 'shutdown', reason: 'evicted', message: reason.slice(0, 2000) }));
    this.byAgent.delete(agentId);
    s.state = 'closed';
    this.o.logger.warn({ agentId, reason }, 'agent evicted');
    if (wasReady) this.o.dispatch({ type: 'agent-left', agentId });
    // Let the shutdown reach the agent before the transport closes.
    setTimeout(() => s.socket.disconnect(true), 100).unref();
    return true;
  }

  disconnectAll(): void {
    for (const s of [...this.sessions]) s.socket.disconnect(true);
  }

  // ---- connection lifecycle -------------------------------------------------------------------

  private onConnection(socket: Socket): void {
    const o = this.o;
    const session: Session = { socket, state: 'hello', connectedAt: Date.now(), lastSeen: Date.now() };
    socket.conn.on('data', (data: unknown) => o.metrics.bytesIn.inc(undefined, byteSize(data)));
    socket.conn.on('packetCreate', (packet: { data?: unknown }) => o.metrics.bytesOut.inc(undefined, byteSize(packet.data)));
    if (this.closing) {
      this.refuse(session, 'shutting-down', 'the coordinator is shutting down');
      return;
    }
    this.sessions.add(session);
    session.handshakeTimer = setTimeout(() => {
      if (session.state === 'hello' || session.state === 'proving') {
        o.logger.warn({ socket: socket.id, agentId: session.agentId, state: session.state }, 'handshake timed out; disconnecting');
        o.metrics.handshakesRejected.inc({ reason: 'timeout' });
        socket.disconnect(true);
      }
    }, o.handshakeTimeoutMs);
    socket.on(MESSAGE_EVENT, (raw: unknown) => this.onMessage(session, raw));
    socket.on('disconnect', (reason) => this.onDisconnect(session, reason));
  }

  private refuse(session: Session, reason: RejectReason, text: string): void {
    this.o.metrics.handshakesRejected.inc({ reason });
    this.o.logger.info({ socket: session.socket.id, agentId: session.agentId, reason, detail: text }, 'agent refused');
    session.socket.emit(MESSAGE_EVENT, rejectMessage(reason, text, this.o.protocol.version));
    session.state = 'closed';
    // Let the reject reach the agent before the transport closes.
    setImmediate(() => session.socket.disconnect(true));
  }

  private onDisconnect(session: Session, reason: string): void {
    const o = this.o;
    if (session.handshakeTimer !== undefined) clearTimeout(session.handshakeTimer);
    this.sessions.delete(session);
    const wasReady = session.state === 'ready';
    session.state = 'closed';
    const id = session.agentId;
    if (id !== undefined && this.byAgent.get(id) === session) {
      this.byAgent.delete(id);
      o.logger.info({ agentId: id, reason }, 'agent disconnected');
      // Batched: with synchronous=FULL each write is an fsync, and agents leave in waves (a
      // dropout wave, a restart); one write per disconnect was 5% of the coordinator's CPU at 100.
      if (this.lastSeen.size === 0) setImmediate(() => this.flushLastSeen());
      this.lastSeen.set(id, Date.now());
      if (wasReady) o.dispatch({ type: 'agent-left', agentId: id });
    }
  }

  private flushLastSeen(): void {
    const seen = this.lastSeen;
    this.lastSeen = new Map();
    try {
      this.o.db.touchMany(seen);
    } catch (err) {
      this.o.logger.error({ err, agents: seen.size }, 'could not record last_seen');
    }
  }

  // ---- messages -------------------------------------------------------------------------------

  private onMessage(session: Session, raw: unknown): void {
    session.lastSeen = Date.now();
    switch (session.state) {
      case 'hello':
        this.onHello(session, raw);
        return;
      case 'proving':
        this.onProof(session, raw);
        return;
      case 'ready':
        this.onAgentMessage(session, raw);
        return;
      case 'closed':
        return;
    }
  }

  private onHello(session: Session, raw: unknown): void {
    const o = this.o;
    const parsed = o.protocol.validate(AGENT_TO_COORDINATOR, raw);
    if (!parsed.ok || parsed.message.type !== 'hello') {
      const err = parsed.ok ? new Error(`expected a hello first; got '${parsed.message.type}'`) : parsed.error;
      const reject = rejectForError(err, o.protocol.version);
      o.metrics.handshakesRejected.inc({ reason: reject.reason });
      o.logger.info({ socket: session.socket.id, reason: reject.reason, err: reject.message }, 'hello refused');
      session.socket.emit(MESSAGE_EVENT, reject);
      session.state = 'closed';
      setImmediate(() => session.socket.disconnect(true));
      return;
    }
    const hello = parsed.message;
    session.agentId = hello.agentId;
    if (hello.token !== undefined) session.token = hello.token;
    const decision = o.admission.check(hello.agentId, hello.publicKey, hello.token, Date.now());
    if (!decision.ok) {
      this.refuse(session, 'not-enrolled', decision.message);
      return;
    }
    const sessionId = createSessionId();
    const reply = respondToHello(hello, {
      sessionId,
      coordinatorKey: o.identity.publicKey,
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      coordinatorId: o.coordinatorId,
      modelVersion: o.modelVersion(),
      limits: o.protocol.limits,
      version: o.protocol.version,
    });
    if (reply.type === 'reject') {
      this.refuse(session, reply.reason, reply.message);
      return;
    }
    session.publicKey = new Uint8Array(hello.publicKey);
    session.key = ed25519PublicKey(session.publicKey);
    session.sessionId = sessionId;
    session.nonce = new Uint8Array(hello.nonce);
    session.state = 'proving';
    session.socket.emit(MESSAGE_EVENT, this.sign(session, reply));
  }

  private onProof(session: Session, raw: unknown): void {
    const o = this.o;
    const parsed = o.protocol.validate(AGENT_TO_COORDINATOR, raw);
    if (!parsed.ok || parsed.message.type !== 'ready') {
      this.refuse(session, 'invalid-hello', parsed.ok ? `expected a signed 'ready' after welcome; got '${parsed.message.type}'` : parsed.error.message);
      return;
    }
    if (!verifyMessage(session.key as KeyObject, parsed.message, session.sessionId as string)) {
      this.refuse(session, 'bad-signature', "the 'ready' message must carry an Ed25519 signature of signingPayload(ready, sessionId) by the hello's key");
      return;
    }
    const agentId = session.agentId as string;
    // Check again and enrol (consuming a token) in one transaction: the operator may have revoked
    // the key, or another session enrolled this id or used this token, since the hello.
    let decision: { ok: true } | { ok: false; message: string };
    try {
      decision = o.admission.admit(agentId, session.publicKey as Uint8Array, session.token, Date.now());
    } catch (err) {
      o.logger.error({ err, agentId }, 'could not record the enrolment');
      this.refuse(session, 'capacity', 'the coordinator could not record this session');
      return;
    }
    if (!decision.ok) {
      this.refuse(session, 'not-enrolled', decision.message);
      return;
    }
    if (session.handshakeTimer !== undefined) clearTimeout(session.handshakeTimer);
    const previous = this.byAgent.get(agentId);
    // maxAgents counts admitted agents only (a reconnecting agent replaces its old session).
    if ((previous === undefined || previous === session) && this.byAgent.size >= o.maxAgents) {
      this.refuse(session, 'capacity', `the coordinator serves at most ${o.maxAgents} agents`);
      return;
    }
    if (previous !== undefined && previous !== session) {
      // The same identity proved itself again: the old connection is stale (or a twin). Replace it.
      o.logger.warn({ agentId }, 'agent opened a new session; closing the previous one');
      this.byAgent.delete(agentId);
      const wasReady = previous.state === 'ready';
      previous.state = 'closed';
      previous.socket.disconnect(true);
      if (wasReady) o.dispatch({ type: 'agent-left', agentId });
    }
    session.state = 'ready';
    this.trust(session);
    this.byAgent.set(agentId, session);
    o.logger.info({ agentId, socket: session.socket.id }, 'agent authenticated');
    o.dispatch({ type: 'agent-ready', agentId });
  }

  private onAgentMessage(session: Session, raw: unknown): void {
    const o = this.o;
    const agentId = session.agentId as string;
    // Uploads: cohort membership first, before the schema, the signature or the frame is looked at.
    if (isRecord(raw) && raw['type'] === 'update') {
      const rid = raw['roundId'];
      if (typeof rid === 'number' && Number.isSafeInteger(rid) && rid >= 0) {
        const refusal = o.uploadRefusal(agentId, rid);
        if (refusal !== undefined) {
          o.dispatch({ type: 'update-invalid', agentId, roundId: rid, reason: refusal.reason, message: refusal.message });
          return;
        }
      }
    }
    const parsed = o.protocol.validate(AGENT_TO_COORDINATOR, raw);
    if (!parsed.ok) {
      const rawType = isRecord(raw) ? raw['type'] : undefined;
      if (rawType === 'update') {
        const rid = isRecord(raw) ? raw['roundId'] : undefined;
        o.dispatch({
          type: 'update-invalid',
          agentId,
          roundId: typeof rid === 'number' && Number.isSafeInteger(rid) && rid >= 0 ? rid : undefined,
          reason: updateRejectReasonFor(parsed.error),
          code: parsed.error.code,
          message: parsed.error.message,
        });
      } else {
        o.logger.warn({ agentId, code: parsed.error.code, err: parsed.error.message }, 'invalid message from agent: ignored');
      }
      return;
    }
    const msg: AgentMessage = parsed.message;
    if (o.requireSignatures && msg.type !== 'hello' && !verifyMessage(session.key as KeyObject, msg, session.sessionId as string)) {
      if (msg.type === 'update') {
        o.dispatch({
          type: 'update-invalid',
          agentId,
          roundId: msg.roundId,
          reason: 'bad-signature',
          message: 'the update is not signed by the agent key for this session (sig over signingPayload(update, sessionId))',
        });
      } else {
        o.logger.warn({ agentId, type: msg.type }, 'unsigned or badly signed message: ignored');
      }
      return;
    }
    switch (msg.type) {
      case 'update':
        o.dispatch({ type: 'update', agentId, message: msg });
        return;
      case 'error':
        o.dispatch({ type: 'agent-error', agentId, message: msg });
        return;
      case 'secagg':
        o.dispatch({ type: 'secagg', agentId, message: msg });
        return;
      case 'sampling-answer':
        o.dispatch({ type: 'sampling-answer', agentId, message: msg });
        return;
      case 'heartbeat':
        session.heartbeat = {
          state: msg.state,
          at: Date.now(),
          ...(msg.roundId === undefined ? {} : { roundId: msg.roundId }),
          ...(msg.progress === undefined ? {} : { progress: msg.progress }),
        };
        return;
      case 'ready':
        return; // already available; idempotent
      case 'hello':
        o.logger.warn({ agentId }, 'second hello on an authenticated session: ignored');
        return;
    }
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The peer address of a request (IPv4-mapped IPv6 addresses as plain IPv4). */
function remoteIp(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? 'unknown';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

function byteSize(data: unknown): number {
  if (typeof data === 'string') return Buffer.byteLength(data);
  if (data instanceof Uint8Array || data instanceof ArrayBuffer) return data.byteLength;
  return 0;
}

