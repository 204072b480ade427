// Agent (client) state machine of SecAgg+, sans-IO: `receive(message)` and `setInput(vector)`
// return the messages to send. One object per agent per session (round).
//
//   awaiting-setup --setup--> awaiting-keys --keys--> awaiting-shares --shares--> [awaiting-input]
//   --(input)--> awaiting-unmask --unmask--> done
//
// Refusals throw a typed error and leave the state unchanged when the message could come from
// anyone on the network (bad signature, other session, wrong recipient, malformed). When a
// message signed by the coordinator proves it inconsistent (lying about dropouts, tampering with
// relayed keys or shares, weakening parameters), the agent moves to `failed` for good.
import { canonicalDigest, decodeCanonical, encodeCanonical } from './canonical.js';
import {
  BOX_NONCE_LENGTH,
  boxBefore,
  boxOpen,
  boxSeal,
  bytesEqual,
  defaultRandomBytes,
  generateBoxKeyPair,
  type BoxKeyPair,
  type RandomBytes,
  type SigningKeyPair,
} from './crypto.js';
import { deriveFixedPoint, type FixedPointParams } from './encoding.js';
import {
  DecryptError,
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
import { maskNonce, pairwiseMaskKey, pairwiseSign, seedCommitment, selfMaskKey, SEED_LENGTH, SHARE_LENGTH } from './masks.js';
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
  type CohortMember,
  type EncryptedShare,
  type KeysPayload,
  type RevealedShare,
  type SessionConfig,
  type SharePlaintext,
  type SharesPayload,
  type Stage,
  type UnmaskPayload,
} from './messages.js';
import { DEFAULT_SECURITY_BITS, deriveSecAggParams, type SecAggParams } from './params.js';
import { applyMasks, assertPrgAlgorithm, type MaskTerm } from './prg.js';
import { shareSecret } from './shamir.js';

export type AgentState =
  | 'awaiting-setup'
  | 'awaiting-keys'
  | 'awaiting-shares'
  | 'awaiting-input'
  | 'awaiting-unmask'
  | 'done'
  | 'failed';

/** Local limits an agent enforces on any session, whatever the coordinator proposes. */
export interface AgentPolicy {
  /** Refuse sessions assuming fewer corrupt agents than this fraction. Default 0. */
  readonly minCorruptFraction?: number;
  /** Refuse sparse graphs below this privacy level. Default 40. */
  readonly minSecurityBits?: number;
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
  /** Randomness for keys, seeds and nonces. Default node:crypto. Shamir uses its own CSPRNG. */
  readonly random?: RandomBytes;
}

interface PeerKeys {
  readonly encryptionKey: Uint8Array;
  readonly maskKey: Uint8Array;
}

interface HeldShares {
  readonly seedShare: Uint8Array;
  readonly keyShare: Uint8Array;
}

interface SessionContext {
  readonly session: string;
  readonly config: SessionConfig;
  readonly params: SecAggParams;
  readonly graph: NeighbourGraph;
  readonly signingKeys: ReadonlyMap<string, Uint8Array>;
  readonly encryption: BoxKeyPair;
  readonly mask: BoxKeyPair;
}

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
  private peers = new Map<string, PeerKeys>(); // U1 as relayed
  private boxKeys = new Map<string, Uint8Array>();
  private seed: Uint8Array | undefined;
  private participants: ReadonlySet<string> | undefined; // U2 as announced
  private held = new Map<string, HeldShares>();
  private input: Uint32Array | undefined;
  private inputProvided = false;
  private unmaskAnswer: { digest: Uint8Array; messages: AgentMessage[] } | undefined;
  private revealed = new Map<string, 'seed' | 'key'>();
  private queue: Promise<unknown> = Promise.resolve();

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

  /** Handles one coordinator message; resolves to the messages to send (to the coordinator). */
  receive(message: unknown): Promise<AgentMessage[]> {
    return this.serialize(() => this.dispatch(message));
  }

  /**
   * Provides the encoded update (`encodeFixedPoint` output, length `config.encoding.length`).
   * May come before or after the shares arrive; the masked input goes out once both are here.
   */
  setInput(vector: Uint32Array): Promise<AgentMessage[]> {
    return this.serialize(async () => {
      this.assertAlive();
      if (this.inputProvided) throw new UnexpectedStageError('input', 'the input was already provided');
      if (this.context === undefined) throw new UnexpectedStageError('input', 'awaiting the session config (setup)');
      if (!(vector instanceof Uint32Array)) throw new MalformedMessageError('input', 'must be a Uint32Array');
      const expected = this.context.config.encoding.length;
      if (vector.length !== expected) {
        throw new MalformedMessageError('input', `must have ${expected} words, got ${vector.length}`);
      }
      this.input = vector.slice();
      this.inputProvided = true;
      return this.stateValue === 'awaiting-input' ? [this.maskedInput()] : [];
    });
  }

  private serialize<T>(task: () => Promise<T>): Promise<T> {
    // Calls run one at a time: the Shamir library is async, and interleaving would race state.
    const run = this.queue.then(task, task);
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
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
  }

  private async dispatch(message: unknown): Promise<AgentMessage[]> {
    this.assertAlive();
    const stateStage: Partial<Record<AgentState, Stage>> = {
      'awaiting-setup': 'setup',
      'awaiting-keys': 'keys',
      'awaiting-shares': 'shares',
      'awaiting-input': 'unmask',
      'awaiting-unmask': 'unmask',
      done: 'unmask', // an identical unmask request gets the same answer again
    };
    const stage = stateStage[this.stateValue];
    if (stage === undefined) throw new UnexpectedStageError(String((message as { stage?: unknown })?.stage), this.stateValue);
    const session = this.context?.session ?? this.expectedSession ?? String((message as { session?: unknown })?.session);
    checkEnvelope(
      message,
      { session, stages: [stage], state: this.stateValue, recipient: this.id },
      (sender) => {
        if (sender !== this.serverId) throw new UnknownSignerError(stage, sender);
        return this.serverPublicKey;
      },
    );
    const payload = expectRecord('payload', (message as { payload: unknown }).payload);
    const recipients = (message as { recipients: readonly string[] }).recipients;
    switch (stage) {
      case 'setup':
        return [this.onSetup(session, payload)];
      case 'keys':
        return [await this.onKeys(payload, recipients)];
      case 'shares':
        return this.onShares(payload);
      case 'unmask':
        if (this.stateValue === 'awaiting-input') {
          throw new UnexpectedStageError('unmask', 'awaiting the input (no masked input was sent)');
        }
        return this.onUnmask(payload, recipients);
      default:
        throw new InternalError(`no handler for stage ${stage}`);
    }
  }

  // ---- stage 0: setup -> advertise keys -----------------------------------------------------

  private onSetup(session: string, payload: Record<string, unknown>): AdvertiseMessage {
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
    const signingKeys = new Map(config.cohort.map((m) => [m.id, m.signingKey] as const));
    this.context = {
      session,
      config,
      params,
      graph: buildNeighbourGraph(
        config.cohort.map((m) => m.id),
        params.neighbours,
        config.graphSeed,
        session,
      ),
      signingKeys,
      encryption: generateBoxKeyPair(this.random),
      mask: generateBoxKeyPair(this.random),
    };
    this.stateValue = 'awaiting-keys';
    return signEnvelope(
      {
        session,
        stage: 'advertise',
        sender: this.id,
        recipients: [this.serverId],
        payload: { encryptionKey: this.context.encryption.publicKey, maskKey: this.context.mask.publicKey },
      },
      this.identity.secretKey,
    );
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
      throw new ParamsMismatchError('config.cohort', `another signing key for ${this.id}`, 'this agent\'s own key');
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

  // ---- stage 1: keys -> share keys ----------------------------------------------------------

  private async onKeys(payload: Record<string, unknown>, recipients: readonly string[]): Promise<AgentMessage> {
    const ctx = this.requireContext();
    const ads = expectArray('payload.advertisements', (payload as KeysPayload).advertisements);
    const peers = new Map<string, PeerKeys>();
    for (const ad of ads) {
      checkEnvelope(
        ad,
        { session: ctx.session, stages: ['advertise'], state: 'checking relayed keys', recipient: this.serverId },
        (sender) => {
          const key = ctx.signingKeys.get(sender);
          if (key === undefined) throw new UnknownSignerError('advertise', sender);
          return key;
        },
      );
      const { sender, payload: adPayload } = ad as AdvertiseMessage;
      if (peers.has(sender)) this.fail(new RelayInconsistentError(`two key advertisements for ${sender}`));
      peers.set(sender, {
        encryptionKey: expectBytes(`advertisement of ${sender}.encryptionKey`, adPayload.encryptionKey, 32),
        maskKey: expectBytes(`advertisement of ${sender}.maskKey`, adPayload.maskKey, 32),
      });
    }
    const own = peers.get(this.id);
    if (own === undefined || !bytesEqual(own.encryptionKey, ctx.encryption.publicKey) || !bytesEqual(own.maskKey, ctx.mask.publicKey)) {
      this.fail(new RelayInconsistentError('the relayed keys omit or alter this agent\'s own advertisement'));
    }
    if (recipients.length !== peers.size || !recipients.every((r) => peers.has(r))) {
      this.fail(new RelayInconsistentError('the keys message is addressed to a different set than the agents it lists'));
    }
    const holders = ctx.graph.neighbours(this.id).filter((v) => peers.has(v));
    const t = ctx.params.threshold;
    if (holders.length < t) {
      this.fail(new RelayInconsistentError(`only ${holders.length} neighbours advertised keys, fewer than the threshold ${t}`));
    }
    this.peers = peers;
    this.seed = this.random(SEED_LENGTH);
    const seedShares = await shareSecret(this.seed, holders.length, t);
    const keyShares = await shareSecret(ctx.mask.secretKey, holders.length, t);
    const shares: EncryptedShare[] = holders.map((peer, i) => {
      const keys = peers.get(peer) as PeerKeys;
      const boxKey = boxBefore(keys.encryptionKey, ctx.encryption.secretKey, peer);
      this.boxKeys.set(peer, boxKey);
      const plaintext: SharePlaintext = {
        protocol: PROTOCOL_ID,
        session: ctx.session,
        from: this.id,
        to: peer,
        seedShare: seedShares[i] as Uint8Array,
        keyShare: keyShares[i] as Uint8Array,
      };
      const nonce = this.random(BOX_NONCE_LENGTH);
      return { peer, nonce, ciphertext: boxSeal(encodeCanonical(plaintext), nonce, boxKey) };
    });
    this.stateValue = 'awaiting-shares';
    return signEnvelope(
      {
        session: ctx.session,
        stage: 'share-keys',
        sender: this.id,
        recipients: [this.serverId],
        payload: { seedCommitment: seedCommitment(ctx.session, this.id, this.seed), shares },
      },
      this.identity.secretKey,
    );
  }

  // ---- stage 2: shares -> masked input ------------------------------------------------------

  private onShares(payload: Record<string, unknown>): AgentMessage[] {
    const ctx = this.requireContext();
    const participants = new Set(expectIdList('payload.participants', (payload as SharesPayload).participants));
    const incoming = expectArray('payload.shares', (payload as SharesPayload).shares);
    if (!participants.has(this.id)) this.fail(new RelayInconsistentError('this agent is missing from the participants'));
    for (const p of participants) {
      if (!this.peers.has(p)) this.fail(new RelayInconsistentError(`participant ${p} never advertised keys`));
    }
    const expected = ctx.graph.neighbours(this.id).filter((v) => participants.has(v));
    const held = new Map<string, HeldShares>();
    for (const [i, entry] of incoming.entries()) {
      const share = expectRecord(`payload.shares[${i}]`, entry);
      const from = expectString(`payload.shares[${i}].peer`, share.peer);
      const nonce = expectBytes(`payload.shares[${i}].nonce`, share.nonce);
      const ciphertext = expectBytes(`payload.shares[${i}].ciphertext`, share.ciphertext);
      if (!expected.includes(from) || held.has(from)) {
        this.fail(new RelayInconsistentError(`unexpected or repeated shares from ${from}`));
      }
      const key = this.boxKeys.get(from);
      if (key === undefined) throw new InternalError(`no box key for neighbour ${from}`);
      const opened = boxOpen(ciphertext, nonce, key);
      if (opened === null) this.fail(new DecryptError(from, this.id));
      const plain = expectRecord('share plaintext', decodeCanonical(opened, 'share plaintext'));
      if (plain.protocol !== PROTOCOL_ID || plain.session !== ctx.session || plain.from !== from || plain.to !== this.id) {
        this.fail(new RelayInconsistentError(`shares relayed as from ${from} were made for another session or pair`));
      }
      held.set(from, {
        seedShare: expectBytes('seedShare', plain.seedShare, SHARE_LENGTH),
        keyShare: expectBytes('keyShare', plain.keyShare, SHARE_LENGTH),
      });
    }
    const missing = expected.filter((v) => !held.has(v));
    if (missing.length > 0) {
      // Such a neighbour would mask with us while we do not mask with it: the sum would break.
      this.fail(new RelayInconsistentError(`participants ${missing.join(', ')} are neighbours but their shares were withheld`));
    }
    this.participants = participants;
    this.held = held;
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
    if (input === undefined || seed === undefined) throw new InternalError('masking without input or seed');
    const nonce = maskNonce(ctx.session);
    // `input` is our private copy: mask it in place and let go of it.
    const masked = input;
    this.input = undefined;
    const terms: MaskTerm[] = [{ key: selfMaskKey(seed, ctx.session, this.id), nonce, sign: 1 }];
    for (const peer of this.held.keys()) {
      const keys = this.peers.get(peer) as PeerKeys;
      const key = pairwiseMaskKey(ctx.session, this.id, ctx.mask.publicKey, ctx.mask.secretKey, peer, keys.maskKey);
      terms.push({ key, nonce, sign: pairwiseSign(this.id, peer) });
    }
    applyMasks(masked, terms, ctx.config.prg);
    for (const term of terms) term.key.fill(0);
    // The seed now lives only in the neighbours' shares; drop our plaintext copy.
    seed.fill(0);
    this.stateValue = 'awaiting-unmask';
    return signEnvelope(
      { session: ctx.session, stage: 'masked-input', sender: this.id, recipients: [this.serverId], payload: { masked } },
      this.identity.secretKey,
    );
  }

  // ---- stage 3: unmask -> revealed shares ---------------------------------------------------

  private onUnmask(payload: Record<string, unknown>, recipients: readonly string[]): AgentMessage[] {
    const ctx = this.requireContext();
    const survivors = expectIdList('payload.survivors', (payload as UnmaskPayload).survivors);
    const dropouts = expectIdList('payload.dropouts', (payload as UnmaskPayload).dropouts);
    const digest = canonicalDigest({ survivors, dropouts });
    if (this.unmaskAnswer !== undefined) {
      if (bytesEqual(this.unmaskAnswer.digest, digest)) return this.unmaskAnswer.messages;
      this.fail(new UnmaskConflictError('the coordinator already announced a different survivor set'));
    }
    const survivorSet = new Set(survivors);
    const both = dropouts.filter((d) => survivorSet.has(d));
    if (both.length > 0) {
      this.fail(
        new InconsistentAnnouncementError(
          `${both.join(', ')} announced both as survivor and as dropout (that would reveal both of its secrets)`,
        ),
      );
    }
    const participants = this.participants ?? new Set<string>();
    const announced = [...survivors, ...dropouts];
    const unknown = announced.filter((a) => !participants.has(a));
    const omitted = [...participants].filter((p) => !survivorSet.has(p) && !dropouts.includes(p));
    if (unknown.length > 0 || omitted.length > 0) {
      this.fail(
        new InconsistentAnnouncementError(
          `survivors and dropouts must partition the ${participants.size} participants; unknown: [${unknown.join(', ')}], omitted: [${omitted.join(', ')}]`,
        ),
      );
    }
    if (!survivorSet.has(this.id)) {
      this.fail(new InconsistentAnnouncementError('this agent sent its masked input but is announced as a dropout'));
    }
    if (recipients.length !== survivors.length || !recipients.every((r) => survivorSet.has(r))) {
      this.fail(new InconsistentAnnouncementError('the announcement is addressed to a different set than its survivors'));
    }
    if (survivors.length < ctx.params.threshold) {
      this.fail(new InconsistentAnnouncementError(`${survivors.length} survivors is below the threshold ${ctx.params.threshold}`));
    }
    const seedShares: RevealedShare[] = [];
    const keyShares: RevealedShare[] = [];
    for (const [owner, shares] of this.held) {
      const kind = survivorSet.has(owner) ? 'seed' : 'key';
      const before = this.revealed.get(owner);
      // Defence in depth: the partition check above already prevents this.
      if (before !== undefined && before !== kind) {
        this.fail(new UnmaskConflictError(`asked for both shares of ${owner}`));
      }
      this.revealed.set(owner, kind);
      if (kind === 'seed') seedShares.push({ owner, share: shares.seedShare });
      else keyShares.push({ owner, share: shares.keyShare });
    }
    const messages: AgentMessage[] = [
      signEnvelope(
        {
          session: ctx.session,
          stage: 'unmask-response',
          sender: this.id,
          recipients: [this.serverId],
          payload: { seedShares, keyShares },
        },
        this.identity.secretKey,
      ),
    ];
    this.unmaskAnswer = { digest, messages };
    this.stateValue = 'done';
    this.context?.mask.secretKey.fill(0);
    this.context?.encryption.secretKey.fill(0);
    return messages;
  }

  private requireContext(): SessionContext {
    if (this.context === undefined) throw new InternalError('no session context');
    return this.context;
  }
}
