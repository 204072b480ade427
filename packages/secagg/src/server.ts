// Coordinator (server) state machine of SecAgg+ with a consistency round, sans-IO and
// synchronous. `start()` emits the setup broadcast; `receive(message)` accepts one agent message
// and, once every expected agent has answered, closes the stage; `stageDeadline()` (call it when
// the stage timer fires) closes it with whoever answered (the rest are dropouts). Both return a
// ServerStep: messages to deliver (each to its `recipients`) and the status (running, done with
// the aggregate, or aborted with a reason).
//
//   advertise -> share-keys -> share-check -> masked-input -> consistency -> unmask -> done
//
// The coordinator never holds an agent's unmasked vector: masked inputs are added into one
// running sum on arrival and dropped; unmasking subtracts the reconstructed masks from that sum
// only. A misbehaving agent (a bad ciphertext proven by its recipient's complaint, a false
// complaint, a bad revealed share) is recorded in `misbehaviour` with its proof and loses its
// place; the round goes on without it.
import { BOX_NONCE_LENGTH, assertStrongX25519, boxBefore, boxOpen, bytesEqual, defaultRandomBytes, verifyDetached, x25519PublicMatches, type RandomBytes, type SigningKeyPair } from './crypto.js';
import { checkDpEncoding, type DpNoiseSpec } from './dp.js';
import { checkSumRange, decodeFixedPointSum, type DecodedSum, type FixedPointParams } from './encoding.js';
import {
  ConfigError,
  DuplicateMessageError,
  ErrorCodes,
  InternalError,
  MalformedMessageError,
  NotEnrolledError,
  SessionEndedError,
  UnexpectedSenderError,
  UnexpectedStageError,
  UnknownSignerError,
} from './errors.js';
import type { CanonicalValue } from './canonical.js';
import { buildNeighbourGraph, sortAgents, type NeighbourGraph } from './graph.js';
import {
  consistencyStatement,
  maskNonce,
  maskedWithStatement,
  neighbourKeysStatement,
  pairwiseMaskKey,
  pairwiseSign,
  seedCommitment,
  selfMaskKey,
  shareCommitment,
  shareStatement,
  checkSharePlaintext,
  SHARE_LENGTH,
  SHARE_SALT_LENGTH,
} from './masks.js';
import {
  DEFAULT_SERVER_ID,
  checkEnvelope,
  expectArray,
  expectBytes,
  expectRecord,
  expectString,
  signEnvelope,
  type AdvertiseMessage,
  type AgentMessage,
  type AgentSignature,
  type EncryptedShare,
  type NeighbourKeys,
  type ServerMessage,
  type SessionConfig,
  type Stage,
} from './messages.js';
import { deriveSecAggParams, type SecAggParams } from './params.js';
import { applyMasks, assertPrgAlgorithm, DEFAULT_PRG, type MaskTerm, type PrgAlgorithm } from './prg.js';
import { combineShares } from './shamir.js';

export interface ServerOptions {
  /** Unique id of this session (e.g. `${runId}/round-${r}`); never reuse one. */
  readonly session: string;
  /** The coordinator's Ed25519 identity; agents verify every server message with its public key. */
  readonly identity: SigningKeyPair;
  readonly serverId?: string;
  /** Enrolled agents' Ed25519 public keys. */
  readonly enrolled: ReadonlyMap<string, Uint8Array>;
  /** Agents selected for this round (each must be enrolled). */
  readonly cohort: readonly string[];
  readonly dropoutFraction: number;
  readonly corruptFraction: number;
  /** Neighbour count k (see deriveSecAggParams); derived when omitted. */
  readonly neighbours?: number;
  readonly securityBits?: number;
  readonly correctnessBits?: number;
  /** Fixed-point parameters (deriveFixedPoint) with cohortSize >= cohort size. */
  readonly encoding: FixedPointParams;
  readonly prg?: PrgAlgorithm;
  /**
   * The agents' inputs carry DP noise for this spec: the encoding must carry it (checkDpEncoding)
   * and the round aborts ('too-few-survivors') below n - D survivors, as the agents would refuse it.
   */
  readonly dp?: DpNoiseSpec;
  /** 32-byte seed of the neighbour graph; random by default. */
  readonly graphSeed?: Uint8Array;
  readonly random?: RandomBytes;
}

export type ServerStage = 'setup' | 'advertise' | 'share-keys' | 'share-check' | 'masked-input' | 'consistency' | 'unmask' | 'done' | 'aborted';

export type AbortReason = 'too-few-survivors' | 'insufficient-neighbours' | 'reconstruction-failed' | 'sum-out-of-range';

export interface AbortInfo {
  readonly code: typeof ErrorCodes.ABORTED;
  readonly reason: AbortReason;
  /** Stage that was being closed. */
  readonly stage: ServerStage;
  /** The agent whose neighbourhood or secret failed, when there is one. */
  readonly agent?: string;
  readonly available: number;
  readonly threshold: number;
  readonly message: string;
}

/** What an agent did wrong, with what proves it (all from signed messages). */
export interface Misbehaviour {
  readonly agent: string;
  readonly kind: 'bad-share' | 'false-complaint' | 'bad-revealed-share' | 'inconsistent-sharing';
  readonly stage: ServerStage;
  /** The agent that complained or whose share was checked, when there is one. */
  readonly witness?: string;
  readonly details: string;
}

export interface StageDropouts {
  /** Cohort members that never advertised keys. */
  readonly advertise: readonly string[];
  /** Advertised but sent no shares. */
  readonly shareKeys: readonly string[];
  /** Sent shares but did not confirm them (or were excluded for misbehaving). */
  readonly shareCheck: readonly string[];
  /** Participants that sent no masked input (their masks were removed through their key shares). */
  readonly maskedInput: readonly string[];
  /** Survivors that did not sign the survivor set (their input is in the sum anyway). */
  readonly consistency: readonly string[];
  /** Survivors that did not answer the unmask stage (their input is in the sum anyway). */
  readonly unmask: readonly string[];
}

export interface AggregationResult {
  /** Sum of the survivors' encoded inputs, mod 2^32 (bit-exact). */
  readonly sum: Uint32Array;
  /** Decoded float sum and masked-then-summed weight, with quantisation bounds. */
  readonly decoded: DecodedSum;
  /** Agents whose inputs are in the sum. */
  readonly survivors: readonly string[];
  readonly dropouts: StageDropouts;
  readonly misbehaviour: readonly Misbehaviour[];
}

export type ServerStatus =
  | { readonly kind: 'running'; readonly stage: ServerStage; readonly waitingFor: readonly string[] }
  | { readonly kind: 'done'; readonly result: AggregationResult }
  | { readonly kind: 'aborted'; readonly abort: AbortInfo };

export interface ServerStep {
  readonly messages: ServerMessage[];
  readonly status: ServerStatus;
}

/** The agent message each server stage collects. */
const AGENT_STAGE: Partial<Record<ServerStage, Stage>> = {
  advertise: 'advertise',
  'share-keys': 'share-keys',
  'share-check': 'share-check',
  'masked-input': 'masked-input',
  consistency: 'consistency',
  unmask: 'unmask-response',
};

interface RevealedShares {
  readonly seed: Uint8Array[];
  readonly key: Uint8Array[];
}

interface StoredComplaint {
  readonly accuser: string;
  readonly accused: string;
  readonly inboxSecret: Uint8Array;
}

export class SecAggServer {
  readonly session: string;
  readonly serverId: string;
  readonly params: SecAggParams;
  readonly config: SessionConfig;
  readonly graph: NeighbourGraph;
  private readonly identity: SigningKeyPair;
  private readonly enrolled: ReadonlyMap<string, Uint8Array>;
  /** Fewest agents a stage may close with: the threshold, and with DP the survivor floor n - D. */
  private readonly minAlive: number;

  private stageValue: ServerStage = 'setup';
  private expected: ReadonlySet<string>;
  private received = new Set<string>();
  private abortInfo: AbortInfo | undefined;
  private resultValue: AggregationResult | undefined;
  private readonly misbehaviourList: Misbehaviour[] = [];
  // Per-stage records. Nothing here is an unmasked vector.
  private advertisements = new Map<string, AdvertiseMessage>();
  /** Per advertiser, per neighbour: the signed keys relayed to that neighbour. */
  private neighbourKeys = new Map<string, Map<string, NeighbourKeys>>();
  private commitments = new Map<string, Uint8Array>();
  /** Ciphertexts by sender, then recipient (kept until complaints are judged). */
  private sentShares = new Map<string, Map<string, EncryptedShare>>();
  private complaints: StoredComplaint[] = [];
  private maskedWith = new Map<string, Uint8Array>();
  private consistencySignatures = new Map<string, Uint8Array>();
  private u1: ReadonlySet<string> = new Set();
  private u2: ReadonlySet<string> = new Set();
  /** U2 after the share check: the agents that mask. */
  private participants: ReadonlySet<string> = new Set();
  private u3: ReadonlySet<string> = new Set();
  /** consistencyStatement of the announced (U3, dropouts): what every consistency message signs. */
  private viewStatement: Uint8Array | undefined;
  private revealers: ReadonlySet<string> = new Set();
  private maskedSum: Uint32Array;
  private revealed = new Map<string, RevealedShares>();

  constructor(options: ServerOptions) {
    this.session = options.session;
    if (typeof options.session !== 'string' || options.session.length === 0) {
      throw new ConfigError('session', 'must be a non-empty string, unique per round');
    }
    this.serverId = options.serverId ?? DEFAULT_SERVER_ID;
    this.identity = options.identity;
    this.enrolled = options.enrolled;
    const cohort = sortAgents(options.cohort);
    if (cohort.includes(this.serverId)) throw new ConfigError('cohort', `an agent cannot use the server id ${this.serverId}`);
    for (const id of cohort) if (!this.enrolled.has(id)) throw new NotEnrolledError(id);
    this.params = deriveSecAggParams({
      cohortSize: cohort.length,
      dropoutFraction: options.dropoutFraction,
      corruptFraction: options.corruptFraction,
      ...(options.neighbours !== undefined ? { neighbours: options.neighbours } : {}),
      ...(options.securityBits !== undefined ? { securityBits: options.securityBits } : {}),
      ...(options.correctnessBits !== undefined ? { correctnessBits: options.correctnessBits } : {}),
    });
    if (options.encoding.cohortSize < cohort.length) {
      throw new ConfigError(
        'encoding.cohortSize',
        `${options.encoding.cohortSize} is below the cohort size ${cohort.length}: the sum could wrap; derive the encoding for this cohort`,
      );
    }
    if (options.dp !== undefined) checkDpEncoding(options.dp, options.encoding, this.params);
    this.minAlive = Math.max(this.params.threshold, options.dp === undefined ? 0 : this.params.cohortSize - this.params.maxDropouts);
    const graphSeed = options.graphSeed ?? (options.random ?? defaultRandomBytes)(32);
    if (graphSeed.length !== 32) throw new ConfigError('graphSeed', `must be 32 bytes, got ${graphSeed.length}`);
    this.config = {
      session: options.session,
      server: this.serverId,
      cohort: cohort.map((id) => ({ id, signingKey: this.enrolled.get(id) as Uint8Array })),
      graphSeed,
      dropoutFraction: this.params.dropoutFraction,
      corruptFraction: this.params.corruptFraction,
      securityBits: this.params.securityBits,
      correctnessBits: this.params.correctnessBits,
      neighbours: this.params.neighbours,
      threshold: this.params.threshold,
      prg: assertPrgAlgorithm(options.prg ?? DEFAULT_PRG),
      encoding: options.encoding,
    };
    this.graph = buildNeighbourGraph(cohort, this.params.neighbours, graphSeed, options.session);
    this.expected = new Set(cohort);
    this.maskedSum = new Uint32Array(options.encoding.length);
  }

  get stage(): ServerStage {
    return this.stageValue;
  }

  get status(): ServerStatus {
    if (this.abortInfo !== undefined) return { kind: 'aborted', abort: this.abortInfo };
    if (this.resultValue !== undefined) return { kind: 'done', result: this.resultValue };
    return {
      kind: 'running',
      stage: this.stageValue,
      waitingFor: [...this.expected].filter((id) => !this.received.has(id)),
    };
  }

  /** Agents proven to have misbehaved so far, with the proof's summary. */
  get misbehaviour(): readonly Misbehaviour[] {
    return this.misbehaviourList;
  }

  /** The aggregate, once done. */
  get result(): AggregationResult | undefined {
    return this.resultValue;
  }

  /** The setup broadcast (signed session config). Call once. */
  start(): ServerMessage[] {
    if (this.stageValue !== 'setup') throw new UnexpectedStageError('start', `in stage ${this.stageValue}`);
    this.stageValue = 'advertise';
    return [this.sign('setup', this.config.cohort.map((m) => m.id), { config: this.config })];
  }

  /**
   * Accepts one agent message. Throws a typed error (state unchanged) if it is refused: wrong
   * session, stage, recipient or sender, bad signature, duplicate, malformed payload.
   */
  receive(message: unknown): ServerStep {
    this.assertRunning();
    const stage = AGENT_STAGE[this.stageValue];
    if (stage === undefined) throw new UnexpectedStageError(String((message as { stage?: unknown } | null)?.stage), 'not started');
    checkEnvelope(message, { session: this.session, stages: [stage], state: `in stage ${this.stageValue}`, recipient: this.serverId }, (sender) => {
      const key = this.enrolled.get(sender);
      if (key === undefined) throw new UnknownSignerError(stage, sender);
      return key;
    });
    const msg = message as AgentMessage;
    if (!this.expected.has(msg.sender)) {
      throw new UnexpectedSenderError(stage, msg.sender, `not among the ${this.expected.size} agents expected in this stage`);
    }
    if (this.received.has(msg.sender)) throw new DuplicateMessageError(stage, msg.sender);
    if (msg.recipients.length !== 1) throw new MalformedMessageError(`${stage} recipients`, 'agent messages go to the coordinator only');
    this.accept(msg);
    this.received.add(msg.sender);
    if (this.received.size === this.expected.size) return this.close();
    return { messages: [], status: this.status };
  }

  /** Stage deadline: closes the current stage with the agents that answered. */
  stageDeadline(): ServerStep {
    this.assertRunning();
    if (AGENT_STAGE[this.stageValue] === undefined) throw new UnexpectedStageError('deadline', 'not started');
    return this.close();
  }

  private assertRunning(): void {
    if (this.abortInfo !== undefined) throw new SessionEndedError(`aborted: ${this.abortInfo.message}`);
    if (this.resultValue !== undefined) throw new SessionEndedError('done');
  }

  private sign(stage: ServerMessage['stage'], recipients: readonly string[], payload: CanonicalValue): ServerMessage {
    return signEnvelope({ session: this.session, stage, sender: this.serverId, recipients, payload }, this.identity.secretKey) as ServerMessage;
  }

  private neighboursIn(agent: string, set: ReadonlySet<string>): string[] {
    return this.graph.neighbours(agent).filter((v) => set.has(v));
  }

  private report(entry: Misbehaviour): void {
    this.misbehaviourList.push(entry);
  }

  // ---- accepting messages ---------------------------------------------------------------------

  private accept(msg: AgentMessage): void {
    const payload = expectRecord(`${msg.stage} payload`, msg.payload);
    switch (msg.stage) {
      case 'advertise':
        return this.acceptAdvert(msg.sender, payload, msg as AdvertiseMessage);
      case 'share-keys':
        return this.acceptShareKeys(msg.sender, payload);
      case 'share-check':
        return this.acceptShareCheck(msg.sender, payload);
      case 'masked-input':
        return this.acceptMaskedInput(msg.sender, payload);
      case 'consistency': {
        const signature = expectBytes('consistency.signature', payload.signature, 64);
        const statement = this.viewStatement as Uint8Array;
        // A bad signature would make honest neighbours count one less: refuse it here.
        if (!verifyDetached(statement, signature, this.enrolled.get(msg.sender) as Uint8Array)) {
          throw new MalformedMessageError('consistency.signature', `does not sign the announced survivor set`);
        }
        this.consistencySignatures.set(msg.sender, signature);
        return;
      }
      case 'unmask-response':
        return this.acceptRevealed(msg.sender, payload);
      default:
        throw new InternalError('unhandled agent stage');
    }
  }

  private acceptAdvert(sender: string, payload: Record<string, unknown>, msg: AdvertiseMessage): void {
    // A small-order key would make every neighbour refuse the relayed keys: refuse it here.
    this.checkAdvertKey(expectBytes('advertise.encryptionKey', payload.encryptionKey, 32), sender);
    this.checkAdvertKey(expectBytes('advertise.maskKey', payload.maskKey, 32), sender);
    const encryptionKey = payload.encryptionKey as Uint8Array;
    const maskKey = payload.maskKey as Uint8Array;
    const inbox = expectArray('advertise.inboxKeys', payload.inboxKeys).map((e, i) => {
      const r = expectRecord(`advertise.inboxKeys[${i}]`, e);
      const inboxKey = expectBytes(`advertise.inboxKeys[${i}].key`, r.key, 32);
      this.checkAdvertKey(inboxKey, sender);
      const peer = expectString(`advertise.inboxKeys[${i}].peer`, r.peer);
      const signature = expectBytes(`advertise.inboxKeys[${i}].signature`, r.signature, 64);
      return { agent: sender, peer, encryptionKey, maskKey, inboxKey, signature };
    });
    const want = this.graph.neighbours(sender);
    if (inbox.length !== want.length || !want.every((v, i) => inbox[i]?.peer === v)) {
      throw new MalformedMessageError('advertise.inboxKeys', `must hold one key for each neighbour, in order: [${want.join(', ')}]`);
    }
    const signingKey = this.enrolled.get(sender) as Uint8Array;
    for (const [i, e] of inbox.entries()) {
      // A neighbour refuses keys its owner did not sign: refuse them here, where it costs only the sender.
      if (!verifyDetached(neighbourKeysStatement(this.session, sender, e.peer, e), e.signature, signingKey)) {
        throw new MalformedMessageError(`advertise.inboxKeys[${i}].signature`, `does not sign the keys for ${e.peer}`);
      }
    }
    this.advertisements.set(sender, msg);
    this.neighbourKeys.set(
      sender,
      new Map(inbox.map(({ peer, ...keys }): [string, NeighbourKeys] => [peer, keys])),
    );
  }

  /** Refuses a weak advertised X25519 key (WEAK_KEY). Tests override it (a weakened coordinator). */
  protected checkAdvertKey(key: Uint8Array, sender: string): void {
    assertStrongX25519(key, sender);
  }

  private acceptShareKeys(sender: string, payload: Record<string, unknown>): void {
    const commitment = expectBytes('share-keys.seedCommitment', payload.seedCommitment, 32);
    const holders = this.neighboursIn(sender, this.u1);
    const shares = expectArray('share-keys.shares', payload.shares).map((entry, i) => {
      const share = expectRecord(`share-keys.shares[${i}]`, entry);
      return {
        peer: expectString(`share-keys.shares[${i}].peer`, share.peer),
        nonce: expectBytes(`share-keys.shares[${i}].nonce`, share.nonce, BOX_NONCE_LENGTH),
        ciphertext: expectBytes(`share-keys.shares[${i}].ciphertext`, share.ciphertext),
        seedShareCommitment: expectBytes(`share-keys.shares[${i}].seedShareCommitment`, share.seedShareCommitment, 32),
        keyShareCommitment: expectBytes(`share-keys.shares[${i}].keyShareCommitment`, share.keyShareCommitment, 32),
        signature: expectBytes(`share-keys.shares[${i}].signature`, share.signature, 64),
      };
    });
    const signingKey = this.enrolled.get(sender) as Uint8Array;
    for (const [i, s] of shares.entries()) {
      // Recipients leave on an unsigned share: refuse it here, where it costs only the sender.
      if (!verifyDetached(shareStatement(this.session, sender, s.peer, s), s.signature, signingKey)) {
        throw new MalformedMessageError(`share-keys.shares[${i}].signature`, `does not sign the share for ${s.peer}`);
      }
    }
    const peers = shares.map((s) => s.peer);
    if (peers.length !== holders.length || new Set(peers).size !== peers.length || !peers.every((p) => holders.includes(p))) {
      throw new MalformedMessageError('share-keys.shares', `must hold exactly one ciphertext for each neighbour that advertised keys (${holders.length})`);
    }
    this.commitments.set(sender, commitment);
    this.sentShares.set(sender, new Map(shares.map((s) => [s.peer, s] as const)));
  }

  private acceptShareCheck(sender: string, payload: Record<string, unknown>): void {
    const list = expectArray('share-check.complaints', payload.complaints).map((entry, i) => {
      const c = expectRecord(`share-check.complaints[${i}]`, entry);
      const accused = expectString(`share-check.complaints[${i}].peer`, c.peer);
      expectString(`share-check.complaints[${i}].reason`, c.reason);
      if (!this.sentShares.get(accused)?.has(sender) || !this.u2.has(accused)) {
        throw new MalformedMessageError(`share-check.complaints[${i}].peer`, `${accused} sent no share to ${sender}`);
      }
      return { accuser: sender, accused, inboxSecret: expectBytes(`share-check.complaints[${i}].inboxSecret`, c.inboxSecret, 32) };
    });
    if (new Set(list.map((c) => c.accused)).size !== list.length) throw new MalformedMessageError('share-check.complaints', 'two complaints about one agent');
    this.complaints.push(...list);
  }

  private acceptMaskedInput(sender: string, payload: Record<string, unknown>): void {
    const masked = payload.masked;
    if (!(masked instanceof Uint32Array) || masked.length !== this.maskedSum.length) {
      throw new MalformedMessageError('masked-input.masked', `must be a Uint32Array of ${this.maskedSum.length} words`);
    }
    const signature = expectBytes('masked-input.maskedWith', payload.maskedWith, 64);
    // Neighbours check this statement before revealing; a bad one would stop them all.
    if (!verifyDetached(maskedWithStatement(this.session, sender, [...this.participants]), signature, this.enrolled.get(sender) as Uint8Array)) {
      throw new MalformedMessageError('masked-input.maskedWith', 'does not sign the announced participants');
    }
    this.maskedWith.set(sender, signature);
    const sum = this.maskedSum;
    for (let i = 0; i < sum.length; i++) sum[i] = ((sum[i] as number) + (masked[i] as number)) >>> 0;
  }

  private acceptRevealed(sender: string, payload: Record<string, unknown>): void {
    const held = (owner: string): boolean => this.sentShares.get(owner)?.has(sender) === true && !this.complained(sender, owner);
    const neighbours = this.neighboursIn(sender, this.participants).filter(held);
    const parsed = {
      seed: this.revealedList('seedShares', payload.seedShares, neighbours.filter((v) => this.u3.has(v))),
      key: this.revealedList('keyShares', payload.keyShares, neighbours.filter((v) => !this.u3.has(v))),
    };
    for (const kind of ['seed', 'key'] as const) {
      for (const { owner, share, salt } of parsed[kind]) {
        const sent = this.sentShares.get(owner)?.get(sender) as EncryptedShare;
        const commitment = kind === 'seed' ? sent.seedShareCommitment : sent.keyShareCommitment;
        if (!bytesEqual(shareCommitment(this.session, owner, sender, kind, share, salt), commitment)) {
          this.report({ agent: sender, kind: 'bad-revealed-share', stage: 'unmask', witness: owner, details: `its ${kind} share of ${owner} does not match ${owner}'s commitment` });
          continue;
        }
        this.revealedFor(owner)[kind].push(share);
      }
    }
  }

  private complained(accuser: string, accused: string): boolean {
    return this.complaints.some((c) => c.accuser === accuser && c.accused === accused);
  }

  private revealedList(field: string, raw: unknown, want: readonly string[]): { owner: string; share: Uint8Array; salt: Uint8Array }[] {
    const list = expectArray(`unmask-response.${field}`, raw).map((entry, i) => {
      const r = expectRecord(`unmask-response.${field}[${i}]`, entry);
      return {
        owner: expectString(`unmask-response.${field}[${i}].owner`, r.owner),
        share: expectBytes(`unmask-response.${field}[${i}].share`, r.share, SHARE_LENGTH),
        salt: expectBytes(`unmask-response.${field}[${i}].salt`, r.salt, SHARE_SALT_LENGTH),
      };
    });
    const owners = list.map((r) => r.owner);
    if (owners.length !== want.length || new Set(owners).size !== owners.length || !owners.every((o) => want.includes(o))) {
      throw new MalformedMessageError(`unmask-response.${field}`, `must cover exactly [${want.join(', ')}]`);
    }
    return list;
  }

  private revealedFor(owner: string): RevealedShares {
    let r = this.revealed.get(owner);
    if (r === undefined) {
      r = { seed: [], key: [] };
      this.revealed.set(owner, r);
    }
    return r;
  }

  // ---- closing stages -------------------------------------------------------------------------

  private abort(reason: AbortReason, message: string, available: number, agent?: string): ServerStep {
    this.abortInfo = {
      code: ErrorCodes.ABORTED,
      reason,
      stage: this.stageValue,
      ...(agent !== undefined ? { agent } : {}),
      available,
      threshold: this.params.threshold,
      message,
    };
    this.stageValue = 'aborted';
    this.maskedSum.fill(0);
    return { messages: [], status: this.status };
  }

  /** Aborts unless `owners` all keep >= t neighbours in `alive`. */
  private checkNeighbourhoods(owners: Iterable<string>, alive: ReadonlySet<string>, what: string): ServerStep | undefined {
    const t = this.params.threshold;
    for (const owner of owners) {
      const available = this.neighboursIn(owner, alive).length;
      if (available < t) {
        return this.abort(
          'insufficient-neighbours',
          `${owner} has ${available} ${what} neighbours, fewer than the threshold ${t}: its secrets could not be recovered`,
          available,
          owner,
        );
      }
    }
    return undefined;
  }

  private checkOverall(alive: ReadonlySet<string>, what: string): ServerStep | undefined {
    const t = this.params.threshold;
    if (alive.size >= this.minAlive) return undefined;
    const floor = alive.size >= t ? `the DP survivor floor ${this.minAlive} (cohort - tolerated dropouts; agents refuse to unmask below it)` : `the threshold ${t}`;
    return this.abort('too-few-survivors', `${alive.size} ${what} agents remain, fewer than ${floor}`, alive.size);
  }

  private nextStage(stage: ServerStage, expected: ReadonlySet<string>): void {
    this.stageValue = stage;
    this.expected = expected;
    this.received = new Set();
  }

  /** Participants that sent no masked input. */
  private dropped(): string[] {
    return [...this.participants].filter((v) => !this.u3.has(v));
  }

  private close(): ServerStep {
    const answered: ReadonlySet<string> = new Set(sortAgents([...this.received]));
    switch (this.stageValue) {
      case 'advertise':
        return this.closeAdvertise(answered);
      case 'share-keys':
        return this.closeShareKeys(answered);
      case 'share-check':
        return this.closeShareCheck(answered);
      case 'masked-input':
        return this.closeMaskedInput(answered);
      case 'consistency':
        return this.closeConsistency(answered);
      case 'unmask':
        return this.unmask(answered);
      default:
        throw new InternalError(`cannot close stage ${this.stageValue}`);
    }
  }

  private closeAdvertise(answered: ReadonlySet<string>): ServerStep {
    const failed = this.checkOverall(answered, 'advertising') ?? this.checkNeighbourhoods(answered, answered, 'advertising');
    if (failed !== undefined) return failed;
    this.u1 = answered;
    this.nextStage('share-keys', answered);
    // Each agent gets its own advertisement and, of each neighbour's, the signed entry for it:
    // O(k) per agent, O(n k) in all.
    const messages = [...answered].map((w) =>
      this.sign('keys', [w], {
        own: this.advertisements.get(w) as AdvertiseMessage,
        neighbours: this.neighboursIn(w, answered).map((v) => this.neighbourKeys.get(v)?.get(w) as NeighbourKeys),
      }),
    );
    return { messages, status: this.status };
  }

  private closeShareKeys(answered: ReadonlySet<string>): ServerStep {
    const failed = this.checkOverall(answered, 'sharing') ?? this.checkNeighbourhoods(answered, answered, 'sharing');
    if (failed !== undefined) return failed;
    this.u2 = answered;
    const participants = [...answered];
    const messages = participants.map((w) =>
      this.sign('shares', [w], {
        participants,
        // Only shares from agents that completed this stage: the others never mask.
        shares: this.neighboursIn(w, answered).map((v) => {
          const s = this.sentShares.get(v)?.get(w) as EncryptedShare;
          return { ...s, peer: v };
        }),
      }),
    );
    this.nextStage('share-check', answered);
    return { messages, status: this.status };
  }

  private closeShareCheck(answered: ReadonlySet<string>): ServerStep {
    const excluded = new Set<string>();
    for (const complaint of this.complaints) {
      if (!answered.has(complaint.accuser)) continue;
      const guilty = this.judge(complaint);
      excluded.add(guilty);
    }
    // An agent left with fewer than t masking neighbours would refuse to mask: drop it too.
    let participants = new Set([...answered].filter((v) => !excluded.has(v)));
    let firstStarved: { agent: string; available: number } | undefined;
    for (;;) {
      const starved = [...participants].filter((v) => this.neighboursIn(v, participants).length < this.params.threshold);
      if (starved.length === 0) break;
      const agent = starved[0] as string;
      firstStarved ??= { agent, available: this.neighboursIn(agent, participants).length };
      participants = new Set([...participants].filter((v) => !starved.includes(v)));
    }
    if (participants.size < this.params.threshold && firstStarved !== undefined) {
      const { agent, available } = firstStarved;
      return this.abort(
        'insufficient-neighbours',
        `${agent} has ${available} participating neighbours, fewer than the threshold ${this.params.threshold}: it could not mask safely`,
        available,
        agent,
      );
    }
    const failed = this.checkOverall(participants, 'participating');
    if (failed !== undefined) return failed;
    this.participants = participants;
    const list = [...participants];
    const messages = list.map((w) => this.sign('participants', [w], { participants: list }));
    this.nextStage('masked-input', participants);
    return { messages, status: this.status };
  }

  /** Judges a complaint from the signed messages; returns who misbehaved. */
  private judge(c: StoredComplaint): string {
    const accuserAd = this.advertisements.get(c.accuser) as AdvertiseMessage;
    const inboxKey = accuserAd.payload.inboxKeys.find((e) => e.peer === c.accused)?.key;
    if (inboxKey === undefined || !x25519PublicMatches(c.inboxSecret, inboxKey)) {
      this.report({ agent: c.accuser, kind: 'false-complaint', stage: 'share-check', witness: c.accused, details: `revealed an inbox secret that is not its advertised inbox key for ${c.accused}` });
      return c.accuser;
    }
    const sent = this.sentShares.get(c.accused)?.get(c.accuser) as EncryptedShare;
    const senderAd = this.advertisements.get(c.accused) as AdvertiseMessage;
    const key = boxBefore(senderAd.payload.encryptionKey, c.inboxSecret, c.accused);
    const opened = boxOpen(sent.ciphertext, sent.nonce, key);
    key.fill(0);
    const verdict =
      opened === null
        ? 'the ciphertext does not decrypt'
        : checkSharePlaintext(opened, this.session, c.accused, c.accuser, sent.seedShareCommitment, sent.keyShareCommitment);
    if (typeof verdict === 'string') {
      this.report({ agent: c.accused, kind: 'bad-share', stage: 'share-check', witness: c.accuser, details: `its signed share for ${c.accuser}: ${verdict}` });
      return c.accused;
    }
    for (const bytes of [verdict.seedShare, verdict.keyShare]) bytes.fill(0);
    this.report({ agent: c.accuser, kind: 'false-complaint', stage: 'share-check', witness: c.accused, details: `complained about a share from ${c.accused} that decrypts and matches its commitments` });
    return c.accuser;
  }

  private closeMaskedInput(answered: ReadonlySet<string>): ServerStep {
    this.u3 = answered;
    const dropped = this.dropped();
    // Dropouts need key reconstruction only if a survivor masked with them.
    const droppedWithSurvivors = dropped.filter((v) => this.neighboursIn(v, answered).length > 0);
    const failed =
      this.checkOverall(answered, 'surviving') ?? this.checkNeighbourhoods([...answered, ...droppedWithSurvivors], answered, 'surviving');
    if (failed !== undefined) return failed;
    const survivors = [...answered];
    this.viewStatement = consistencyStatement(this.session, survivors, dropped);
    const messages = survivors.map((w) =>
      this.sign('check', [w], {
        survivors,
        dropouts: dropped,
        maskedWith: this.neighboursIn(w, answered).map((u): AgentSignature => ({ agent: u, signature: this.maskedWith.get(u) as Uint8Array })),
      }),
    );
    this.nextStage('consistency', answered);
    return { messages, status: this.status };
  }

  private closeConsistency(answered: ReadonlySet<string>): ServerStep {
    const t = this.params.threshold;
    // An agent reveals only with t neighbour signatures over the view.
    const revealers = new Set([...answered].filter((w) => this.neighboursIn(w, answered).length >= t));
    const dropped = this.dropped();
    const droppedWithSurvivors = dropped.filter((v) => this.neighboursIn(v, this.u3).length > 0);
    const failed = this.checkNeighbourhoods([...this.u3, ...droppedWithSurvivors], revealers, 'consistent');
    if (failed !== undefined) return failed;
    this.revealers = revealers;
    const survivors = [...this.u3];
    const messages = [...revealers].map((w) =>
      this.sign('unmask', [w], {
        survivors,
        dropouts: dropped,
        signatures: this.neighboursIn(w, answered).map((v): AgentSignature => ({ agent: v, signature: this.consistencySignatures.get(v) as Uint8Array })),
      }),
    );
    this.nextStage('unmask', revealers);
    return { messages, status: this.status };
  }

  /**
   * Reconstructs one secret from verified shares (each matched its owner's commitment). A wrong
   * result means the owner dealt inconsistent shares: try another window before giving up.
   */
  private reconstruct(owner: string, kind: 'seed' | 'key', check: (secret: Uint8Array) => boolean): Uint8Array | ServerStep {
    const t = this.params.threshold;
    const seen = new Set<number>();
    const shares = (this.revealed.get(owner)?.[kind] ?? []).filter((s) => {
      const x = s[s.length - 1] as number;
      if (x === 0 || seen.has(x)) return false;
      seen.add(x);
      return true;
    });
    if (shares.length < t) {
      return this.abort(
        'insufficient-neighbours',
        `only ${shares.length} neighbours of ${owner} revealed valid ${kind === 'seed' ? 'seed' : 'mask-key'} shares, fewer than the threshold ${t}`,
        shares.length,
        owner,
      );
    }
    for (const start of new Set([0, shares.length - t])) {
      const secret = combineShares(shares.slice(start, start + t));
      if (check(secret)) return secret;
      secret.fill(0);
    }
    this.report({ agent: owner, kind: 'inconsistent-sharing', stage: 'unmask', details: `${shares.length} shares that match its commitments do not reconstruct its ${kind}` });
    return this.abort('reconstruction-failed', `the ${kind} of ${owner} does not match its commitment (it dealt inconsistent shares)`, shares.length, owner);
  }

  private unmask(responders: ReadonlySet<string>): ServerStep {
    const survivors = [...this.u3];
    const dropped = this.dropped();
    const droppedWithSurvivors = dropped.filter((v) => this.neighboursIn(v, this.u3).length > 0);
    const seeds = new Map<string, Uint8Array>();
    for (const u of survivors) {
      const commitment = this.commitments.get(u) as Uint8Array;
      const seed = this.reconstruct(u, 'seed', (s) => bytesEqual(seedCommitment(this.session, u, s), commitment));
      if (!(seed instanceof Uint8Array)) return seed;
      seeds.set(u, seed);
    }
    const keys = new Map<string, Uint8Array>();
    for (const v of droppedWithSurvivors) {
      const publicKey = (this.advertisements.get(v) as AdvertiseMessage).payload.maskKey;
      const secretKey = this.reconstruct(v, 'key', (s) => x25519PublicMatches(s, publicKey));
      if (!(secretKey instanceof Uint8Array)) return secretKey;
      keys.set(v, secretKey);
    }
    const nonce = maskNonce(this.session);
    const sum = this.maskedSum;
    const terms: MaskTerm[] = [];
    for (const [u, seed] of seeds) terms.push({ key: selfMaskKey(seed, this.session, u), nonce, sign: -1 });
    for (const [v, secretKey] of keys) {
      const vKey = (this.advertisements.get(v) as AdvertiseMessage).payload.maskKey;
      for (const u of this.neighboursIn(v, this.u3)) {
        const uKey = (this.advertisements.get(u) as AdvertiseMessage).payload.maskKey;
        const key = pairwiseMaskKey(this.session, v, vKey, secretKey, u, uKey);
        // y_u carries pairwiseSign(u, v) * PRG(s_uv): remove exactly that.
        terms.push({ key, nonce, sign: pairwiseSign(u, v) === 1 ? -1 : 1 });
      }
      secretKey.fill(0);
    }
    for (const seed of seeds.values()) seed.fill(0);
    applyMasks(sum, terms, this.config.prg);
    for (const term of terms) term.key.fill(0);
    this.revealed.clear();
    // Sanity before the sum touches any model: a corrupt agent can mask any 32-bit words.
    const outOfRange = checkSumRange(sum, this.config.encoding, survivors.length);
    if (outOfRange !== undefined) return this.abort('sum-out-of-range', outOfRange, survivors.length);
    const dropouts: StageDropouts = {
      advertise: this.config.cohort.map((m) => m.id).filter((id) => !this.u1.has(id)),
      shareKeys: [...this.u1].filter((id) => !this.u2.has(id)),
      shareCheck: [...this.u2].filter((id) => !this.participants.has(id)),
      maskedInput: dropped,
      consistency: survivors.filter((id) => !this.revealers.has(id)),
      unmask: [...this.revealers].filter((id) => !responders.has(id)),
    };
    this.resultValue = {
      sum,
      decoded: decodeFixedPointSum(sum, this.config.encoding, survivors.length),
      survivors,
      dropouts,
      misbehaviour: [...this.misbehaviourList],
    };
    this.stageValue = 'done';
    return { messages: [], status: this.status };
  }
}
