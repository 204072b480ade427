// Agent (client) state machine of SecAgg+ with a consistency round, sans-IO and synchronous:
// `receive(message)` and `setInput(vector)` return the messages to send. One object per agent
// per session (round). The transitions are the table AGENT_EXPECTS below.
//
//   awaiting-setup --setup--> awaiting-keys --keys--> awaiting-shares --shares--> (share-check)
//   awaiting-participants --participants--> [awaiting-input --input-->] (masked-input)
//   awaiting-check --check--> (consistency) awaiting-unmask --unmask--> (unmask-response) done
//
// Refusals throw a typed error and leave the state unchanged when the message could come from
// anyone on the network (bad signature, other session, wrong recipient, malformed). When a
// message signed by the coordinator proves it inconsistent, or breaks a rule that protects this
// agent's input or its neighbours' (see `Rule`), the agent moves to `failed` for good and the
// error names the rule. A neighbour's bad ciphertext is not fatal: it becomes a complaint.
import { canonicalDigest, encodeCanonical, type CanonicalValue } from './canonical.js';
import {
  BOX_NONCE_LENGTH,
  assertStrongX25519,
  boxBefore,
  boxOpen,
  boxSeal,
  bytesEqual,
  defaultRandomBytes,
  generateBoxKeyPair,
  signDetached,
  verifyDetached,
  type BoxKeyPair,
  type RandomBytes,
  type SigningKeyPair,
} from './crypto.js';
import { checkDpEncoding, type DpNoiseSpec } from './dp.js';
import { deriveFixedPoint, type FixedPointParams } from './encoding.js';
import {
  BadSignatureError,
  ConsistencyError,
  InconsistentAnnouncementError,
  InternalError,
  MalformedMessageError,
  ParamsMismatchError,
  RelayInconsistentError,
  SessionEndedError,
  UnexpectedStageError,
  UnknownSignerError,
  UnmaskConflictError,
} from './errors.js';
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
  type OpenedShares,
  SEED_LENGTH,
  SHARE_SALT_LENGTH,
} from './masks.js';
import {
  DEFAULT_SERVER_ID,
  PROTOCOL_ID,
  checkEnvelope,
  expectArray,
  expectBytes,
  expectIdList,
  expectRecord,
  expectString,
  signEnvelope,
  type AdvertiseMessage,
  type AgentMessage,
  type AgentSignature,
  type CohortMember,
  type Complaint,
  type EncryptedShare,
  type RevealedShare,
  type SessionConfig,
  type SharePlaintext,
  type Stage,
} from './messages.js';
import { DEFAULT_SECURITY_BITS, deriveSecAggParams, type SecAggParams } from './params.js';
import { applyMasks, assertPrgAlgorithm, type MaskTerm } from './prg.js';
import { splitSecret } from './shamir.js';

export type AgentState =
  | 'awaiting-setup'
  | 'awaiting-keys'
  | 'awaiting-shares'
  | 'awaiting-participants'
  | 'awaiting-input'
  | 'awaiting-check'
  | 'awaiting-unmask'
  | 'done'
  | 'failed';

/** Which coordinator stages each state accepts (a repeated check or unmask is answered again). */
const AGENT_EXPECTS: Record<AgentState, readonly Stage[]> = {
  'awaiting-setup': ['setup'],
  'awaiting-keys': ['keys'],
  'awaiting-shares': ['shares'],
  'awaiting-participants': ['participants'],
  'awaiting-input': [],
  'awaiting-check': ['check'],
  'awaiting-unmask': ['check', 'unmask'],
  done: ['unmask'],
  failed: [],
};

/**
 * The rules an agent enforces before it masks or reveals anything. Each one closes an attack a
 * coordinator could otherwise play (README, "Threat model"):
 * - cohort-size: the cohort is at least the agent's policy minimum;
 * - masking-neighbours: at least t neighbours (never counting non-neighbours) mask with it;
 * - participants-subset: the final participant list is a subset of the one the shares came with;
 * - partition: survivors and dropouts partition the participants, and it is a survivor;
 * - survivor-neighbours: at least t of its neighbours survive;
 * - owner-neighbours: every neighbour whose seed share it reveals keeps t surviving neighbours;
 * - participants-split: every surviving neighbour signed that it masked with the same
 *   participant list as this agent (the split-view attack shows one agent a smaller list);
 * - second-view: it signs one survivor view per session and reveals only against that view;
 * - consistency-signatures: t of its neighbours signed that same view before it reveals;
 * - survivor-floor (DP rounds): at least n - D agents survive, so at least n_min = n - D - C
 *   honest noises are in the sum it helps unmask (dp.ts).
 */
export type Rule =
  | 'cohort-size'
  | 'masking-neighbours'
  | 'participants-subset'
  | 'partition'
  | 'survivor-neighbours'
  | 'owner-neighbours'
  | 'participants-split'
  | 'second-view'
  | 'consistency-signatures'
  | 'survivor-floor';

/** Local limits an agent enforces on any session, whatever the coordinator proposes. */
export interface AgentPolicy {
  /** Refuse sessions assuming fewer corrupt agents than this fraction. Default 0. */
  readonly minCorruptFraction?: number;
  /** Refuse sparse graphs below this privacy level. Default 40. */
  readonly minSecurityBits?: number;
  /** Refuse cohorts smaller than this. Default 2. */
  readonly minCohortSize?: number;
  /**
   * This agent's input carries DP noise for this spec: refuse an encoding that cannot carry it
   * (checkDpEncoding) and refuse to unmask for fewer than n - D survivors (rule survivor-floor).
   */
  readonly dp?: DpNoiseSpec;
}

export interface AgentOptions {
  readonly id: string;
  /** Long-term Ed25519 identity (the coordinator has its public key enrolled). */
  readonly identity: SigningKeyPair;
  /** The coordinator's Ed25519 public key: every server message must verify under it. */
  readonly serverPublicKey: Uint8Array;
  readonly serverId?: string;
  /** Expected session id; if omitted, the first valid setup message fixes it. */
  readonly session?: string;
  /**
   * Pinned peer signing keys (an out-of-band directory). Without it the agent trusts the keys
   * the coordinator lists in the signed config, i.e. trusts it not to invent agents.
   */
  readonly directory?: (agentId: string) => Uint8Array | undefined;
  readonly policy?: AgentPolicy;
  /** Randomness for keys, seeds, Shamir coefficients, salts and nonces. Default node:crypto. */
  readonly random?: RandomBytes;
}

interface PeerKeys {
  readonly encryptionKey: Uint8Array;
  readonly maskKey: Uint8Array;
  /** The peer's inbox key for this agent (this agent encrypts its shares for the peer to it). */
  readonly inboxKey: Uint8Array;
}

interface SessionContext {
  readonly session: string;
  readonly config: SessionConfig;
  readonly params: SecAggParams;
  readonly graph: NeighbourGraph;
  readonly neighbours: ReadonlySet<string>;
  readonly signingKeys: ReadonlyMap<string, Uint8Array>;
  readonly encryption: BoxKeyPair;
  readonly mask: BoxKeyPair;
  /** One inbox key pair per neighbour. */
  readonly inbox: ReadonlyMap<string, BoxKeyPair>;
}

interface View {
  readonly survivors: readonly string[];
  readonly dropouts: readonly string[];
}

type Cached = { readonly digest: Uint8Array; readonly messages: AgentMessage[] };

function fixedPointEqual(a: FixedPointParams, b: FixedPointParams): boolean {
  return (Object.keys(b) as (keyof FixedPointParams)[]).every((key) => a[key] === b[key]);
}

export class SecAggAgent {
  readonly id: string;
  private readonly identity: SigningKeyPair;
  private readonly serverPublicKey: Uint8Array;
  private readonly serverId: string;
  private readonly expectedSession: string | undefined;
  private readonly directory: ((agentId: string) => Uint8Array | undefined) | undefined;
  private readonly policy: AgentPolicy;
  private readonly random: RandomBytes;

  private stateValue: AgentState = 'awaiting-setup';
  private failure: Error | undefined;
  private context: SessionContext | undefined;
  private peers = new Map<string, PeerKeys>(); // neighbours that advertised, as relayed
  private seed: Uint8Array | undefined;
  private sharedWith: ReadonlySet<string> = new Set(); // U2 as announced with the shares
  private participants: readonly string[] | undefined; // final U2 (participants stage)
  private held = new Map<string, OpenedShares>();
  private input: Uint32Array | undefined;
  private inputProvided = false;
  private view: View | undefined;
  private checkAnswer: Cached | undefined;
  private unmaskAnswer: Cached | undefined;
  private revealed = new Map<string, 'seed' | 'key'>();

  constructor(options: AgentOptions) {
    this.id = options.id;
    this.identity = options.identity;
    this.serverPublicKey = options.serverPublicKey;
    this.serverId = options.serverId ?? DEFAULT_SERVER_ID;
    this.expectedSession = options.session;
    this.directory = options.directory;
    this.policy = options.policy ?? {};
    this.random = options.random ?? defaultRandomBytes;
  }

  get state(): AgentState {
    return this.stateValue;
  }

  /** Why the agent failed, if it did. */
  get failureReason(): Error | undefined {
    return this.failure;
  }

  /** The validated session config (after setup): the encoding parameters live here. */
  get config(): SessionConfig | undefined {
    return this.context?.config;
  }

  get params(): SecAggParams | undefined {
    return this.context?.params;
  }

  /** Handles one coordinator message; returns the messages to send (to the coordinator). */
  receive(message: unknown): AgentMessage[] {
    this.assertAlive();
    const stages = AGENT_EXPECTS[this.stateValue];
    const stage = (message as { stage?: unknown } | null)?.stage;
    if (stages.length === 0) {
      throw new UnexpectedStageError(String(stage), this.stateValue === 'awaiting-input' ? 'awaiting the input (setInput)' : this.stateValue);
    }
    const session = this.context?.session ?? this.expectedSession ?? String((message as { session?: unknown } | null)?.session);
    checkEnvelope(message, { session, stages, state: this.stateValue, recipient: this.id }, (sender) => {
      if (sender !== this.serverId) throw new UnknownSignerError(String(stage), sender);
      return this.serverPublicKey;
    });
    const envelope = message as { stage: Stage; payload: unknown; recipients: readonly string[] };
    const payload = expectRecord('payload', envelope.payload);
    if (envelope.stage !== 'setup' && (envelope.recipients.length !== 1 || envelope.recipients[0] !== this.id)) {
      this.fail(new RelayInconsistentError(`the ${envelope.stage} message is addressed to [${envelope.recipients.join(', ')}], not to this agent alone`));
    }
    switch (envelope.stage) {
      case 'setup':
        return [this.onSetup(session, payload)];
      case 'keys':
        return [this.onKeys(payload)];
      case 'shares':
        return [this.onShares(payload)];
      case 'participants':
        return this.onParticipants(payload);
      case 'check':
        return this.onCheck(payload);
      case 'unmask':
        return this.onUnmask(payload);
      default:
        throw new InternalError(`no handler for stage ${envelope.stage}`);
    }
  }

  /**
   * Provides the encoded update (`encodeFixedPoint` output, length `config.encoding.length`).
   * May come before or after the participants arrive; the masked input goes out once both are here.
   */
  setInput(vector: Uint32Array): AgentMessage[] {
    this.assertAlive();
    if (this.inputProvided) throw new UnexpectedStageError('input', 'the input was already provided');
    if (this.context === undefined) throw new UnexpectedStageError('input', 'awaiting the session config (setup)');
    if (!(vector instanceof Uint32Array)) throw new MalformedMessageError('input', 'must be a Uint32Array');
    const expected = this.context.config.encoding.length;
    if (vector.length !== expected) throw new MalformedMessageError('input', `must have ${expected} words, got ${vector.length}`);
    this.input = vector.slice();
    this.inputProvided = true;
    return this.stateValue === 'awaiting-input' ? [this.maskedInput()] : [];
  }

  /**
   * Enforces one protective rule: when `ok` is false the agent fails for good with an error
   * naming the rule. Tests override it to build a deliberately weakened agent and show that the
   * attack each rule stops really works without it.
   */
  protected enforce(rule: Rule, ok: boolean, details: () => string): void {
    if (!ok) this.fail(new ConsistencyError(rule, details()));
  }

  /** Whether a relayed share carries its sender's signature. Tests override it (a weakened agent). */
  protected senderSigned(statement: Uint8Array, signature: Uint8Array, senderKey: Uint8Array): boolean {
    return verifyDetached(statement, signature, senderKey);
  }

  private assertAlive(): void {
    if (this.stateValue === 'failed') throw new SessionEndedError(`failed: ${this.failure?.message ?? 'unknown'}`);
  }

  /** Coordinator misbehaviour proven by a signed message: fail permanently. */
  private fail(error: Error): never {
    this.stateValue = 'failed';
    this.failure = error;
    this.erase();
    throw error;
  }

  private erase(): void {
    this.seed?.fill(0);
    this.input?.fill(0);
    this.context?.mask.secretKey.fill(0);
    this.context?.encryption.secretKey.fill(0);
    for (const pair of this.context?.inbox.values() ?? []) pair.secretKey.fill(0);
  }

  private sign(stage: AgentMessage['stage'], payload: CanonicalValue): AgentMessage {
    const ctx = this.requireContext();
    return signEnvelope({ session: ctx.session, stage, sender: this.id, recipients: [this.serverId], payload }, this.identity.secretKey) as AgentMessage;
  }

  // ---- setup -> advertise -------------------------------------------------------------------

  private onSetup(session: string, payload: Record<string, unknown>): AgentMessage {
    const config = this.validateConfig(session, expectRecord('payload.config', payload.config));
    const params = deriveSecAggParams({
      cohortSize: config.cohort.length,
      dropoutFraction: config.dropoutFraction,
      corruptFraction: config.corruptFraction,
      neighbours: config.neighbours,
      securityBits: config.securityBits,
      correctnessBits: config.correctnessBits,
    });
    if (params.neighbours !== config.neighbours) {
      throw new ParamsMismatchError('neighbours', String(config.neighbours), String(params.neighbours));
    }
    if (params.threshold !== config.threshold) {
      throw new ParamsMismatchError('threshold', String(config.threshold), String(params.threshold));
    }
    const minCorrupt = this.policy.minCorruptFraction ?? 0;
    if (config.corruptFraction < minCorrupt) {
      throw new ParamsMismatchError('corruptFraction', String(config.corruptFraction), `>= ${minCorrupt}`);
    }
    const minBits = this.policy.minSecurityBits ?? DEFAULT_SECURITY_BITS;
    if (params.graph === 'harary' && config.securityBits < minBits) {
      throw new ParamsMismatchError('securityBits', String(config.securityBits), `>= ${minBits}`);
    }
    // A DP input needs an encoding that carries its noise intact (refused like other parameters).
    if (this.policy.dp !== undefined) checkDpEncoding(this.policy.dp, config.encoding, params);
    const minCohort = this.policy.minCohortSize ?? 2;
    this.enforce('cohort-size', config.cohort.length >= minCohort, () => `the cohort has ${config.cohort.length} agents, this agent's policy needs at least ${minCohort}`);
    const graph = buildNeighbourGraph(
      config.cohort.map((m) => m.id),
      params.neighbours,
      config.graphSeed,
      session,
    );
    const neighbours = graph.neighbours(this.id);
    this.context = {
      session,
      config,
      params,
      graph,
      neighbours: new Set(neighbours),
      signingKeys: new Map(config.cohort.map((m) => [m.id, m.signingKey] as const)),
      encryption: generateBoxKeyPair(this.random),
      mask: generateBoxKeyPair(this.random),
      inbox: new Map(neighbours.map((peer) => [peer, generateBoxKeyPair(this.random)] as const)),
    };
    this.stateValue = 'awaiting-keys';
    const encryptionKey = this.context.encryption.publicKey;
    const maskKey = this.context.mask.publicKey;
    const inboxKeys = neighbours.map((peer) => {
      const key = (this.context?.inbox.get(peer) as BoxKeyPair).publicKey;
      // Signed per neighbour: each one is relayed only its own entry (neighbourKeysStatement).
      const signature = signDetached(neighbourKeysStatement(session, this.id, peer, { encryptionKey, maskKey, inboxKey: key }), this.identity.secretKey);
      return { peer, key, signature };
    });
    return this.sign('advertise', { encryptionKey, maskKey, inboxKeys });
  }

  private validateConfig(session: string, raw: Record<string, unknown>): SessionConfig {
    const num = (key: string): number => {
      const v = raw[key];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new MalformedMessageError(`config.${key}`, 'must be a number');
      return v;
    };
    if (raw.session !== session) throw new ParamsMismatchError('config.session', String(raw.session), session);
    if (raw.server !== this.serverId) throw new ParamsMismatchError('config.server', String(raw.server), this.serverId);
    const cohort: CohortMember[] = expectArray('config.cohort', raw.cohort).map((entry, i) => {
      const member = expectRecord(`config.cohort[${i}]`, entry);
      return {
        id: expectString(`config.cohort[${i}].id`, member.id),
        signingKey: expectBytes(`config.cohort[${i}].signingKey`, member.signingKey, 32),
      };
    });
    const ids = sortAgents(cohort.map((m) => m.id));
    const mine = cohort.find((m) => m.id === this.id);
    if (mine === undefined) throw new ParamsMismatchError('config.cohort', `a cohort without ${this.id}`, `${this.id} in the cohort`);
    if (!bytesEqual(mine.signingKey, this.identity.publicKey)) {
      throw new ParamsMismatchError('config.cohort', `another signing key for ${this.id}`, "this agent's own key");
    }
    if (this.directory !== undefined) {
      for (const member of cohort) {
        const pinned = this.directory(member.id);
        if (pinned === undefined || !bytesEqual(pinned, member.signingKey)) {
          throw new ParamsMismatchError(`signing key of ${member.id}`, 'unknown or different from the directory', 'the pinned key');
        }
      }
    }
    const encodingRaw = expectRecord('config.encoding', raw.encoding);
    const encodingNum = (key: string): number => {
      const v = encodingRaw[key];
      if (typeof v !== 'number') throw new MalformedMessageError(`config.encoding.${key}`, 'must be a number');
      return v;
    };
    if (typeof encodingRaw.weighted !== 'boolean') throw new MalformedMessageError('config.encoding.weighted', 'must be a boolean');
    const encoding = deriveFixedPoint({
      dimension: encodingNum('dimension'),
      clip: encodingNum('clip'),
      cohortSize: encodingNum('cohortSize'),
      maxWeight: encodingNum('maxWeight'),
      weighted: encodingRaw.weighted,
      scale: encodingNum('scale'),
      weightScale: encodingNum('weightScale'),
    });
    if (!fixedPointEqual(encodingRaw as FixedPointParams, encoding)) {
      throw new ParamsMismatchError('config.encoding', 'inconsistent derived fields', 'deriveFixedPoint output');
    }
    if (encoding.cohortSize < ids.length) {
      throw new ParamsMismatchError('config.encoding.cohortSize', String(encoding.cohortSize), `>= ${ids.length} (else the sum may wrap)`);
    }
    return {
      session,
      server: this.serverId,
      cohort,
      graphSeed: expectBytes('config.graphSeed', raw.graphSeed, 32),
      dropoutFraction: num('dropoutFraction'),
      corruptFraction: num('corruptFraction'),
      securityBits: num('securityBits'),
      correctnessBits: num('correctnessBits'),
      neighbours: num('neighbours'),
      threshold: num('threshold'),
      prg: assertPrgAlgorithm(raw.prg),
      encoding,
    };
  }

  // ---- keys -> share keys -------------------------------------------------------------------

  private onKeys(payload: Record<string, unknown>): AgentMessage {
    const ctx = this.requireContext();
    const own = payload.own;
    let ownIntact = false;
    if (own !== undefined) {
      checkEnvelope(own, { session: ctx.session, stages: ['advertise'], state: 'checking relayed keys', recipient: this.serverId }, (sender) => {
        if (sender !== this.id) throw new UnknownSignerError('advertise', sender);
        return this.identity.publicKey;
      });
      ownIntact = this.isOwnAdvert((own as AdvertiseMessage).payload);
    }
    const peers = new Map<string, PeerKeys>();
    for (const [i, entry] of expectArray('payload.neighbours', payload.neighbours).entries()) {
      const r = expectRecord(`payload.neighbours[${i}]`, entry);
      const sender = expectString(`payload.neighbours[${i}].agent`, r.agent);
      if (!ctx.neighbours.has(sender)) this.fail(new RelayInconsistentError(`relayed keys of ${sender}, which is not a neighbour`));
      if (peers.has(sender)) this.fail(new RelayInconsistentError(`two key advertisements for ${sender}`));
      const keys: PeerKeys = {
        encryptionKey: expectBytes(`keys of ${sender}.encryptionKey`, r.encryptionKey, 32),
        maskKey: expectBytes(`keys of ${sender}.maskKey`, r.maskKey, 32),
        inboxKey: expectBytes(`keys of ${sender}.inboxKey`, r.inboxKey, 32),
      };
      const signature = expectBytes(`keys of ${sender}.signature`, r.signature, 64);
      // Refused like a badly signed envelope (state unchanged): only the neighbour can sign its keys.
      if (!verifyDetached(neighbourKeysStatement(ctx.session, sender, this.id, keys), signature, ctx.signingKeys.get(sender) as Uint8Array)) {
        throw new BadSignatureError('keys', sender);
      }
      try {
        for (const key of [keys.encryptionKey, keys.maskKey, keys.inboxKey]) assertStrongX25519(key, sender);
      } catch (err) {
        // The coordinator must refuse such an advertisement; relaying it is its fault.
        this.fail(new RelayInconsistentError(`relayed a weak key of ${sender}: ${(err as Error).message}`));
      }
      peers.set(sender, keys);
    }
    if (!ownIntact) this.fail(new RelayInconsistentError("the relayed keys omit or alter this agent's own advertisement"));
    const holders = sortAgents([...peers.keys()]);
    const t = ctx.params.threshold;
    this.enforce('masking-neighbours', holders.length >= t, () => `only ${holders.length} neighbours advertised keys, fewer than the threshold ${t}`);
    this.peers = peers;
    this.seed = this.random(SEED_LENGTH);
    const seedShares = splitSecret(this.seed, holders.length, t, this.random);
    const keyShares = splitSecret(ctx.mask.secretKey, holders.length, t, this.random);
    const shares: EncryptedShare[] = holders.map((peer, i) => {
      const keys = peers.get(peer) as PeerKeys;
      const plaintext: SharePlaintext = {
        protocol: PROTOCOL_ID,
        session: ctx.session,
        from: this.id,
        to: peer,
        seedShare: seedShares[i] as Uint8Array,
        seedSalt: this.random(SHARE_SALT_LENGTH),
        keyShare: keyShares[i] as Uint8Array,
        keySalt: this.random(SHARE_SALT_LENGTH),
      };
      const nonce = this.random(BOX_NONCE_LENGTH);
      const boxKey = boxBefore(keys.inboxKey, ctx.encryption.secretKey, peer);
      const ciphertext = boxSeal(encodeCanonical(plaintext), nonce, boxKey);
      boxKey.fill(0);
      const fields = {
        nonce,
        ciphertext,
        seedShareCommitment: shareCommitment(ctx.session, this.id, peer, 'seed', plaintext.seedShare, plaintext.seedSalt),
        keyShareCommitment: shareCommitment(ctx.session, this.id, peer, 'key', plaintext.keyShare, plaintext.keySalt),
      };
      return { peer, ...fields, signature: signDetached(shareStatement(ctx.session, this.id, peer, fields), this.identity.secretKey) };
    });
    for (const s of [...seedShares, ...keyShares]) s.fill(0);
    this.stateValue = 'awaiting-shares';
    return this.sign('share-keys', { seedCommitment: seedCommitment(ctx.session, this.id, this.seed), shares });
  }

  private isOwnAdvert(payload: AdvertiseMessage['payload']): boolean {
    const ctx = this.requireContext();
    if (!(payload.encryptionKey instanceof Uint8Array) || !(payload.maskKey instanceof Uint8Array) || !Array.isArray(payload.inboxKeys)) return false;
    if (!bytesEqual(payload.encryptionKey, ctx.encryption.publicKey) || !bytesEqual(payload.maskKey, ctx.mask.publicKey)) return false;
    return (
      payload.inboxKeys.length === ctx.inbox.size &&
      payload.inboxKeys.every((e) => e.key instanceof Uint8Array && bytesEqual(e.key, ctx.inbox.get(e.peer)?.publicKey ?? new Uint8Array(0)))
    );
  }

  // ---- shares -> share check ----------------------------------------------------------------

  private onShares(payload: Record<string, unknown>): AgentMessage {
    const ctx = this.requireContext();
    const participants = new Set(expectIdList('payload.participants', payload.participants));
    const incoming = expectArray('payload.shares', payload.shares);
    if (!participants.has(this.id)) this.fail(new RelayInconsistentError('this agent is missing from the participants'));
    for (const p of participants) {
      if (!ctx.signingKeys.has(p)) this.fail(new RelayInconsistentError(`participant ${p} is not in the cohort`));
      if (ctx.neighbours.has(p) && !this.peers.has(p)) this.fail(new RelayInconsistentError(`participant ${p} never advertised keys`));
    }
    const expected = [...this.peers.keys()].filter((v) => participants.has(v));
    const t = ctx.params.threshold;
    this.enforce('masking-neighbours', expected.length >= t, () => `only ${expected.length} of the participants are neighbours, fewer than the threshold ${t}`);
    const held = new Map<string, OpenedShares>();
    const complaints: Complaint[] = [];
    const seen = new Set<string>();
    for (const [i, entry] of incoming.entries()) {
      const share = expectRecord(`payload.shares[${i}]`, entry);
      const from = expectString(`payload.shares[${i}].peer`, share.peer);
      if (!expected.includes(from) || seen.has(from)) this.fail(new RelayInconsistentError(`unexpected or repeated shares from ${from}`));
      seen.add(from);
      const opened = this.openShare(from, share);
      if (typeof opened === 'string') {
        const secret = (ctx.inbox.get(from) as BoxKeyPair).secretKey;
        complaints.push({ peer: from, inboxSecret: Uint8Array.from(secret), reason: opened });
      } else {
        held.set(from, opened);
      }
    }
    const missing = expected.filter((v) => !seen.has(v));
    if (missing.length > 0) {
      // Such a neighbour would mask with us while we could not reveal its secrets.
      this.fail(new RelayInconsistentError(`participants ${missing.join(', ')} are neighbours but their shares were withheld`));
    }
    this.sharedWith = participants;
    this.held = held;
    this.stateValue = 'awaiting-participants';
    return this.sign('share-check', { complaints });
  }

  /** Decrypts and checks one relayed share; a string says why it is bad (a complaint). */
  private openShare(from: string, share: Record<string, unknown>): OpenedShares | string {
    const ctx = this.requireContext();
    const nonce = expectBytes(`shares of ${from}.nonce`, share.nonce, BOX_NONCE_LENGTH);
    const ciphertext = expectBytes(`shares of ${from}.ciphertext`, share.ciphertext);
    const seedCommit = expectBytes(`shares of ${from}.seedShareCommitment`, share.seedShareCommitment, 32);
    const keyCommit = expectBytes(`shares of ${from}.keyShareCommitment`, share.keyShareCommitment, 32);
    const signature = expectBytes(`shares of ${from}.signature`, share.signature, 64);
    const statement = shareStatement(ctx.session, from, this.id, { nonce, ciphertext, seedShareCommitment: seedCommit, keyShareCommitment: keyCommit });
    // Only a ciphertext its sender signed may cost an inbox secret; anything else is the relay's doing.
    if (!this.senderSigned(statement, signature, ctx.signingKeys.get(from) as Uint8Array)) {
      this.fail(new RelayInconsistentError(`the shares relayed as from ${from} do not carry its signature`));
    }
    const boxKey = boxBefore((this.peers.get(from) as PeerKeys).encryptionKey, (ctx.inbox.get(from) as BoxKeyPair).secretKey, from);
    const opened = boxOpen(ciphertext, nonce, boxKey);
    boxKey.fill(0);
    if (opened === null) return 'the ciphertext does not decrypt';
    return checkSharePlaintext(opened, ctx.session, from, this.id, seedCommit, keyCommit);
  }

  // ---- participants -> masked input ---------------------------------------------------------

  private onParticipants(payload: Record<string, unknown>): AgentMessage[] {
    const ctx = this.requireContext();
    const participants = sortAgents(expectIdList('payload.participants', payload.participants));
    const outside = participants.filter((p) => !this.sharedWith.has(p));
    this.enforce('participants-subset', outside.length === 0, () => `[${outside.join(', ')}] were not participants when the shares were relayed`);
    this.enforce('partition', participants.includes(this.id), () => 'this agent is missing from the final participants');
    const masking = participants.filter((p) => ctx.neighbours.has(p));
    const t = ctx.params.threshold;
    this.enforce('masking-neighbours', masking.length >= t, () => `only ${masking.length} neighbours remain to mask with, fewer than the threshold ${t}`);
    this.participants = participants;
    for (const owner of [...this.held.keys()]) if (!participants.includes(owner)) this.held.delete(owner);
    if (this.input === undefined) {
      this.stateValue = 'awaiting-input';
      return [];
    }
    return [this.maskedInput()];
  }

  private maskedInput(): AgentMessage {
    const ctx = this.requireContext();
    const input = this.input;
    const seed = this.seed;
    const participants = this.participants;
    if (input === undefined || seed === undefined || participants === undefined) throw new InternalError('masking without input, seed or participants');
    const nonce = maskNonce(ctx.session);
    // `input` is our private copy: mask it in place and let go of it.
    const masked = input;
    this.input = undefined;
    const terms: MaskTerm[] = [{ key: selfMaskKey(seed, ctx.session, this.id), nonce, sign: 1 }];
    for (const peer of participants) {
      const keys = this.peers.get(peer);
      if (keys === undefined) continue; // not a neighbour
      const key = pairwiseMaskKey(ctx.session, this.id, ctx.mask.publicKey, ctx.mask.secretKey, peer, keys.maskKey);
      terms.push({ key, nonce, sign: pairwiseSign(this.id, peer) });
    }
    applyMasks(masked, terms, ctx.config.prg);
    for (const term of terms) term.key.fill(0);
    // The seed now lives only in the neighbours' shares; drop our plaintext copy.
    seed.fill(0);
    this.stateValue = 'awaiting-check';
    const maskedWith = signDetached(maskedWithStatement(ctx.session, this.id, participants), this.identity.secretKey);
    return this.sign('masked-input', { masked, maskedWith });
  }

  // ---- check -> consistency -----------------------------------------------------------------

  private onCheck(payload: Record<string, unknown>): AgentMessage[] {
    const ctx = this.requireContext();
    const view = this.readView(payload);
    const digest = canonicalDigest([view.survivors, view.dropouts]);
    if (this.checkAnswer !== undefined) {
      if (bytesEqual(this.checkAnswer.digest, digest)) return this.checkAnswer.messages;
      this.enforce('second-view', false, () => 'the coordinator already announced a different survivor set');
    }
    this.checkPartition(view);
    this.checkSurvivorFloor(view);
    const t = ctx.params.threshold;
    const survivors = new Set(view.survivors);
    const surviving = (agent: string): number => ctx.graph.neighbours(agent).filter((v) => survivors.has(v)).length;
    const mine = surviving(this.id);
    this.enforce('survivor-neighbours', mine >= t, () => `only ${mine} neighbours survive, fewer than the threshold ${t}`);
    const statements = this.signatureMap('payload.maskedWith', payload.maskedWith);
    const participants = this.participants as readonly string[];
    for (const u of ctx.graph.neighbours(this.id).filter((v) => survivors.has(v))) {
      const signature = statements.get(u);
      const valid = signature !== undefined && verifyDetached(maskedWithStatement(ctx.session, u, participants), signature, ctx.signingKeys.get(u) as Uint8Array);
      this.enforce('participants-split', valid, () => `surviving neighbour ${u} did not sign that it masked with this agent's ${participants.length} participants`);
      const theirs = surviving(u);
      this.enforce('owner-neighbours', theirs >= t, () => `surviving neighbour ${u} keeps only ${theirs} surviving neighbours, fewer than the threshold ${t}`);
    }
    this.view = view;
    const signature = signDetached(consistencyStatement(ctx.session, view.survivors, view.dropouts), this.identity.secretKey);
    const messages = [this.sign('consistency', { signature })];
    this.checkAnswer = { digest, messages };
    this.stateValue = 'awaiting-unmask';
    return messages;
  }

  private readView(payload: Record<string, unknown>): View {
    return {
      survivors: sortAgents(expectIdList('payload.survivors', payload.survivors)),
      dropouts: sortAgents(expectIdList('payload.dropouts', payload.dropouts)),
    };
  }

  private checkPartition(view: View): void {
    const participants = new Set(this.participants ?? []);
    const survivors = new Set(view.survivors);
    const both = view.dropouts.filter((d) => survivors.has(d));
    if (both.length > 0) {
      this.fail(new InconsistentAnnouncementError(`${both.join(', ')} announced both as survivor and as dropout (that would reveal both of its secrets)`));
    }
    const announced = [...view.survivors, ...view.dropouts];
    const unknown = announced.filter((a) => !participants.has(a));
    const omitted = [...participants].filter((p) => !survivors.has(p) && !view.dropouts.includes(p));
    this.enforce(
      'partition',
      unknown.length === 0 && omitted.length === 0,
      () => `survivors and dropouts must partition the ${participants.size} participants; unknown: [${unknown.join(', ')}], omitted: [${omitted.join(', ')}]`,
    );
    this.enforce('partition', survivors.has(this.id), () => 'this agent sent its masked input but is announced as a dropout');
  }

  /** DP rounds: the noise is sized for n_min honest survivors, so no sum of fewer than n - D may be unmasked. */
  private checkSurvivorFloor(view: View): void {
    if (this.policy.dp === undefined) return;
    const { cohortSize, maxDropouts } = this.requireContext().params;
    const floor = cohortSize - maxDropouts;
    this.enforce(
      'survivor-floor',
      view.survivors.length >= floor,
      () => `${view.survivors.length} survivors announced, fewer than cohort ${cohortSize} - tolerated dropouts ${maxDropouts} = ${floor}: the sum would carry less DP noise than the round promises`,
    );
  }

  private signatureMap(where: string, raw: unknown): Map<string, Uint8Array> {
    const out = new Map<string, Uint8Array>();
    for (const [i, entry] of expectArray(where, raw).entries()) {
      const r = expectRecord(`${where}[${i}]`, entry) as Partial<AgentSignature>;
      const agent = expectString(`${where}[${i}].agent`, r.agent);
      if (out.has(agent)) throw new MalformedMessageError(where, `two signatures of ${agent}`);
      out.set(agent, expectBytes(`${where}[${i}].signature`, r.signature, 64));
    }
    return out;
  }

  // ---- unmask -> revealed shares ------------------------------------------------------------

  private onUnmask(payload: Record<string, unknown>): AgentMessage[] {
    const ctx = this.requireContext();
    const view = this.readView(payload);
    const digest = canonicalDigest([view.survivors, view.dropouts]);
    if (this.unmaskAnswer !== undefined) {
      if (bytesEqual(this.unmaskAnswer.digest, digest)) return this.unmaskAnswer.messages;
      this.fail(new UnmaskConflictError('the coordinator already announced a different survivor set'));
    }
    const signed = this.view;
    const same = signed !== undefined && bytesEqual(canonicalDigest([signed.survivors, signed.dropouts]), digest);
    this.enforce('second-view', same, () => 'the unmask request names another survivor set than the one this agent signed');
    const checked = signed ?? view; // a weakened agent goes on with what it was told
    if (signed === undefined) {
      this.checkPartition(view);
      this.checkSurvivorFloor(view);
    }
    const survivors = new Set(checked.survivors);
    const dropouts = new Set(checked.dropouts);
    const statement = consistencyStatement(ctx.session, checked.survivors, checked.dropouts);
    const signatures = this.signatureMap('payload.signatures', payload.signatures);
    const valid = [...signatures].filter(
      ([agent, signature]) =>
        ctx.neighbours.has(agent) && survivors.has(agent) && verifyDetached(statement, signature, ctx.signingKeys.get(agent) as Uint8Array),
    ).length;
    const t = ctx.params.threshold;
    this.enforce('consistency-signatures', valid >= t, () => `only ${valid} neighbours signed this survivor set, fewer than the threshold ${t}`);
    const seedShares: RevealedShare[] = [];
    const keyShares: RevealedShare[] = [];
    for (const [owner, shares] of this.held) {
      const kind = survivors.has(owner) ? 'seed' : dropouts.has(owner) ? 'key' : undefined;
      if (kind === undefined) continue;
      const before = this.revealed.get(owner);
      // Defence in depth: the partition check already prevents this.
      if (before !== undefined && before !== kind) this.fail(new UnmaskConflictError(`asked for both shares of ${owner}`));
      this.revealed.set(owner, kind);
      if (kind === 'seed') seedShares.push({ owner, share: shares.seedShare, salt: shares.seedSalt });
      else keyShares.push({ owner, share: shares.keyShare, salt: shares.keySalt });
    }
    const messages = [this.sign('unmask-response', { seedShares, keyShares })];
    this.unmaskAnswer = { digest, messages };
    this.stateValue = 'done';
    this.erase();
    return messages;
  }

  private requireContext(): SessionContext {
    if (this.context === undefined) throw new InternalError('no session context');
    return this.context;
  }
}
