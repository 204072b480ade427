// Coordinator (server) state machine of SecAgg+, sans-IO. `start()` emits the setup broadcast;
// `receive(message)` accepts one agent message and, once every expected agent has answered,
// closes the stage; `stageDeadline()` (call it when the stage timer fires) closes it with whoever
// answered (the rest are dropouts). Both resolve to a ServerStep: messages to deliver (each to
// its `recipients`) and the status (running, done with the aggregate, or aborted with a reason).
//
// The coordinator never holds an agent's unmasked vector: masked inputs are added into one
// running sum on arrival and dropped; unmasking subtracts the reconstructed masks from that sum
// only, so the one unmasked vector it can produce is the survivors' total.
import { BOX_NONCE_LENGTH, bytesEqual, defaultRandomBytes, x25519PublicMatches, type RandomBytes, type SigningKeyPair } from './crypto.js';
import { decodeFixedPointSum, type DecodedSum, type FixedPointParams } from './encoding.js';
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
import { buildNeighbourGraph, sortAgents, type NeighbourGraph } from './graph.js';
import { maskNonce, pairwiseMaskKey, pairwiseSign, seedCommitment, selfMaskKey, SHARE_LENGTH } from './masks.js';
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
  type EncryptedShare,
  type RevealedShare,
  type ServerMessage,
  type SessionConfig,
  type Stage,
} from './messages.js';
import { deriveSecAggParams, type SecAggParams } from './params.js';
import { applyMasks, assertPrgAlgorithm, DEFAULT_PRG, type MaskTerm, type PrgAlgorithm } from './prg.js';
import { reconstructSecret } from './shamir.js';

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
  /** 32-byte seed of the neighbour graph; random by default. */
  readonly graphSeed?: Uint8Array;
  readonly random?: RandomBytes;
}

export type ServerStage = 'setup' | 'advertise' | 'share-keys' | 'masked-input' | 'unmask' | 'done' | 'aborted';

export type AbortReason = 'too-few-survivors' | 'insufficient-neighbours' | 'reconstruction-failed';

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

export interface StageDropouts {
  /** Cohort members that never advertised keys. */
  readonly advertise: readonly string[];
  /** Advertised but sent no shares. */
  readonly shareKeys: readonly string[];
  /** Sent shares but no masked input (their masks were removed through their key shares). */
  readonly maskedInput: readonly string[];
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
}

export type ServerStatus =
  | { readonly kind: 'running'; readonly stage: ServerStage; readonly waitingFor: readonly string[] }
  | { readonly kind: 'done'; readonly result: AggregationResult }
  | { readonly kind: 'aborted'; readonly abort: AbortInfo };

export interface ServerStep {
  readonly messages: ServerMessage[];
  readonly status: ServerStatus;
}

const AGENT_STAGE: Partial<Record<ServerStage, Stage>> = {
  advertise: 'advertise',
  'share-keys': 'share-keys',
  'masked-input': 'masked-input',
  unmask: 'unmask-response',
};

interface Revealed {
  readonly seed: Uint8Array[];
  readonly key: Uint8Array[];
}

export class SecAggServer {
  readonly session: string;
  readonly serverId: string;
  readonly params: SecAggParams;
  readonly config: SessionConfig;
  readonly graph: NeighbourGraph;
  private readonly identity: SigningKeyPair;
  private readonly enrolled: ReadonlyMap<string, Uint8Array>;

  private stageValue: ServerStage = 'setup';
  private expected: ReadonlySet<string>;
  private received = new Set<string>();
  private abortInfo: AbortInfo | undefined;
  private resultValue: AggregationResult | undefined;
  // Per-stage records. Nothing here is an unmasked vector.
  private advertisements = new Map<string, AdvertiseMessage>();
  private commitments = new Map<string, Uint8Array>();
  private outgoingShares = new Map<string, EncryptedShare[]>(); // by recipient, `peer` = sender
  private u1: ReadonlySet<string> = new Set();
  private u2: ReadonlySet<string> = new Set();
  private u3: ReadonlySet<string> = new Set();
  private maskedSum: Uint32Array;
  private revealed = new Map<string, Revealed>();
  private queue: Promise<unknown> = Promise.resolve();

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

  /** The setup broadcast (signed session config). Call once. */
  start(): ServerMessage[] {
    if (this.stageValue !== 'setup') throw new UnexpectedStageError('start', `in stage ${this.stageValue}`);
    this.stageValue = 'advertise';
    return [
      signEnvelope(
        {
          session: this.session,
          stage: 'setup',
          sender: this.serverId,
          recipients: this.config.cohort.map((m) => m.id),
          payload: { config: this.config },
        },
        this.identity.secretKey,
      ),
    ];
  }

  /**
   * Accepts one agent message. Throws a typed error (state unchanged) if it is refused: wrong
   * session, stage, recipient or sender, bad signature, duplicate, malformed payload.
   */
  receive(message: unknown): Promise<ServerStep> {
    return this.serialize(async () => {
      this.assertRunning();
      const stage = AGENT_STAGE[this.stageValue];
      if (stage === undefined) throw new UnexpectedStageError(String((message as { stage?: unknown })?.stage), 'not started');
      checkEnvelope(
        message,
        { session: this.session, stages: [stage], state: `in stage ${this.stageValue}`, recipient: this.serverId },
        (sender) => {
          const key = this.enrolled.get(sender);
          if (key === undefined) throw new UnknownSignerError(stage, sender);
          return key;
        },
      );
      const msg = message as AgentMessage;
      if (!this.expected.has(msg.sender)) {
        throw new UnexpectedSenderError(stage, msg.sender, `not among the ${this.expected.size} agents expected in this stage`);
      }
      if (this.received.has(msg.sender)) throw new DuplicateMessageError(stage, msg.sender);
      if (msg.recipients.length !== 1) {
        throw new MalformedMessageError(`${stage} recipients`, 'agent messages go to the coordinator only');
      }
      this.accept(msg);
      this.received.add(msg.sender);
      if (this.received.size === this.expected.size) return this.close();
      return { messages: [], status: this.status };
    });
  }

  /** Stage deadline: closes the current stage with the agents that answered. */
  stageDeadline(): Promise<ServerStep> {
    return this.serialize(async () => {
      this.assertRunning();
      if (AGENT_STAGE[this.stageValue] === undefined) throw new UnexpectedStageError('deadline', 'not started');
      return this.close();
    });
  }

  /** The aggregate, once done. */
  get result(): AggregationResult | undefined {
    return this.resultValue;
  }

  private serialize<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private assertRunning(): void {
    if (this.abortInfo !== undefined) throw new SessionEndedError(`aborted: ${this.abortInfo.message}`);
    if (this.resultValue !== undefined) throw new SessionEndedError('done');
  }

  // ---- accepting messages ---------------------------------------------------------------------

  private accept(msg: AgentMessage): void {
    const payload = expectRecord(`${msg.stage} payload`, msg.payload);
    switch (msg.stage) {
      case 'advertise':
        expectBytes('advertise.encryptionKey', payload.encryptionKey, 32);
        expectBytes('advertise.maskKey', payload.maskKey, 32);
        this.advertisements.set(msg.sender, msg);
        return;
      case 'share-keys': {
        const commitment = expectBytes('share-keys.seedCommitment', payload.seedCommitment, 32);
        const holders = this.graph.neighbours(msg.sender).filter((v) => this.u1.has(v));
        const shares = expectArray('share-keys.shares', payload.shares).map((entry, i) => {
          const share = expectRecord(`share-keys.shares[${i}]`, entry);
          return {
            peer: expectString(`share-keys.shares[${i}].peer`, share.peer),
            nonce: expectBytes(`share-keys.shares[${i}].nonce`, share.nonce, BOX_NONCE_LENGTH),
            ciphertext: expectBytes(`share-keys.shares[${i}].ciphertext`, share.ciphertext),
          };
        });
        const peers = shares.map((s) => s.peer);
        if (peers.length !== holders.length || new Set(peers).size !== peers.length || !peers.every((p) => holders.includes(p))) {
          throw new MalformedMessageError(
            'share-keys.shares',
            `must hold exactly one ciphertext for each neighbour that advertised keys (${holders.length})`,
          );
        }
        this.commitments.set(msg.sender, commitment);
        for (const share of shares) {
          const list = this.outgoingShares.get(share.peer) ?? [];
          list.push({ peer: msg.sender, nonce: share.nonce, ciphertext: share.ciphertext });
          this.outgoingShares.set(share.peer, list);
        }
        return;
      }
      case 'masked-input': {
        const masked = payload.masked;
        if (!(masked instanceof Uint32Array) || masked.length !== this.maskedSum.length) {
          throw new MalformedMessageError('masked-input.masked', `must be a Uint32Array of ${this.maskedSum.length} words`);
        }
        const sum = this.maskedSum;
        for (let i = 0; i < sum.length; i++) sum[i] = ((sum[i] as number) + (masked[i] as number)) >>> 0;
        return;
      }
      case 'unmask-response': {
        const neighbours = this.graph.neighbours(msg.sender).filter((v) => this.u2.has(v));
        const wantSeeds = neighbours.filter((v) => this.u3.has(v));
        const wantKeys = neighbours.filter((v) => !this.u3.has(v));
        const seeds = this.revealedList('seedShares', payload.seedShares, wantSeeds);
        const keys = this.revealedList('keyShares', payload.keyShares, wantKeys);
        for (const { owner, share } of seeds) this.revealedFor(owner).seed.push(share);
        for (const { owner, share } of keys) this.revealedFor(owner).key.push(share);
        return;
      }
      default:
        throw new InternalError('unhandled agent stage');
    }
  }

  private revealedList(field: string, raw: unknown, want: readonly string[]): RevealedShare[] {
    const list = expectArray(`unmask-response.${field}`, raw).map((entry, i) => {
      const r = expectRecord(`unmask-response.${field}[${i}]`, entry);
      return {
        owner: expectString(`unmask-response.${field}[${i}].owner`, r.owner),
        share: expectBytes(`unmask-response.${field}[${i}].share`, r.share, SHARE_LENGTH),
      };
    });
    const owners = list.map((r) => r.owner);
    if (owners.length !== want.length || new Set(owners).size !== owners.length || !owners.every((o) => want.includes(o))) {
      throw new MalformedMessageError(`unmask-response.${field}`, `must cover exactly [${want.join(', ')}]`);
    }
    return list;
  }

  private revealedFor(owner: string): Revealed {
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
      const available = this.graph.neighbours(owner).filter((v) => alive.has(v)).length;
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
    if (alive.size < t) {
      return this.abort('too-few-survivors', `${alive.size} ${what} agents remain, fewer than the threshold ${t}`, alive.size);
    }
    return undefined;
  }

  private nextStage(stage: ServerStage, expected: ReadonlySet<string>): void {
    this.stageValue = stage;
    this.expected = expected;
    this.received = new Set();
  }

  private async close(): Promise<ServerStep> {
    const answered: ReadonlySet<string> = new Set(sortAgents([...this.received]));
    switch (this.stageValue) {
      case 'advertise': {
        const failed = this.checkOverall(answered, 'advertising') ?? this.checkNeighbourhoods(answered, answered, 'advertising');
        if (failed !== undefined) return failed;
        this.u1 = answered;
        const recipients = [...answered];
        const advertisements = recipients.map((id) => this.advertisements.get(id) as AdvertiseMessage);
        this.nextStage('share-keys', answered);
        const keys = signEnvelope(
          { session: this.session, stage: 'keys', sender: this.serverId, recipients, payload: { advertisements } },
          this.identity.secretKey,
        );
        return { messages: [keys], status: this.status };
      }
      case 'share-keys': {
        const failed = this.checkOverall(answered, 'sharing') ?? this.checkNeighbourhoods(answered, answered, 'sharing');
        if (failed !== undefined) return failed;
        this.u2 = answered;
        const participants = [...answered];
        const messages: ServerMessage[] = participants.map((recipient) =>
          signEnvelope(
            {
              session: this.session,
              stage: 'shares',
              sender: this.serverId,
              recipients: [recipient],
              payload: {
                participants,
                // Only shares from agents that completed this stage: the others never mask.
                shares: (this.outgoingShares.get(recipient) ?? []).filter((s) => answered.has(s.peer)),
              },
            },
            this.identity.secretKey,
          ),
        );
        this.outgoingShares.clear();
        this.nextStage('masked-input', answered);
        return { messages, status: this.status };
      }
      case 'masked-input': {
        const dropped = [...this.u2].filter((v) => !answered.has(v));
        // Dropouts need key reconstruction only if a survivor masked with them.
        const droppedWithSurvivors = dropped.filter((v) => this.graph.neighbours(v).some((u) => answered.has(u)));
        const failed =
          this.checkOverall(answered, 'surviving') ??
          this.checkNeighbourhoods([...answered, ...droppedWithSurvivors], answered, 'surviving');
        if (failed !== undefined) return failed;
        this.u3 = answered;
        const survivors = [...answered];
        this.nextStage('unmask', answered);
        const unmask = signEnvelope(
          {
            session: this.session,
            stage: 'unmask',
            sender: this.serverId,
            recipients: survivors,
            payload: { survivors, dropouts: dropped },
          },
          this.identity.secretKey,
        );
        return { messages: [unmask], status: this.status };
      }
      case 'unmask':
        return this.unmask(answered);
      default:
        throw new InternalError(`cannot close stage ${this.stageValue}`);
    }
  }

  private async unmask(responders: ReadonlySet<string>): Promise<ServerStep> {
    const t = this.params.threshold;
    const survivors = [...this.u3];
    const dropped = [...this.u2].filter((v) => !this.u3.has(v));
    const droppedWithSurvivors = dropped.filter((v) => this.graph.neighbours(v).some((u) => this.u3.has(u)));
    // Revealed shares from agents in `responders` only (all of them, as receive is all-or-nothing).
    const pick = (owner: string, kind: 'seed' | 'key'): Uint8Array[] | ServerStep => {
      const all = this.revealed.get(owner)?.[kind] ?? [];
      // Distinct x-coordinates (last byte): a duplicate would make interpolation throw.
      const seen = new Set<number>();
      const distinct = all.filter((s) => {
        const x = s[s.length - 1] as number;
        if (seen.has(x)) return false;
        seen.add(x);
        return true;
      });
      if (distinct.length < t) {
        return this.abort(
          'insufficient-neighbours',
          `only ${distinct.length} neighbours of ${owner} revealed ${kind === 'seed' ? 'seed' : 'mask-key'} shares, fewer than the threshold ${t}`,
          distinct.length,
          owner,
        );
      }
      return distinct.slice(0, t);
    };
    const seeds = new Map<string, Uint8Array>();
    for (const u of survivors) {
      const shares = pick(u, 'seed');
      if (!Array.isArray(shares)) return shares;
      const seed = await reconstructSecret(shares);
      if (!bytesEqual(seedCommitment(this.session, u, seed), this.commitments.get(u) ?? new Uint8Array(0))) {
        return this.abort('reconstruction-failed', `the seed of ${u} does not match its commitment (bad share)`, shares.length, u);
      }
      seeds.set(u, seed);
    }
    const keys = new Map<string, Uint8Array>();
    for (const v of droppedWithSurvivors) {
      const shares = pick(v, 'key');
      if (!Array.isArray(shares)) return shares;
      const secretKey = await reconstructSecret(shares);
      const publicKey = this.advertisements.get(v)?.payload.maskKey;
      if (publicKey === undefined || !x25519PublicMatches(secretKey, publicKey)) {
        return this.abort('reconstruction-failed', `the mask key of ${v} does not match its advertised key (bad share)`, shares.length, v);
      }
      keys.set(v, secretKey);
    }
    const nonce = maskNonce(this.session);
    const prg = this.config.prg;
    const sum = this.maskedSum;
    const terms: MaskTerm[] = [];
    for (const [u, seed] of seeds) terms.push({ key: selfMaskKey(seed, this.session, u), nonce, sign: -1 });
    for (const [v, secretKey] of keys) {
      const vKey = this.advertisements.get(v)?.payload.maskKey as Uint8Array;
      for (const u of this.graph.neighbours(v)) {
        if (!this.u3.has(u)) continue;
        const uKey = this.advertisements.get(u)?.payload.maskKey as Uint8Array;
        const key = pairwiseMaskKey(this.session, v, vKey, secretKey, u, uKey);
        // y_u carries pairwiseSign(u, v) * PRG(s_uv): remove exactly that.
        terms.push({ key, nonce, sign: pairwiseSign(u, v) === 1 ? -1 : 1 });
      }
      secretKey.fill(0);
    }
    for (const seed of seeds.values()) seed.fill(0);
    applyMasks(sum, terms, prg);
    for (const term of terms) term.key.fill(0);
    const dropouts: StageDropouts = {
      advertise: this.config.cohort.map((m) => m.id).filter((id) => !this.u1.has(id)),
      shareKeys: [...this.u1].filter((id) => !this.u2.has(id)),
      maskedInput: dropped,
      unmask: survivors.filter((id) => !responders.has(id)),
    };
    this.resultValue = {
      sum,
      decoded: decodeFixedPointSum(sum, this.config.encoding, survivors.length),
      survivors,
      dropouts,
    };
    this.stageValue = 'done';
    this.revealed.clear();
    return { messages: [], status: this.status };
  }
}
