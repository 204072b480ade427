// The edge agent: connect, prove its identity, train when picked, upload the update, repeat.
//
//   connect ─> hello {agentId, Ed25519 publicKey, fresh nonce} ─> welcome {sessionId, coordinatorKey, sig}
//           ─> ready (signed)
//   every coordinator message is verified before anything else: signed by the pinned (or, with
//   trustOnFirstUse, first-seen) coordinator key over this connection's agent id + nonce +
//   session id (coordinatorSigningPayload); unsigned, badly signed or replayed -> refused
//   (FEDCLR_AGENT_MESSAGE_*), logged, ignored: the connection and the round go on
//   sampling-invite (Poisson rounds, protocol 3.1): answered sampling-answer {volunteer} from
//                the agent's own coin (sampling.ts); the same round id always gets the same answer
//   round-start: refused (rule 'not-sampled') for a Poisson round this agent did not volunteer
//                for, or any round it declined; then checked against the round policy (policy.ts; refusal: an error message with
//                FEDCLR_AGENT_POLICY_REFUSED, nothing trained), then
//                decode + verify the weights frame (hash = modelVersion, finite) -> LocalTrainer
//                (aborted at the deadline, on round-end 'aborted', on disconnect or close)
//             -> plain:  update {delta = local - global, exampleCount, scalar metrics} (signed)
//             -> secure: SecAgg+ (secure-round.ts) runs its key stages while the trainer trains;
//                        the delta and its weight leave only as a masked fixed-point vector
//   round-end / update-rejected: logged and emitted
//   shutdown: 'completed' / 'stopping' / 'evicted' end the agent; 'restarting' reconnects later
//   connection lost or refused (retryable): reconnect with exponential backoff and jitter
//
// Everything sent goes through sendSigned(), whose type only admits hello, ready, update,
// error, heartbeat and secagg messages; the only tensor it can carry is the update frame built
// from weights (buildUpdate, or the masked vector of a secure round). No image or feature ever
// reaches this module.
import { EventEmitter } from 'node:events';
import { pino, type Logger } from 'pino';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import {
  COORDINATOR_TO_AGENT,
  PROTOCOL_VERSION,
  acceptWelcome,
  createConnectionNonce,
  createProtocol,
  openRoundStart,
  signingPayload,
  verifyCoordinatorMessage,
} from '@fedclr/protocol';
import type {
  ErrorMessage,
  HeartbeatMessage,
  HelloMessage,
  Manifest,
  Protocol,
  ProtocolLimits,
  ReadyMessage,
  RejectMessage,
  RoundEndMessage,
  RoundStartMessage,
  SamplingAnswerMessage,
  SamplingInviteMessage,
  SecaggMessage,
  ShutdownMessage,
  SignedCoordinatorMessage,
  UpdateMessage,
  UpdateRejectedMessage,
  WelcomeMessage,
} from '@fedclr/protocol';
import { Backoff, type BackoffOptions } from './backoff.js';
import { signDetached, type AgentPolicy } from '@fedclr/secagg';
import { CoordinatorKeys, parseCoordinatorKey } from './coordinator-keys.js';
import {
  AgentConfigError,
  CoordinatorKeyRequiredError,
  GaveUpError,
  InsecureUrlError,
  isAgentError,
  TlsVerifyError,
  MessageBadSignatureError,
  MessageReplayedError,
  MessageUnsignedError,
  PolicyRefusedError,
  RoundAbortedError,
  RoundUnsupportedError,
  SamplingConflictError,
  SecaggRefusedError,
  TrainingFailedError,
} from './errors.js';
import { loadOrCreateIdentity, type AgentIdentity } from './identity.js';
import { AgentPrivacyBudget, type PrivacyBudgetOptions } from './budget.js';
import { checkRoundPolicy, resolvePolicy, type RoundPolicy } from './policy.js';
import { SamplingMemory } from './sampling.js';
import { SecureRound, type RedTeamMode } from './secure-round.js';
import type { LocalTrainer } from './trainer.js';
import { buildUpdate, prepareDelta } from './update.js';

/** The only messages an agent can send. */
export type AgentOutbound = HelloMessage | ReadyMessage | UpdateMessage | ErrorMessage | HeartbeatMessage | SecaggMessage | SamplingAnswerMessage;

/** A connection to the coordinator (socket.io by default; tests may inject their own). */
export interface AgentSocket {
  readonly connected: boolean;
  onConnect(listener: () => void): void;
  onConnectError(listener: (err: Error) => void): void;
  onDisconnect(listener: (reason: string) => void): void;
  onMessage(listener: (raw: unknown) => void): void;
  send(message: AgentOutbound): void;
  close(): void;
}

export type Connector = (url: string) => AgentSocket;

/**
 * The default connector: socket.io-client, websocket transport, no built-in reconnection. An
 * https:// or wss:// URL is verified against Node's CA store, or against `ca` (PEM) instead.
 */
export function socketIoConnector(options: { connectTimeoutMs?: number; transports?: ('websocket' | 'polling')[]; ca?: string } = {}): Connector {
  return (url) => {
    const s = ioClient(url, {
      reconnection: false,
      forceNew: true,
      transports: options.transports ?? ['websocket'],
      timeout: options.connectTimeoutMs ?? 10_000,
      rejectUnauthorized: true,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
    });
    return socketIoAgentSocket(s);
  };
}

/**
 * A socket.io-client socket as an AgentSocket. `send` replaces the plain emit (a test link that
 * delays or drops messages, e.g. the chaos harness's).
 */
export function socketIoAgentSocket(s: ClientSocket, send: (message: AgentOutbound) => void = (m) => void s.emit('message', m)): AgentSocket {
  return {
    get connected() {
      return s.connected;
    },
    onConnect: (l) => void s.on('connect', l),
    onConnectError: (l) => void s.on('connect_error', l),
    onDisconnect: (l) => void s.on('disconnect', (reason) => l(String(reason))),
    onMessage: (l) => void s.on('message', l),
    send,
    close: () => void s.disconnect(),
  };
}

export interface AgentOptions {
  /** e.g. http://127.0.0.1:8080 */
  readonly coordinatorUrl: string;
  /** Holds identity.json (Ed25519 key pair, mode 0600). */
  readonly stateDir: string;
  readonly trainer: LocalTrainer;
  /** Default: the id stored with the key, derived from the public key on first run. */
  readonly agentId?: string;
  /** Advertised in hello (informational). */
  readonly exampleCount?: number;
  /**
   * A one-time enrolment token from the coordinator's operator (fedclr admin token), sent in every
   * hello: a coordinator that has not enrolled this key yet enrolls it with the token at the first
   * successful handshake; once enrolled, the token is ignored (so it may stay configured).
   */
  readonly enrolmentToken?: string;
  readonly capabilities?: readonly string[];
  readonly logger?: Logger;
  readonly reconnect?: BackoffOptions;
  readonly connectTimeoutMs?: number;
  /** Stop training this long before the round deadline, to leave time for the upload. */
  readonly uploadMarginMs?: number;
  readonly limits?: Partial<ProtocolLimits>;
  /** Override the transport (tests). */
  readonly connector?: Connector;
  /**
   * PEM CA certificate(s) to verify the coordinator's TLS certificate with, instead of the
   * system store (a private CA). `caPath` only names the file in error messages.
   */
  readonly ca?: string;
  readonly caPath?: string;
  /** Accept http:// (no TLS) to a host that is not loopback. */
  readonly insecure?: boolean;
  /**
   * The coordinator's Ed25519 public key (hex or base64; the coordinator prints it at start, GET
   * /api/status returns it as coordinatorKey). Every coordinator message, and every secure-
   * aggregation envelope, must be signed by it. Required unless trustOnFirstUse.
   */
  readonly coordinatorKey?: string | Uint8Array;
  /**
   * Without coordinatorKey: trust the key of the first verified welcome and remember it in
   * <stateDir>/coordinator-keys.json (a later change is refused). Weaker than pinning: a first
   * connection to an impostor pins the impostor. Logged as a warning at start.
   */
  readonly trustOnFirstUse?: boolean;
  /** Round policy overrides; merged over <stateDir>/policy.json (and saved there). See policy.ts. */
  readonly policy?: Partial<RoundPolicy>;
  /** This agent's own DP budget: only DP rounds, and none that would take its epsilon above maxEpsilon (budget.ts). */
  readonly privacyBudget?: PrivacyBudgetOptions;
  /**
   * TESTS ONLY: act on coordinator messages without verifying their signatures (the behaviour
   * before protocol 2.0). Exists so the attack tests can show what verification prevents.
   */
  readonly insecureSkipVerification?: boolean;
  /** Secure aggregation (rounds whose config says aggregation 'secure'). */
  readonly secagg?: {
    /** Local limits on any session the coordinator proposes (see @fedclr/secagg AgentPolicy). */
    readonly policy?: AgentPolicy;
    /** Robustness tests only: this agent misbehaves in secure rounds (see SecureRoundOptions.redTeam). */
    readonly redTeam?: RedTeamMode;
  };
}

export type AgentExitReason = 'completed' | 'stopping' | 'evicted' | 'closed' | 'rejected' | 'gave-up';

export interface AgentExit {
  readonly reason: AgentExitReason;
  readonly message?: string;
  readonly error?: Error;
}

export interface AgentEvents {
  connected: [];
  welcome: [WelcomeMessage];
  'round-start': [{ roundId: number; modelVersion: string; parameters: number }];
  'update-sent': [{ roundId: number; exampleCount: number; bytes: number; deltaNorm: number; clipped: boolean }];
  'round-end': [RoundEndMessage];
  'update-rejected': [UpdateRejectedMessage];
  'training-error': [{ roundId: number; error: Error }];
  /** A secure-aggregation message was refused (fatal: false) or the agent left the secure round (fatal: true). */
  'secagg-error': [{ roundId: number; error: Error; fatal: boolean }];
  /** A coordinator message was refused and ignored: unsigned, badly signed, replayed, or an untrusted key. */
  'message-refused': [{ type: string; roundId?: number; error: Error }];
  /** A verified round-start broke this agent's policy: nothing was trained (the coordinator was told why). */
  'round-refused': [{ roundId: number; error: Error }];
  /** A Poisson round's invitation was answered from this agent's own coin. */
  sampling: [{ roundId: number; rate: number; volunteer: boolean }];
  shutdown: [ShutdownMessage];
  disconnected: [string];
  reconnecting: [{ attempt: number; delayMs: number }];
  exit: [AgentExit];
}

export type AgentState = 'connecting' | 'handshake' | 'idle' | 'training' | 'uploading' | 'stopped';

export interface AgentHandle {
  readonly agentId: string;
  /** Hex Ed25519 public key (to put on an allow-list). */
  readonly publicKey: string;
  /** The effective round policy (after <stateDir>/policy.json and the options). */
  readonly policy: RoundPolicy;
  readonly events: EventEmitter<AgentEvents>;
  /** Resolves when the agent stops for good. */
  readonly done: Promise<AgentExit>;
  state(): AgentState;
  close(): Promise<AgentExit>;
}

type AbortKind = 'deadline' | 'coordinator' | 'disconnected' | 'closing' | 'superseded';

interface RoundTask {
  readonly roundId: number;
  readonly controller: AbortController;
  kind?: AbortKind;
  progress?: number;
}

type SessionOutcome =
  | { kind: 'lost'; welcomed: boolean; lastedMs: number; reason: string }
  | { kind: 'retry-later'; reason: string }
  | { kind: 'fatal'; error: Error }
  | { kind: 'shutdown'; message: ShutdownMessage };

const RETRYABLE_REJECTS = new Set(['capacity', 'shutting-down', 'duplicate-session']);
const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;
const STABLE_SESSION_MS = 5000;

class Agent {
  readonly events = new EventEmitter<AgentEvents>();
  readonly done: Promise<AgentExit>;
  private resolveDone: (e: AgentExit) => void = () => undefined;
  private readonly o: AgentOptions;
  private readonly id: AgentIdentity;
  private readonly log: Logger;
  private readonly protocol: Protocol;
  private readonly connector: Connector;
  private readonly backoff: Backoff;
  private readonly lifetime = new AbortController();
  private readonly uploadMarginMs: number;
  private socket: AgentSocket | undefined;
  private session: { id: string; maxFrameBytes: number; coordinatorKey: Uint8Array; lastRoundStart?: number } | undefined;
  /** This connection's hello.nonce: coordinator signatures are bound to it. */
  private nonce: Uint8Array | undefined;
  private readonly policy: RoundPolicy;
  private readonly budget: AgentPrivacyBudget | undefined;
  /** Poisson rounds: this agent's coins and the answers it gave (sampling.ts). */
  private readonly sampling: SamplingMemory;
  private endOutcome: SessionOutcome | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private task: RoundTask | undefined;
  private secure: SecureRound | undefined;
  private readonly usedSessions = new Set<string>();
  private readonly coordinatorKeys: CoordinatorKeys;
  private stateValue: AgentState = 'connecting';
  private closing = false;

  constructor(options: AgentOptions, identity: AgentIdentity, logger: Logger, keys: CoordinatorKeys, policy: RoundPolicy, budget: AgentPrivacyBudget | undefined) {
    this.o = options;
    this.id = identity;
    this.log = logger;
    this.coordinatorKeys = keys;
    this.policy = policy;
    this.budget = budget;
    this.sampling = new SamplingMemory(identity.secretKey);
    this.protocol = createProtocol(options.limits === undefined ? {} : { limits: options.limits });
    this.connector =
      options.connector ??
      socketIoConnector({
        ...(options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: options.connectTimeoutMs }),
        ...(options.ca === undefined ? {} : { ca: options.ca }),
      });
    this.backoff = new Backoff(options.reconnect);
    this.uploadMarginMs = options.uploadMarginMs ?? 250;
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
  }

  get state(): AgentState {
    return this.stateValue;
  }

  start(): void {
    void this.loop().then(
      (exit) => this.finish(exit),
      (err: unknown) => {
        this.log.error({ err }, 'agent loop failed');
        this.finish({ reason: 'closed', error: err as Error, message: (err as Error).message });
      },
    );
  }

  async close(): Promise<AgentExit> {
    if (!this.closing) {
      this.closing = true;
      this.abortTask('closing');
      this.endSecureRound('closing');
      this.socket?.close();
      // Last: ends a backoff sleep or a connection attempt still pending (see runSession).
      this.lifetime.abort();
    }
    return this.done;
  }

  private finish(exit: AgentExit): void {
    this.stateValue = 'stopped';
    this.stopHeartbeat();
    this.log.info({ reason: exit.reason, detail: exit.message }, 'agent stopped');
    this.events.emit('exit', exit);
    this.resolveDone(exit);
  }

  // ---- connection loop ------------------------------------------------------------------------

  private async loop(): Promise<AgentExit> {
    for (;;) {
      if (this.closing) return { reason: 'closed' };
      const outcome = await this.runSession();
      if (this.closing) return { reason: 'closed' };
      let delay: number;
      switch (outcome.kind) {
        case 'fatal':
          return { reason: 'rejected', error: outcome.error, message: outcome.error.message };
        case 'shutdown': {
          const m = outcome.message;
          if (m.reason === 'completed') return { reason: 'completed', message: m.message ?? 'the run is complete' };
          if (m.reason === 'evicted') return { reason: 'evicted', message: m.message ?? 'evicted by the coordinator' };
          if (m.reconnectAfterMs === undefined) return { reason: 'stopping', message: m.message ?? 'the coordinator stopped' };
          this.backoff.reset();
          delay = m.reconnectAfterMs + Math.round(Math.random() * Math.min(1000, m.reconnectAfterMs));
          break;
        }
        case 'lost':
          // Only a session that lasted counts as a success: a coordinator that drops agents
          // right after the welcome must not pull them into a tight reconnect loop.
          if (outcome.welcomed && outcome.lastedMs >= STABLE_SESSION_MS) this.backoff.reset();
          if (this.backoff.exhausted) {
            const error = new GaveUpError(this.backoff.attempts, outcome.reason);
            return { reason: 'gave-up', error, message: error.message };
          }
          delay = this.backoff.next();
          break;
        case 'retry-later':
          if (this.backoff.exhausted) {
            const error = new GaveUpError(this.backoff.attempts, outcome.reason);
            return { reason: 'gave-up', error, message: error.message };
          }
          delay = this.backoff.next();
          break;
      }
      this.log.info({ delayMs: delay, attempt: this.backoff.attempts }, 'reconnecting');
      this.events.emit('reconnecting', { attempt: this.backoff.attempts, delayMs: delay });
      await sleep(delay, this.lifetime.signal);
    }
  }

  private runSession(): Promise<SessionOutcome> {
    return new Promise((resolve) => {
      this.stateValue = 'connecting';
      this.endOutcome = undefined;
      this.session = undefined;
      let settled = false;
      let welcomed = false;
      let welcomedAt = 0;
      // close() while the connection attempt is pending: socket.io emits no 'disconnect' for a
      // socket that never connected, so the session has to end here or close() never resolves.
      const onClose = (): void => {
        sock.close();
        settle({ kind: 'lost', welcomed, lastedMs: welcomed ? Date.now() - welcomedAt : 0, reason: 'closed' });
      };
      const settle = (o: SessionOutcome): void => {
        if (settled) return;
        settled = true;
        this.lifetime.signal.removeEventListener('abort', onClose);
        this.stopHeartbeat();
        this.abortTask('disconnected');
        this.endSecureRound('disconnected');
        this.session = undefined;
        this.socket = undefined;
        resolve(o);
      };
      const sock = this.connector(this.o.coordinatorUrl);
      this.socket = sock;
      sock.onConnect(() => {
        this.stateValue = 'handshake';
        this.events.emit('connected');
        this.nonce = createConnectionNonce();
        const hello: HelloMessage = {
          type: 'hello',
          protocolVersion: PROTOCOL_VERSION,
          agentId: this.id.agentId,
          publicKey: this.id.publicKey,
          nonce: this.nonce,
          capabilities: [...(this.o.capabilities ?? ['fedprox', 'dp'])],
        };
        if (this.o.exampleCount !== undefined) hello.exampleCount = this.o.exampleCount;
        if (this.o.enrolmentToken !== undefined) hello.token = this.o.enrolmentToken;
        sock.send(hello);
      });
      sock.onConnectError((err) => {
        const tls = tlsFailure(err);
        if (tls !== undefined) {
          // A certificate that does not verify will not verify on the next attempt either.
          const url = this.o.coordinatorUrl;
          const anchors = this.o.ca === undefined ? 'the system CA store' : `the CA in ${this.o.caPath ?? '--ca'}`;
          const error = new TlsVerifyError(url, hostOf(url), anchors, tls.code, tls.message);
          this.log.error({ code: error.code, tls: tls.code }, error.message);
          settle({ kind: 'fatal', error });
          return;
        }
        this.log.debug({ err: err.message }, 'connection failed');
        settle({ kind: 'lost', welcomed: false, lastedMs: 0, reason: err.message });
      });
      sock.onDisconnect((reason) => {
        this.events.emit('disconnected', reason);
        this.log.info({ reason }, 'disconnected');
        settle(this.endOutcome ?? { kind: 'lost', welcomed, lastedMs: welcomed ? Date.now() - welcomedAt : 0, reason });
      });
      sock.onMessage((raw) => {
        if (settled) return;
        const before = this.session;
        this.onMessage(raw);
        if (before === undefined && this.session !== undefined) {
          welcomed = true;
          welcomedAt = Date.now();
        }
      });
      if (this.closing) onClose();
      else this.lifetime.signal.addEventListener('abort', onClose, { once: true });
    });
  }

  /** Ends the current connection with an outcome (the disconnect handler settles the session). */
  private endSession(outcome: SessionOutcome): void {
    this.endOutcome = outcome;
    this.abortTask('disconnected');
    this.endSecureRound('disconnected');
    this.socket?.close();
  }

  // ---- messages from the coordinator ----------------------------------------------------------

  private onMessage(raw: unknown): void {
    const v = this.protocol.validate(COORDINATOR_TO_AGENT, raw);
    if (!v.ok) {
      this.log.warn({ code: v.error.code, err: v.error.message }, 'invalid message from the coordinator: ignored');
      return;
    }
    const msg = v.message;
    if (msg.type === 'reject') {
      // Not signed: its layout is frozen across protocol majors (see the protocol README).
      this.onHandshakeReply(msg);
      return;
    }
    if (!this.verify(msg)) return;
    switch (msg.type) {
      case 'welcome':
        this.onHandshakeReply(msg);
        return;
      case 'round-start':
        if (this.session === undefined) return;
        this.onRoundStart(msg);
        return;
      case 'sampling-invite':
        if (this.session === undefined) return;
        this.onSamplingInvite(msg);
        return;
      case 'round-end':
        if (this.task !== undefined && this.task.roundId === msg.roundId && msg.outcome === 'aborted') this.abortTask('coordinator');
        if (this.secure?.roundId === msg.roundId) this.endSecureRound(`round ended (${msg.outcome})`);
        this.log.info({ roundId: msg.roundId, outcome: msg.outcome, included: msg.included, reason: msg.reason }, 'round ended');
        this.events.emit('round-end', msg);
        return;
      case 'update-rejected':
        this.log.warn({ roundId: msg.roundId, reason: msg.reason, code: msg.code, detail: msg.message }, 'update rejected by the coordinator');
        this.events.emit('update-rejected', msg);
        return;
      case 'shutdown':
        this.log.info({ reason: msg.reason, reconnectAfterMs: msg.reconnectAfterMs }, 'coordinator sent shutdown');
        this.events.emit('shutdown', msg);
        this.endSession({ kind: 'shutdown', message: msg });
        return;
      case 'secagg':
        if (this.session === undefined) return;
        if (this.secure === undefined || this.secure.roundId !== msg.roundId) {
          this.onSecaggError(msg.roundId, new SecaggRefusedError(msg.roundId, msg.stage, 'no secure round with this id is running (late or replayed)'), false);
          return;
        }
        void this.secure.handle(msg);
        return;
    }
  }

  /**
   * Checks a coordinator message before anything acts on it: signed by the trusted coordinator
   * key over this connection (agent id, hello nonce, session id), and not a replay. False: the
   * message was refused (logged, 'message-refused' emitted) and must be ignored.
   */
  private verify(msg: SignedCoordinatorMessage): boolean {
    const nonce = this.nonce;
    let key: Uint8Array;
    let sessionId: string;
    let firstUse = false;
    if (msg.type === 'welcome') {
      if (this.session !== undefined) {
        this.log.warn('second welcome on an established session: ignored');
        return false;
      }
      try {
        firstUse = this.coordinatorKeys.assess(msg.coordinatorKey) === 'first-use';
      } catch (err) {
        return this.refuse(msg, err as Error);
      }
      key = msg.coordinatorKey;
      sessionId = msg.sessionId;
    } else {
      if (this.session === undefined) {
        this.log.debug({ type: msg.type }, 'coordinator message before the welcome: ignored');
        return false;
      }
      key = this.session.coordinatorKey;
      sessionId = this.session.id;
    }
    if (this.o.insecureSkipVerification !== true) {
      if (nonce === undefined) return this.refuse(msg, new MessageBadSignatureError(msg.type, 'no hello was sent on this connection'));
      const problem = verifyCoordinatorMessage(msg, { agentId: this.id.agentId, nonce, sessionId }, key);
      const keyHex = Buffer.from(key).toString('hex').slice(0, 16);
      if (problem === 'unsigned') return this.refuse(msg, new MessageUnsignedError(msg.type, `key ${keyHex}...`));
      if (problem === 'bad-signature') {
        return this.refuse(
          msg,
          new MessageBadSignatureError(
            msg.type,
            `not signed by coordinator key ${keyHex}... for this connection (agent ${this.id.agentId}, session ${sessionId}): another key, an edited message, or one replayed from another connection or addressed to another agent`,
          ),
        );
      }
      // Within one connection a signature can be replayed: round ids only grow.
      if (msg.type === 'round-start' && this.session !== undefined) {
        const last = this.session.lastRoundStart;
        if (last !== undefined && msg.roundId <= last) {
          return this.refuse(msg, new MessageReplayedError(msg.type, `round ${msg.roundId} is not newer than round ${last}, already started on this connection`));
        }
        this.session.lastRoundStart = msg.roundId;
      }
    }
    if (firstUse) {
      this.coordinatorKeys.remember(key).catch((err: unknown) => this.log.error({ err }, 'could not remember the coordinator key'));
    }
    return true;
  }

  private refuse(msg: SignedCoordinatorMessage, error: Error): false {
    const roundId = 'roundId' in msg ? msg.roundId : undefined;
    this.log.warn({ code: (error as { code?: string }).code, type: msg.type, roundId, err: error.message }, 'coordinator message refused: ignored');
    this.events.emit('message-refused', { type: msg.type, error, ...(roundId === undefined ? {} : { roundId }) });
    return false;
  }

  private onHandshakeReply(reply: WelcomeMessage | RejectMessage): void {
    // A reject may also come after the welcome: the coordinator refuses the signed 'ready'
    // (key proof) with reason 'bad-signature' or 'not-enrolled'.
    if (reply.type === 'reject') {
      if (this.session !== undefined && !RETRYABLE_REJECTS.has(reply.reason) && this.o.insecureSkipVerification !== true) {
        // A reject is unsigned (frozen across majors), and after a verified welcome anyone on the
        // path could forge one: it ends this connection, never the agent. If the coordinator really
        // refuses this agent, it says so again at the next hello, where a reject is final.
        this.log.warn({ reason: reply.reason, detail: reply.message }, 'unsigned reject after the welcome: reconnecting rather than stopping');
        this.endSession({ kind: 'retry-later', reason: `${reply.reason}: ${reply.message} (unsigned reject after the welcome)` });
        return;
      }
      if (RETRYABLE_REJECTS.has(reply.reason)) {
        this.log.warn({ reason: reply.reason, detail: reply.message }, 'coordinator asked us to come back later');
        this.endSession({ kind: 'retry-later', reason: `${reply.reason}: ${reply.message}` });
      } else {
        this.log.error({ reason: reply.reason, detail: reply.message }, 'coordinator refused this agent');
        let error: Error = new Error(`rejected: ${reply.reason}`);
        try {
          acceptWelcome(reply); // throws the catalogued error: VERSION_INCOMPATIBLE or HANDSHAKE_REJECTED
        } catch (err) {
          error = err as Error;
        }
        this.endSession({ kind: 'fatal', error });
      }
      return;
    }
    let welcome: WelcomeMessage;
    try {
      welcome = acceptWelcome(reply);
    } catch (err) {
      this.endSession({ kind: 'fatal', error: err as Error });
      return;
    }
    this.session = {
      id: welcome.sessionId,
      maxFrameBytes: Math.min(welcome.limits.maxFrameBytes, this.protocol.limits.maxFrameBytes),
      coordinatorKey: Uint8Array.from(welcome.coordinatorKey),
    };
    this.stateValue = 'idle';
    this.sendSigned({ type: 'ready' });
    this.startHeartbeat(welcome.heartbeatIntervalMs);
    this.log.info({ sessionId: welcome.sessionId, protocolVersion: welcome.protocolVersion }, 'welcomed by the coordinator');
    this.events.emit('welcome', welcome);
  }

  // ---- rounds ---------------------------------------------------------------------------------

  /** Charges this round to the agent's privacy budget (saved before anything is revealed); false: over budget. */
  private chargeBudget(msg: RoundStartMessage): boolean {
    const budget = this.budget;
    if (budget === undefined) return true;
    if (msg.config.dp === undefined) return false;
    const key = `${Buffer.from(this.coordinatorKeys.trusted ?? new Uint8Array()).toString('hex')}:${msg.roundId}:${msg.modelVersion}`;
    const ok = budget.charge(key, msg.config.dp.noiseMultiplier);
    const spent = budget.spent();
    if (ok) this.log.info({ roundId: msg.roundId, epsilon: spent.epsilon, delta: spent.delta, rounds: spent.rounds, maxEpsilon: spent.maxEpsilon }, 'privacy budget charged for this round');
    return ok;
  }

  /** Answers a Poisson round's invitation from this agent's own coin (the same answer for the same round). */
  private onSamplingInvite(msg: SamplingInviteMessage): void {
    const key = (this.session as NonNullable<Agent['session']>).coordinatorKey;
    const answer = this.sampling.invite(key, msg.roundId, msg.rate);
    if ('conflict' in answer) {
      this.refuse(msg, new SamplingConflictError(msg.roundId, msg.rate, answer.conflict));
      return;
    }
    this.log.info({ roundId: msg.roundId, rate: msg.rate, volunteer: answer.volunteer }, 'sampling invitation answered');
    this.events.emit('sampling', { roundId: msg.roundId, rate: msg.rate, volunteer: answer.volunteer });
    this.sendSigned({ type: 'sampling-answer', roundId: msg.roundId, volunteer: answer.volunteer });
  }

  private onRoundStart(msg: RoundStartMessage): void {
    const key = (this.session as NonNullable<Agent['session']>).coordinatorKey;
    // Sampling first: a round this agent's coin did not pick is refused whatever else it promises.
    // Then the privacy budget (the agent's own accountant), then the round policy.
    const budgetProblem = this.budget?.refusal(msg.config);
    const refusal = this.sampling.check(key, msg.roundId, msg.config) ?? (budgetProblem === undefined ? checkRoundPolicy(this.policy, msg.config) : { rule: 'max-epsilon', problem: budgetProblem });
    if (refusal !== undefined) {
      const error = new PolicyRefusedError(msg.roundId, refusal.rule, refusal.problem);
      this.log.warn({ roundId: msg.roundId, code: error.code, rule: refusal.rule, err: error.message }, 'round refused by the agent policy: not training');
      this.events.emit('round-refused', { roundId: msg.roundId, error });
      this.sendError(msg.roundId, error);
      return;
    }
    if (this.task !== undefined) this.abortTask('superseded');
    this.endSecureRound('superseded by a new round');
    const roundId = msg.roundId;
    let manifest: Manifest;
    let global: Float32Array;
    try {
      if (msg.config.aggregation !== 'plain' && msg.config.aggregation !== 'secure') {
        throw new RoundUnsupportedError(roundId, `aggregation '${String(msg.config.aggregation)}' is unknown to this agent`);
      }
      const decoded = openRoundStart(msg, { copy: true, limits: this.protocol.limits });
      const other = decoded.manifest.find((t) => t.dtype !== 'float32');
      if (other !== undefined) throw new RoundUnsupportedError(roundId, `tensor '${other.name}' is ${other.dtype}; only float32 models are trained`);
      manifest = decoded.manifest;
      global = new Float32Array(decoded.data.buffer, decoded.data.byteOffset, decoded.data.byteLength / 4);
    } catch (err) {
      this.log.error({ err, roundId }, 'cannot take part in this round');
      this.sendError(roundId, err as Error);
      return;
    }
    const task: RoundTask = { roundId, controller: new AbortController() };
    this.task = task;
    if (msg.config.aggregation === 'secure') this.openSecureRound(msg, task);
    const budget = Math.max(0, msg.config.deadlineMs - this.uploadMarginMs);
    const timer = setTimeout(() => this.abortTask('deadline', task), budget);
    this.log.info({ roundId, parameters: global.length, modelVersion: msg.modelVersion }, 'round started: training');
    this.events.emit('round-start', { roundId, modelVersion: msg.modelVersion, parameters: global.length });
    void this.runRound(task, msg, manifest, global)
      .catch((err: unknown) => this.log.error({ err, roundId }, 'round task failed'))
      .finally(() => {
        clearTimeout(timer);
        if (this.task === task) {
          this.task = undefined;
          if (this.stateValue === 'training' || this.stateValue === 'uploading') this.stateValue = 'idle';
        }
      });
  }

  private async runRound(task: RoundTask, msg: RoundStartMessage, manifest: Manifest, global: Float32Array): Promise<void> {
    const roundId = msg.roundId;
    const started = Date.now();
    this.stateValue = 'training';
    let output;
    try {
      const signal = task.controller.signal;
      const training = this.o.trainer.train(
        { round: roundId, globalWeights: global.slice(), manifest, config: msg.config, ...(this.session !== undefined ? { lineage: Buffer.from(this.session.coordinatorKey).toString('hex') } : {}) },
        signal,
        (fraction) => {
          task.progress = Math.min(1, Math.max(0, fraction));
        },
      );
      // Do not depend on the trainer honouring the signal: an abort ends the round here at once,
      // and whatever the trainer returns later is dropped (and its failure logged).
      training.catch((err: unknown) => {
        if (signal.aborted) this.log.debug({ err, roundId }, 'aborted trainer settled');
      });
      const aborted = new Promise<never>((_, reject) => {
        const fire = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
        if (signal.aborted) fire();
        else signal.addEventListener('abort', fire, { once: true });
      });
      aborted.catch(() => undefined);
      output = await Promise.race([training, aborted]);
    } catch (err) {
      if (task.controller.signal.aborted) {
        this.log.info({ roundId, why: task.kind }, 'training aborted');
        if (task.kind === 'deadline') this.sendError(roundId, new RoundAbortedError(roundId, 'the round deadline passed before training finished'));
        return;
      }
      // The trainer's refusals (a recipe it cannot run) keep their code: the coordinator records why.
      if (isAgentError(err, 'FEDCLR_AGENT_RECIPE_REFUSED') || isAgentError(err, 'FEDCLR_AGENT_ROUND_UNSUPPORTED')) {
        this.log.warn({ roundId, code: err.code, reason: err.message }, 'round refused');
        this.sendError(roundId, err);
        return;
      }
      const error = new TrainingFailedError(roundId, (err as Error).message ?? String(err));
      this.log.error({ err, roundId }, 'local training failed');
      this.events.emit('training-error', { roundId, error });
      this.sendError(roundId, error);
      return;
    }
    if (task.controller.signal.aborted) {
      this.log.info({ roundId, why: task.kind }, 'training finished after the round was aborted: update dropped');
      return;
    }
    if (msg.config.aggregation === 'secure') {
      await this.submitSecure(task, msg, manifest, global, output, Date.now() - started);
      return;
    }
    let built;
    try {
      built = buildUpdate({
        roundId,
        modelVersion: msg.modelVersion,
        manifest,
        global,
        output,
        config: msg.config,
        durationMs: Date.now() - started,
        limits: { maxFrameBytes: this.session?.maxFrameBytes ?? this.protocol.limits.maxFrameBytes, maxMetrics: this.protocol.limits.maxMetrics },
      });
    } catch (err) {
      this.log.error({ err, roundId }, 'cannot build the update');
      this.events.emit('training-error', { roundId, error: err as Error });
      this.sendError(roundId, err as Error);
      return;
    }
    this.stateValue = 'uploading';
    if (this.budget !== undefined && !this.chargeBudget(msg)) {
      const error = new PolicyRefusedError(roundId, 'max-epsilon', 'the privacy budget was spent while this round trained: its update is not sent');
      this.log.warn({ roundId, rule: 'max-epsilon' }, error.message);
      this.sendError(roundId, error);
      return;
    }
    if (!this.sendSigned(built.message)) {
      this.log.warn({ roundId }, 'connection lost before the upload');
      return;
    }
    const info = { roundId, exampleCount: output.exampleCount, bytes: built.message.frame.byteLength, deltaNorm: built.deltaNorm, clipped: built.clipped };
    this.log.info(info, 'update sent');
    this.events.emit('update-sent', info);
  }

  // ---- secure rounds --------------------------------------------------------------------------

  private openSecureRound(msg: RoundStartMessage, task: RoundTask): void {
    const roundId = msg.roundId;
    this.secure = new SecureRound({
      roundId,
      modelVersion: msg.modelVersion,
      agentId: this.id.agentId,
      identity: { publicKey: this.id.publicKey, secretKey: this.id.secretKey },
      trust: {
        check: (key, stage) => this.coordinatorKeys.check(key, roundId, stage),
        remember: (key) => this.coordinatorKeys.remember(key),
      },
      usedSessions: this.usedSessions,
      // The round policy's cohort minimum also applies to the secagg session's real cohort, which
      // the coordinator cannot inflate the way it could a number in the round config.
      policy: { ...this.o.secagg?.policy, minCohortSize: Math.max(this.o.secagg?.policy?.minCohortSize ?? 0, this.policy.minCohort) },
      ...(msg.config.dp === undefined ? {} : { dp: { noiseMultiplier: msg.config.dp.noiseMultiplier, clipNorm: msg.config.clipNorm } }),
      ...(this.o.secagg?.redTeam === undefined ? {} : { redTeam: this.o.secagg.redTeam }),
      ...(this.budget === undefined ? {} : { beforeReveal: () => this.chargeBudget(msg) }),
      send: (m) => this.sendSigned(m),
      maxFrameBytes: this.session?.maxFrameBytes ?? this.protocol.limits.maxFrameBytes,
      log: this.log,
      onError: (error, fatal) => {
        this.onSecaggError(roundId, error, fatal);
        if (fatal) {
          // This agent left the round: stop training and tell the coordinator why.
          this.abortTask('coordinator', task);
          this.sendError(roundId, error);
        }
      },
    });
  }

  private onSecaggError(roundId: number, error: Error, fatal: boolean): void {
    const code = (error as { code?: string }).code;
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    if (fatal) this.log.error({ roundId, code, cause, err: error.message }, 'left the secure-aggregation round');
    else this.log.warn({ roundId, code, cause, err: error.message }, 'secure-aggregation message refused');
    this.events.emit('secagg-error', { roundId, error, fatal });
  }

  private endSecureRound(reason: string): void {
    const s = this.secure;
    if (s === undefined) return;
    this.secure = undefined;
    s.close(reason);
  }

  /** Secure upload: prepare the delta, encode it with its weight, mask it (SecureRound). */
  private async submitSecure(
    task: RoundTask,
    msg: RoundStartMessage,
    manifest: Manifest,
    global: Float32Array,
    output: Awaited<ReturnType<LocalTrainer['train']>>,
    durationMs: number,
  ): Promise<void> {
    const roundId = msg.roundId;
    const secure = this.secure;
    if (secure === undefined || secure.roundId !== roundId) {
      this.log.info({ roundId }, 'the secure round ended before training finished: update dropped');
      return;
    }
    let prepared;
    try {
      prepared = prepareDelta({
        roundId,
        manifest,
        global,
        output,
        config: msg.config,
        durationMs,
        limits: { maxFrameBytes: this.session?.maxFrameBytes ?? this.protocol.limits.maxFrameBytes, maxMetrics: this.protocol.limits.maxMetrics - 1 },
      });
    } catch (err) {
      this.log.error({ err, roundId }, 'cannot build the update');
      this.events.emit('training-error', { roundId, error: err as Error });
      this.sendError(roundId, err as Error);
      return;
    }
    this.stateValue = 'uploading';
    let result;
    try {
      result = await secure.provideInput({ delta: prepared.delta, exampleCount: output.exampleCount, metrics: prepared.metrics }, task.controller.signal);
    } catch (err) {
      if (task.controller.signal.aborted || this.secure !== secure) {
        this.log.info({ roundId, why: task.kind }, 'secure round ended before the masked input was ready');
        if (task.kind === 'deadline') this.sendError(roundId, new RoundAbortedError(roundId, 'the round deadline passed before the secure-aggregation setup completed'));
        return;
      }
      this.log.error({ err, roundId }, 'cannot encode or mask the update');
      this.events.emit('training-error', { roundId, error: err as Error });
      this.sendError(roundId, err as Error);
      return;
    }
    const info = {
      roundId,
      exampleCount: result.weight,
      bytes: 4 * result.encoding.length,
      deltaNorm: prepared.deltaNorm,
      clipped: prepared.clipped || result.clippedCoordinates > 0,
    };
    this.log.info({ ...info, clippedCoordinates: result.clippedCoordinates, clip: result.encoding.clip, noiseStd: result.noiseStd }, 'secure update encoded (masked input goes out once the shares are in)');
    this.events.emit('update-sent', info);
  }

  private abortTask(kind: AbortKind, only?: RoundTask): void {
    const t = this.task;
    if (t === undefined || (only !== undefined && t !== only) || t.controller.signal.aborted) return;
    t.kind = kind;
    t.controller.abort(new RoundAbortedError(t.roundId, kind));
  }

  // ---- sending --------------------------------------------------------------------------------

  private sendSigned(message: Exclude<AgentOutbound, HelloMessage>): boolean {
    const sock = this.socket;
    const session = this.session;
    if (sock === undefined || session === undefined || !sock.connected) return false;
    // node:crypto Ed25519 (same bytes as nacl.sign.detached, ~15x faster): it signs every message.
    const sig = signDetached(signingPayload(message, session.id), this.id.secretKey);
    const signed: Exclude<AgentOutbound, HelloMessage> = { ...message, sig };
    sock.send(signed);
    return true;
  }

  private sendError(roundId: number, err: Error): void {
    const code = (err as { code?: unknown }).code;
    const msg: ErrorMessage = {
      type: 'error',
      code: typeof code === 'string' && ERROR_CODE.test(code) ? code : 'FEDCLR_AGENT_TRAINING_FAILED',
      message: err.message.slice(0, this.protocol.limits.maxTextLength),
      roundId,
    };
    this.sendSigned(msg);
  }

  private startHeartbeat(intervalMs: number): void {
    this.stopHeartbeat();
    this.heartbeat = setInterval(() => {
      const state =
        this.stateValue === 'training' || this.stateValue === 'uploading' ? this.stateValue : this.secure !== undefined ? 'secagg' : 'idle';
      const hb: HeartbeatMessage = { type: 'heartbeat', sentAt: Date.now(), state };
      if (this.task !== undefined) {
        hb.roundId = this.task.roundId;
        if (this.task.progress !== undefined) hb.progress = this.task.progress;
      }
      this.sendSigned(hb);
    }, intervalMs);
    this.heartbeat.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** OpenSSL / Node codes of a certificate that failed verification. */
const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
]);

/**
 * The TLS failure behind a socket.io connect_error, if it is one: engine.io-client wraps the
 * transport's error (websocket: a ws ErrorEvent whose `error` is Node's) in `description`.
 */
export function tlsFailure(err: unknown): { code: string; message: string } | undefined {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0) {
    const e = queue.shift();
    if (typeof e !== 'object' || e === null || seen.has(e)) continue;
    seen.add(e);
    const r = e as { code?: unknown; message?: unknown; description?: unknown; error?: unknown; cause?: unknown };
    if (typeof r.code === 'string' && TLS_CODES.has(r.code)) {
      return { code: r.code, message: typeof r.message === 'string' ? r.message : r.code };
    }
    queue.push(r.description, r.error, r.cause);
  }
  return undefined;
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return url;
  }
}

/** 127.0.0.0/8, ::1 and localhost: traffic that never leaves the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/** Starts an agent: loads or creates its identity, then connects (and reconnects) in the background. */
export async function startAgent(options: AgentOptions): Promise<AgentHandle> {
  if (typeof options.coordinatorUrl !== 'string' || !/^(https?|wss?):\/\//.test(options.coordinatorUrl)) {
    throw new AgentConfigError('coordinatorUrl', 'an http(s):// or ws(s):// URL', JSON.stringify(options.coordinatorUrl));
  }
  // Before anything is written to the state dir.
  const host = hostOf(options.coordinatorUrl);
  const plainRemote = /^(http|ws):/.test(options.coordinatorUrl) && !isLoopbackHost(host);
  if (plainRemote && options.insecure !== true) throw new InsecureUrlError(options.coordinatorUrl, host);
  if (options.ca !== undefined && (typeof options.ca !== 'string' || !options.ca.includes('-----BEGIN CERTIFICATE-----'))) {
    throw new AgentConfigError('ca', 'PEM text with at least one CERTIFICATE', options.caPath ?? typeof options.ca);
  }
  if (typeof options.stateDir !== 'string' || options.stateDir.length === 0) {
    throw new AgentConfigError('stateDir', 'a directory path', JSON.stringify(options.stateDir));
  }
  if (options.trainer === null || typeof options.trainer !== 'object' || typeof options.trainer.train !== 'function') {
    throw new AgentConfigError('trainer', 'a LocalTrainer (an object with train())', typeof options.trainer);
  }
  if (options.enrolmentToken !== undefined && !/^[A-Za-z0-9._-]{1,256}$/.test(options.enrolmentToken)) {
    throw new AgentConfigError('enrolmentToken', 'a token as fedclr admin token prints it (1-256 characters of A-Z a-z 0-9 . _ -)', JSON.stringify(options.enrolmentToken.slice(0, 40)));
  }
  const pinned = options.coordinatorKey === undefined ? undefined : parseCoordinatorKey(options.coordinatorKey);
  if (pinned === undefined && options.trustOnFirstUse !== true) throw new CoordinatorKeyRequiredError(options.coordinatorUrl);
  const identity = await loadOrCreateIdentity(options.stateDir, options.agentId);
  const base = options.logger ?? pino({ level: process.env['FEDCLR_LOG_LEVEL'] ?? 'info', base: { svc: 'agent' } });
  const logger = base.child({ agentId: identity.agentId });
  if (identity.created) logger.info({ path: identity.path }, 'created a new Ed25519 identity');
  const { policy, path: policyPath, saved } = await resolvePolicy(options.stateDir, options.policy ?? {});
  logger.info({ policy, file: policyPath, saved }, 'round policy');
  const keys = new CoordinatorKeys({
    stateDir: options.stateDir,
    coordinatorUrl: options.coordinatorUrl,
    log: logger,
    ...(pinned === undefined ? { trustOnFirstUse: true } : { pinned }),
  });
  await keys.load();
  if (pinned !== undefined) {
    logger.info({ coordinatorKey: Buffer.from(pinned).toString('hex') }, 'coordinator key pinned');
  } else {
    const known = keys.trusted;
    logger.warn(
      { coordinatorUrl: options.coordinatorUrl, remembered: known === undefined ? null : Buffer.from(known).toString('hex') },
      known === undefined
        ? 'trust on first use: the first coordinator key seen will be trusted; pin it with --coordinator-key instead'
        : 'trust on first use: using the coordinator key remembered from the first connection; pin it with --coordinator-key instead',
    );
  }
  if (options.insecureSkipVerification === true) logger.error('insecureSkipVerification: coordinator messages are NOT verified (tests only)');
  if (plainRemote) logger.warn({ coordinatorUrl: options.coordinatorUrl }, 'insecure: connecting without TLS to a host that is not loopback');
  const budget = options.privacyBudget === undefined ? undefined : AgentPrivacyBudget.open(options.stateDir, options.privacyBudget);
  if (budget !== undefined) logger.info({ ...budget.spent(), file: budget.path }, 'privacy budget: only DP rounds within it are joined');
  const agent = new Agent(options, identity, logger, keys, policy, budget);
  agent.start();
  return {
    agentId: identity.agentId,
    publicKey: Buffer.from(identity.publicKey).toString('hex'),
    policy,
    events: agent.events,
    done: agent.done,
    state: () => agent.state,
    close: () => agent.close(),
  };
}
