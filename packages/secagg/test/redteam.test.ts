// Red team: a malicious coordinator (it holds the server's signing key and answers nothing
// honestly) tries to recover one agent's input. Every attack runs twice: against honest agents,
// where it must recover nothing, and against deliberately weakened agents (the rules named in
// `skip` turned off), where the same script must recover the victim's encoded input bit-exactly.
// The second run is what shows the first one can fail.
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  ErrorCodes,
  SecAggAgent,
  applyMasks,
  combineShares,
  maskNonce,
  pairwiseMaskKey,
  pairwiseSign,
  runInProcess,
  selfMaskKey,
  shareStatement,
  signDetached,
  signEnvelope,
  type AgentMessage,
  type AgentOptions,
  type CanonicalValue,
  type MaskTerm,
  type Rule,
  type ServerMessage,
  type ShareKeysPayload,
} from '../src/index.js';
import { deliver, makeFederation, plainSum, runUntil, seededBytes, submit, type Federation } from './helpers.js';

class WeakenedAgent extends SecAggAgent {
  constructor(
    options: AgentOptions,
    private readonly skip: ReadonlySet<Rule>,
  ) {
    super(options);
  }

  protected override enforce(rule: Rule, ok: boolean, details: () => string): void {
    if (this.skip.has(rule)) return;
    super.enforce(rule, ok, details);
  }
}

const ALL_RULES: ReadonlySet<Rule> = new Set([
  'masking-neighbours',
  'participants-subset',
  'partition',
  'survivor-neighbours',
  'owner-neighbours',
  'participants-split',
  'second-view',
  'consistency-signatures',
]);

function weaken(fed: Federation, skip: ReadonlySet<Rule>): void {
  for (const id of fed.ids) fed.agents.set(id, new WeakenedAgent(fed.agentOptions(id), skip));
}

/** The malicious coordinator's signature on anything it likes. */
function forge(fed: Federation, stage: ServerMessage['stage'], to: string, payload: CanonicalValue): ServerMessage {
  return signEnvelope({ session: fed.session, stage, sender: 'coordinator', recipients: [to], payload }, fed.serverIdentity.secretKey) as ServerMessage;
}

interface Loot {
  /** The victim's masked input, as uploaded. */
  masked?: Uint32Array;
  readonly seed: Map<string, Uint8Array[]>;
  readonly key: Map<string, Uint8Array[]>;
  /** Rules honest agents refused by, with how often. */
  readonly refusals: Map<string, number>;
  readonly maskedWith: Map<string, Uint8Array>;
  readonly consistency: Map<string, Uint8Array>;
}

function newLoot(): Loot {
  return { seed: new Map(), key: new Map(), refusals: new Map(), maskedWith: new Map(), consistency: new Map() };
}

/** Delivers one forged message; agent refusals are recorded, not thrown. */
function tryDeliver(fed: Federation, loot: Loot, message: ServerMessage): AgentMessage[] {
  const id = message.recipients[0] as string;
  const agent = fed.agents.get(id) as SecAggAgent;
  try {
    return agent.receive(message);
  } catch (err) {
    const e = err as Error & { code?: string };
    const rule = /rule ([a-z-]+)/.exec(e.message)?.[1] ?? e.code ?? 'unknown';
    loot.refusals.set(rule, (loot.refusals.get(rule) ?? 0) + 1);
    return [];
  }
}

function collect(loot: Loot, victim: string, replies: readonly AgentMessage[]): void {
  for (const m of replies) {
    const p = m.payload as Record<string, unknown>;
    if (m.stage === 'masked-input') {
      loot.maskedWith.set(m.sender, p.maskedWith as Uint8Array);
      if (m.sender === victim) loot.masked = (p.masked as Uint32Array).slice();
    }
    if (m.stage === 'consistency') loot.consistency.set(m.sender, p.signature as Uint8Array);
    if (m.stage === 'unmask-response') {
      for (const kind of ['seed', 'key'] as const) {
        for (const r of p[kind === 'seed' ? 'seedShares' : 'keyShares'] as { owner: string; share: Uint8Array }[]) {
          loot[kind].set(r.owner, [...(loot[kind].get(r.owner) ?? []), r.share]);
        }
      }
    }
  }
}

/**
 * Removes every mask from the victim's masked input with the loot: its self-mask seed and the
 * mask keys of the neighbours it masked with. Undefined when the loot is not enough.
 */
function unmaskVictim(fed: Federation, loot: Loot, victim: string, maskedWith: readonly string[], maskKeys: Map<string, Uint8Array>): Uint32Array | undefined {
  const t = fed.server.params.threshold;
  const seedShares = loot.seed.get(victim) ?? [];
  if (loot.masked === undefined || seedShares.length < t) return undefined;
  const y = loot.masked.slice();
  const nonce = maskNonce(fed.session);
  const terms: MaskTerm[] = [{ key: selfMaskKey(combineShares(seedShares.slice(0, t)), fed.session, victim), nonce, sign: -1 }];
  for (const a of maskedWith) {
    const shares = loot.key.get(a) ?? [];
    if (shares.length < t) return undefined;
    const secret = combineShares(shares.slice(0, t));
    const key = pairwiseMaskKey(fed.session, a, maskKeys.get(a) as Uint8Array, secret, victim, maskKeys.get(victim) as Uint8Array);
    terms.push({ key, nonce, sign: pairwiseSign(victim, a) === 1 ? -1 : 1 });
  }
  applyMasks(y, terms, fed.server.config.prg);
  return y;
}

/** Runs honestly up to the participants stage; returns the honest participants messages and mask keys. */
function setUpToParticipants(fed: Federation): { participants: ServerMessage[]; maskKeys: Map<string, Uint8Array> } {
  const maskKeys = new Map<string, Uint8Array>();
  let messages = fed.server.start();
  while (messages[0]?.stage !== 'participants') {
    const replies = deliver(fed, messages);
    for (const list of replies.values()) {
      for (const m of list) if (m.stage === 'advertise') maskKeys.set(m.sender, (m.payload as { maskKey: Uint8Array }).maskKey);
    }
    messages = submit(fed, replies);
  }
  return { participants: messages, maskKeys };
}

/**
 * The split-view attack: the victim is shown a participant list of itself plus `A` (so it masks
 * with A alone); every other agent w is shown its own view in which A \ {w} dropped, so each
 * reveals the victim's seed share and key shares of A's members.
 */
function splitViewAttack(fed: Federation, victim: string, A: readonly string[]): { loot: Loot; recovered: Uint32Array | undefined } {
  const loot = newLoot();
  const { participants, maskKeys } = setUpToParticipants(fed);
  const all = fed.ids;
  for (const message of participants) {
    const to = message.recipients[0] as string;
    const shown = to === victim ? forge(fed, 'participants', victim, { participants: [victim, ...A].sort() }) : message;
    collect(loot, victim, tryDeliver(fed, loot, shown));
  }
  const others = all.filter((w) => w !== victim);
  const views = new Map(others.map((w) => [w, { dropouts: A.filter((a) => a !== w), survivors: all.filter((x) => x === w || !A.includes(x)) }]));
  for (const w of others) {
    const view = views.get(w) as { dropouts: string[]; survivors: string[] };
    const signatures = fed.server.graph
      .neighbours(w)
      .filter((u) => view.survivors.includes(u) && loot.maskedWith.has(u))
      .map((u) => ({ agent: u, signature: loot.maskedWith.get(u) as Uint8Array }));
    collect(loot, victim, tryDeliver(fed, loot, forge(fed, 'check', w, { ...view, maskedWith: signatures })));
  }
  for (const w of others) {
    const view = views.get(w) as { dropouts: string[]; survivors: string[] };
    const signatures = [...loot.consistency].filter(([u]) => u !== w && fed.server.graph.isNeighbour(u, w)).map(([agent, signature]) => ({ agent, signature }));
    collect(loot, victim, tryDeliver(fed, loot, forge(fed, 'unmask', w, { ...view, signatures })));
  }
  return { loot, recovered: unmaskVictim(fed, loot, victim, A, maskKeys) };
}

for (const n of [4, 7, 10, 20]) {
  test(`split views (n=${n}, complete graph): honest agents refuse and reveal nothing; weakened agents give the victim away`, () => {
    const label = `split-${n}`;
    const honest = makeFederation({ n, label });
    const t = honest.server.params.threshold;
    const victim = honest.ids[0] as string;
    const A = honest.ids.slice(1, 1 + t);
    const attack = splitViewAttack(honest, victim, A);
    assert.equal(attack.recovered, undefined);
    assert.equal(attack.loot.seed.get(victim), undefined, 'no seed share of the victim was revealed');
    assert.ok(attack.loot.refusals.size > 0, 'the honest agents refused, naming a rule');

    const weak = makeFederation({ n, label });
    weaken(weak, ALL_RULES);
    const control = splitViewAttack(weak, victim, A);
    assert.ok(control.recovered !== undefined, 'the attack works without the rules');
    assert.deepEqual(control.recovered, weak.input(victim), 'the weakened victim input is recovered bit-exactly');
  });
}

test('split views: the participants-split rule alone stops it (every other rule off)', () => {
  const label = 'split-one-rule';
  const fed = makeFederation({ n: 10, label });
  const skip = new Set([...ALL_RULES].filter((r) => r !== 'participants-split'));
  weaken(fed, skip);
  const t = fed.server.params.threshold;
  const victim = fed.ids[0] as string;
  const attack = splitViewAttack(fed, victim, fed.ids.slice(1, 1 + t));
  assert.equal(attack.recovered, undefined);
  assert.ok((attack.loot.refusals.get('participants-split') ?? 0) > 0);
});

test('split views: the consistency round alone stops it when the victim is not shown a smaller list', () => {
  // Each agent gets its own survivor set; the victim masked with everyone. Rules left on: the
  // consistency signatures and second view (t neighbours must have signed the same view).
  const label = 'split-consistency';
  const fed = makeFederation({ n: 10, label });
  weaken(fed, new Set([...ALL_RULES].filter((r) => r !== 'consistency-signatures' && r !== 'second-view')));
  const victim = fed.ids[0] as string;
  const loot = newLoot();
  const { participants } = setUpToParticipants(fed);
  for (const m of participants) collect(loot, victim, tryDeliver(fed, loot, m));
  const others = fed.ids.filter((w) => w !== victim);
  // Agent i is told that agent i+1 dropped: n - 1 different views.
  const views = new Map(others.map((w, i) => [w, { survivors: fed.ids.filter((x) => x !== others[(i + 1) % others.length]), dropouts: [others[(i + 1) % others.length] as string] }]));
  for (const w of others) {
    const view = views.get(w) as { survivors: string[]; dropouts: string[] };
    const maskedWith = view.survivors.filter((u) => u !== w).map((u) => ({ agent: u, signature: loot.maskedWith.get(u) as Uint8Array }));
    collect(loot, victim, tryDeliver(fed, loot, forge(fed, 'check', w, { ...view, maskedWith })));
  }
  for (const w of others) {
    const view = views.get(w) as { survivors: string[]; dropouts: string[] };
    const signatures = [...loot.consistency].filter(([u]) => u !== w).map(([agent, signature]) => ({ agent, signature }));
    collect(loot, victim, tryDeliver(fed, loot, forge(fed, 'unmask', w, { ...view, signatures })));
  }
  assert.equal(loot.key.size, 0, 'no mask-key share was revealed');
  assert.equal(loot.seed.size, 0, 'no seed share was revealed');
  assert.equal(loot.refusals.get('consistency-signatures'), others.length);
});

/** Sparse graph: the victim is shown itself plus t - 1 non-neighbours, then one ordinary unmask. */
function sparseAttack(fed: Federation, victim: string): { loot: Loot; recovered: Uint32Array | undefined } {
  const t = fed.server.params.threshold;
  const loot = newLoot();
  const { participants, maskKeys } = setUpToParticipants(fed);
  const strangers = fed.ids.filter((x) => x !== victim && !fed.server.graph.isNeighbour(x, victim)).slice(0, t - 1);
  for (const message of participants) {
    const to = message.recipients[0] as string;
    const shown = to === victim ? forge(fed, 'participants', victim, { participants: [victim, ...strangers].sort() }) : message;
    collect(loot, victim, tryDeliver(fed, loot, shown));
  }
  const view = { survivors: fed.ids, dropouts: [] as string[] };
  for (const w of fed.ids) {
    const maskedWith = fed.server.graph.neighbours(w).filter((u) => loot.maskedWith.has(u)).map((u) => ({ agent: u, signature: loot.maskedWith.get(u) as Uint8Array }));
    collect(loot, victim, tryDeliver(fed, loot, forge(fed, 'check', w, { ...view, maskedWith })));
  }
  for (const w of fed.ids) {
    const signatures = [...loot.consistency].filter(([u]) => fed.server.graph.isNeighbour(u, w)).map(([agent, signature]) => ({ agent, signature }));
    collect(loot, victim, tryDeliver(fed, loot, forge(fed, 'unmask', w, { ...view, signatures })));
  }
  return { loot, recovered: unmaskVictim(fed, loot, victim, [], maskKeys) };
}

test('sparse graph (n=50, k=22, t=14): a victim shown only non-neighbours refuses; weakened, its input is recovered', () => {
  const options = { n: 50, dropoutFraction: 0.1, corruptFraction: 0.1, dimension: 16 };
  const honest = makeFederation({ ...options, label: 'sparse' });
  assert.equal(honest.server.params.neighbours, 22);
  assert.equal(honest.server.params.threshold, 14);
  const victim = honest.ids[7] as string;
  const attack = sparseAttack(honest, victim);
  assert.equal(attack.recovered, undefined);
  assert.equal(attack.loot.masked, undefined, 'the victim never masked');
  assert.ok((attack.loot.refusals.get('masking-neighbours') ?? 0) >= 1);

  // The victim alone weakened: its neighbours still refuse (its masked-with statement differs).
  const half = makeFederation({ ...options, label: 'sparse' });
  half.agents.set(victim, new WeakenedAgent(half.agentOptions(victim), new Set(['masking-neighbours'])));
  const second = sparseAttack(half, victim);
  assert.equal(second.recovered, undefined);
  assert.ok((second.loot.refusals.get('participants-split') ?? 0) >= 1);

  const weak = makeFederation({ ...options, label: 'sparse' });
  weaken(weak, new Set(['masking-neighbours', 'participants-split']));
  const control = sparseAttack(weak, victim);
  assert.deepEqual(control.recovered, weak.input(victim));
});

test('a forged message addressed to one agent is refused by another (re-addressing)', () => {
  const fed = makeFederation({ n: 5, label: 'readdress' });
  const [participants] = [runUntil(fed, 'participants')];
  const first = participants[0] as ServerMessage;
  const other = fed.agents.get(participants[1]?.recipients[0] as string) as SecAggAgent;
  assert.throws(() => other.receive(first), { code: ErrorCodes.MISADDRESSED });
});

/** Replaces every ciphertext of `bad`'s share-keys message with random bytes, re-signed by it. */
function garbageShares(fed: Federation, bad: string, random = seededBytes(`garbage/${bad}`)) {
  return (from: string, message: AgentMessage): AgentMessage | undefined => {
    if (from !== bad || message.stage !== 'share-keys') return undefined;
    const payload = message.payload as unknown as ShareKeysPayload;
    const secretKey = (fed.identities.get(bad) as { secretKey: Uint8Array }).secretKey;
    // A clever liar signs its garbage, so the coordinator accepts it and only the recipients can tell.
    const shares = payload.shares.map((s) => {
      const garbled = { ...s, ciphertext: random(s.ciphertext.length) };
      return { ...garbled, signature: signDetached(shareStatement(fed.session, bad, s.peer, garbled), secretKey) };
    });
    return signEnvelope(
      { session: fed.session, stage: 'share-keys', sender: bad, recipients: ['coordinator'], payload: { ...payload, shares } as unknown as CanonicalValue },
      secretKey,
    ) as AgentMessage;
  };
}

for (const n of [10, 30]) {
  test(`an agent sending garbage shares is convicted by its neighbours' complaints and excluded; the sum of the rest is exact (n=${n})`, () => {
    const fed = makeFederation({ n, label: `garbage-${n}`, dropoutFraction: 0.1 });
    const bad = fed.ids[3] as string;
    const outcome = runInProcess({ server: fed.server, agents: fed.agents, input: (id) => fed.input(id), tamper: garbageShares(fed, bad) });
    assert.equal(outcome.status.kind, 'done', JSON.stringify(outcome.status));
    if (outcome.status.kind !== 'done') return;
    const result = outcome.status.result;
    assert.ok(!result.survivors.includes(bad));
    assert.deepEqual(result.dropouts.shareCheck, [bad]);
    const convictions = result.misbehaviour.filter((m) => m.agent === bad && m.kind === 'bad-share');
    assert.equal(convictions.length, fed.server.graph.neighbours(bad).length, 'every neighbour proved it');
    const rest = fed.ids.filter((id) => id !== bad);
    assert.deepEqual(result.sum, plainSum(rest.map((id) => fed.input(id)), fed.encoding.length));
  });
}

test('a false complaint convicts the complainer, not the accused', () => {
  const fed = makeFederation({ n: 10, label: 'false-complaint' });
  const liar = fed.ids[2] as string;
  const victim = fed.ids[5] as string;
  const tamper = (from: string, message: AgentMessage): AgentMessage | undefined => {
    if (from !== liar || message.stage !== 'share-check') return undefined;
    const complaints = [{ peer: victim, inboxSecret: seededBytes('liar')(32), reason: 'does not decrypt' }];
    return signEnvelope(
      { session: fed.session, stage: 'share-check', sender: liar, recipients: ['coordinator'], payload: { complaints } },
      (fed.identities.get(liar) as { secretKey: Uint8Array }).secretKey,
    ) as AgentMessage;
  };
  const outcome = runInProcess({ server: fed.server, agents: fed.agents, input: (id) => fed.input(id), tamper });
  assert.equal(outcome.status.kind, 'done');
  if (outcome.status.kind !== 'done') return;
  assert.ok(outcome.status.result.survivors.includes(victim));
  assert.ok(!outcome.status.result.survivors.includes(liar));
  assert.deepEqual(outcome.status.result.misbehaviour.map((m) => [m.agent, m.kind]), [[liar, 'false-complaint']]);
});

test('without complaints (the pre-fix behaviour) one garbage-share agent aborts the round: the control', () => {
  // An agent that fails instead of complaining is what the old code did; the router treats a
  // failed agent as silent, so the round loses every neighbour of the bad agent.
  class FailingAgent extends SecAggAgent {
    override receive(message: unknown): AgentMessage[] {
      const out = super.receive(message);
      for (const m of out) {
        const complaints = (m.payload as { complaints?: unknown[] }).complaints;
        if (m.stage === 'share-check' && complaints !== undefined && complaints.length > 0) throw new Error('FEDCLR_SECAGG_DECRYPT_FAILED');
      }
      return out;
    }
  }
  const fed = makeFederation({ n: 10, label: 'garbage-control', dropoutFraction: 0.1 });
  for (const id of fed.ids) fed.agents.set(id, new FailingAgent(fed.agentOptions(id)));
  const bad = fed.ids[3] as string;
  const outcome = runInProcess({
    server: fed.server,
    agents: fed.agents,
    input: (id) => fed.input(id),
    tamper: garbageShares(fed, bad),
    onAgentError: () => undefined,
  });
  assert.equal(outcome.status.kind, 'aborted');
});

test('invented cohort members: an agent with a directory of peer keys refuses them; without one, Sybils beyond the corrupt bound expose it', () => {
  // The coordinator enrols four Sybils (keys it holds) next to one real agent.
  const fed = makeFederation({ n: 5, label: 'sybil', corruptFraction: 0.2 });
  const victim = fed.ids[0] as string;
  const sybils = fed.ids.slice(1);
  const setup = signEnvelope(
    { session: fed.session, stage: 'setup', sender: 'coordinator', recipients: fed.ids, payload: { config: fed.server.config } },
    fed.serverIdentity.secretKey,
  );
  const pinned = new Map([[victim, (fed.identities.get(victim) as { publicKey: Uint8Array }).publicKey]]);
  const careful = new SecAggAgent({ ...fed.agentOptions(victim), directory: (id) => pinned.get(id) });
  assert.throws(() => careful.receive(setup), { code: ErrorCodes.PARAMS_MISMATCH });

  // Control: without a directory the round runs, and the sum minus the Sybils' own inputs (the
  // coordinator chose them) is the victim's input. Secure aggregation cannot help here; only
  // pinned peer keys (or enough agents the coordinator does not control) can.
  const outcome = runInProcess({ server: fed.server, agents: fed.agents, input: (id) => fed.input(id) });
  assert.equal(outcome.status.kind, 'done');
  if (outcome.status.kind !== 'done') return;
  const sybilSum = plainSum(sybils.map((id) => fed.input(id)), fed.encoding.length);
  const recovered = outcome.status.result.sum.map((w, i) => (w - (sybilSum[i] as number)) >>> 0);
  assert.deepEqual(recovered, fed.input(victim));
});
