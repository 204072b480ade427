// Secure-aggregation benchmark: runs the whole SecAgg+ protocol in process (agent and
// coordinator objects, no sockets) and prints one JSON line per configuration.
//
//   node scripts/dist/bench-secagg.js                      all: n in 10,50,100 x d in 1e5,1e6 x dropout 0,0.1
//   node scripts/dist/bench-secagg.js --n 100 --d 1000000 --dropout 0.1
//   node scripts/dist/bench-secagg.js --prg-only           PRG throughput per cipher (the README numbers)
//
// Flags (comma lists allowed): --n, --d, --dropout (actual fraction, dropped after sharing
// keys, which is the costliest case for unmasking), --tolerated (dropout fraction the
// parameters tolerate, default max(0.1, dropout)), --corrupt (default 0.1), --prg
// (aes-256-ctr | chacha20 | xsalsa20), --neighbours, --prg-only.
// Timings: wall-clock ms (agentMs, coordinatorMs) and process CPU ms (agentCpuMs,
// coordinatorCpuMs; user + system, all threads), the latter robust when the machine is shared.
// Agents run one after another on one thread, so "per agent" is what one device would spend.
// Agent stages: keys (setup), shares (keys: Shamir + encryption), shareCheck (shares: decrypt
// and verify), masking (participants + setInput), consistency (check: verify the neighbours'
// maskedWith signatures, sign the view), unmask (verify consistency signatures, reveal).
// Coordinator stages: accept (every call that did not close the stage) and close (the call that
// did: last answer or deadline). consistencyStage sums what the consistency round costs: agent
// check + unmask handling, coordinator check building (masked-input close), consistency
// signature checks and unmask building, and the bytes it adds per agent.
import { parseArgs } from 'node:util';
import {
  DEFAULT_PRG,
  PRG_ALGORITHMS,
  SecAggAgent,
  SecAggServer,
  addPrg,
  deriveFixedPoint,
  encodeFixedPoint,
  generateSigningKeyPair,
  seededRandomWords,
  canonicalLength,
  runInProcess,
  type MaskedInputMessage,
  type PrgAlgorithm,
  type SecAggMessage,
  type ServerStage,
  type TimingEvent,
  type UnmaskMessage,
} from '@fedclr/secagg';
import { randomBytes } from 'node:crypto';

const { values: flags } = parseArgs({
  options: {
    n: { type: 'string', default: '10,50,100' },
    d: { type: 'string', default: '100000,1000000' },
    dropout: { type: 'string', default: '0,0.1' },
    tolerated: { type: 'string' },
    corrupt: { type: 'string', default: '0.1' },
    prg: { type: 'string', default: DEFAULT_PRG },
    neighbours: { type: 'string' },
    'prg-only': { type: 'boolean', default: false },
  },
  strict: true,
});

const list = (value: string): number[] => value.split(',').map((v) => Number(v.trim()));

function prgBench(): void {
  // Interleaved rounds and medians: the machine is shared, single timings are noisy.
  const words = 1_000_000;
  const acc = new Uint32Array(words);
  const key = new Uint8Array(randomBytes(32));
  const nonce = new Uint8Array(24);
  const samples = new Map<PrgAlgorithm, number[]>(PRG_ALGORITHMS.map((a) => [a, []]));
  for (const algorithm of PRG_ALGORITHMS) for (let i = 0; i < 3; i++) addPrg(acc, key, nonce, 1, algorithm);
  for (let r = 0; r < 15; r++) {
    for (const algorithm of PRG_ALGORITHMS) {
      const start = performance.now();
      addPrg(acc, key, nonce, 1, algorithm);
      samples.get(algorithm)?.push(performance.now() - start);
    }
  }
  for (const [algorithm, times] of samples) {
    const sorted = [...times].sort((x, y) => x - y);
    const median = sorted[Math.floor(sorted.length / 2)] as number;
    console.log(
      JSON.stringify({
        bench: 'secagg-prg',
        prg: algorithm,
        words,
        msPerMaskMedian: round(median),
        msPerMaskMin: round(sorted[0] as number),
        mbPerSecondMedian: round((4 * words) / 1e6 / (median / 1000)),
      }),
    );
  }
}

const round = (x: number): number => Math.round(x * 100) / 100;

interface Stats {
  mean: number;
  max: number;
}

function stats(values: readonly number[]): Stats {
  if (values.length === 0) return { mean: 0, max: 0 };
  return { mean: round(values.reduce((a, b) => a + b, 0) / values.length), max: round(Math.max(...values)) };
}

function runConfig(n: number, d: number, dropout: number, tolerated: number, corrupt: number, prg: PrgAlgorithm): void {
  const ids = Array.from({ length: n }, (_, i) => `agent-${String(i).padStart(3, '0')}`);
  const identities = new Map(ids.map((id) => [id, generateSigningKeyPair()]));
  const serverIdentity = generateSigningKeyPair();
  const encoding = deriveFixedPoint({ dimension: d, clip: 0.05, cohortSize: n, maxWeight: 10000 });
  const server = new SecAggServer({
    session: `bench/n${n}/d${d}/drop${dropout}`,
    identity: serverIdentity,
    enrolled: new Map([...identities].map(([id, pair]) => [id, pair.publicKey])),
    cohort: ids,
    dropoutFraction: tolerated,
    corruptFraction: corrupt,
    encoding,
    prg,
    ...(flags.neighbours !== undefined ? { neighbours: Number(flags.neighbours) } : {}),
  });
  const agents = new Map(
    ids.map((id) => [
      id,
      new SecAggAgent({
        id,
        identity: identities.get(id) as ReturnType<typeof generateSigningKeyPair>,
        serverPublicKey: serverIdentity.publicKey,
      }),
    ]),
  );
  const dropCount = Math.floor(dropout * n);
  // Spread dropouts over the ring; they share keys, then vanish before the masked input.
  const dropped = ids.filter((_, i) => i % Math.max(1, Math.floor(n / Math.max(1, dropCount))) === 0).slice(0, dropCount);
  const droppedSet = new Set(dropped);

  const expected = new Uint32Array(encoding.length);
  const encodeMs: number[] = [];
  const update = new Float32Array(d);
  const input = (id: string): Uint32Array => {
    // A synthetic update; a fresh one per agent would cost memory, the protocol does not care.
    const words = seededRandomWords(new Uint8Array(32).fill(ids.indexOf(id) + 1));
    const raw = new Uint32Array(d);
    words(raw);
    for (let i = 0; i < d; i++) update[i] = ((raw[i] as number) / 2 ** 32 - 0.5) * 0.12;
    const start = performance.now();
    const vector = encodeFixedPoint(update, 1 + (ids.indexOf(id) % 5000), encoding, seededRandomWords(new Uint8Array(randomBytes(32))));
    encodeMs.push(performance.now() - start);
    if (!droppedSet.has(id)) for (let i = 0; i < vector.length; i++) expected[i] = ((expected[i] as number) + (vector[i] as number)) >>> 0;
    return vector;
  };

  type AgentTimes = { keys: number; shares: number; shareCheck: number; masking: number; consistency: number; unmask: number };
  const zero = (): AgentTimes => ({ keys: 0, shares: 0, shareCheck: 0, masking: 0, consistency: 0, unmask: 0 });
  // Agent cost per stage, keyed by the coordinator message handled (setInput counts as masking):
  // keys = setup (key pairs, advertise), shares = keys (Shamir + encrypt), shareCheck = shares
  // (decrypt and verify the neighbours' shares), masking = participants + input, consistency =
  // check (verify the neighbours' maskedWith signatures, sign the view), unmask = unmask (verify
  // the neighbours' consistency signatures, reveal).
  const AGENT_FIELD: Partial<Record<TimingEvent['stage'], keyof AgentTimes>> = {
    setup: 'keys',
    keys: 'shares',
    shares: 'shareCheck',
    participants: 'masking',
    input: 'masking',
    check: 'consistency',
    unmask: 'unmask',
  };
  const agentWall = new Map<string, AgentTimes>();
  const agentCpu = new Map<string, AgentTimes>();
  // Coordinator cost per stage: `accept` is every call that did not close the stage, `close` the
  // call that did (the last answer or the deadline; it includes accepting that last answer).
  const coordWall = new Map<ServerStage, { accept: number; close: number }>();
  const coordCpu = new Map<ServerStage, { accept: number; close: number }>();
  const onTiming = (e: TimingEvent): void => {
    if (e.party === 'server') {
      const stage = e.serverStage as ServerStage;
      const closed = server.stage !== stage;
      for (const [map, ms] of [[coordWall, e.ms], [coordCpu, e.cpuMs]] as const) {
        const entry = map.get(stage) ?? { accept: 0, close: 0 };
        entry[closed ? 'close' : 'accept'] += ms;
        map.set(stage, entry);
      }
      return;
    }
    const field = AGENT_FIELD[e.stage];
    if (field === undefined) return;
    const wall = agentWall.get(e.id) ?? zero();
    const cpu = agentCpu.get(e.id) ?? zero();
    wall[field] += e.ms;
    cpu[field] += e.cpuMs;
    agentWall.set(e.id, wall);
    agentCpu.set(e.id, cpu);
  };
  type Bytes = { total: number; shares: number; masked: number; maskedWith: number; consistency: number };
  const sent = new Map<string, Bytes>();
  type Received = { total: number; check: number; unmaskSignatures: number };
  const received = new Map<string, Received>();
  const onSend = (from: string, message: SecAggMessage, bytes: number): void => {
    if (from === server.serverId) {
      for (const r of message.recipients) {
        const entry = received.get(r) ?? { total: 0, check: 0, unmaskSignatures: 0 };
        entry.total += bytes;
        if (message.stage === 'check') entry.check += bytes;
        if (message.stage === 'unmask') entry.unmaskSignatures += canonicalLength([...(message as UnmaskMessage).payload.signatures]);
        received.set(r, entry);
      }
      return;
    }
    const s = sent.get(from) ?? { total: 0, shares: 0, masked: 0, maskedWith: 0, consistency: 0 };
    s.total += bytes;
    if (message.stage === 'share-keys') s.shares += bytes;
    if (message.stage === 'masked-input') {
      s.masked += bytes;
      s.maskedWith += canonicalLength((message as MaskedInputMessage).payload.maskedWith);
    }
    if (message.stage === 'consistency') s.consistency += bytes;
    sent.set(from, s);
  };

  const wall = performance.now();
  const outcome = runInProcess({
    server,
    agents,
    input,
    inputTiming: 'late',
    dropBefore: { 'masked-input': dropped },
    onTiming,
    onSend,
  });
  const wallMs = performance.now() - wall;
  const status = outcome.status;
  const survivors = ids.filter((id) => !droppedSet.has(id));
  const per = (source: Map<string, AgentTimes>, pick: (a: AgentTimes) => number): Stats =>
    stats(survivors.map((id) => pick(source.get(id) ?? zero())));
  const agentReport = (source: Map<string, AgentTimes>) => ({
    keys: per(source, (a) => a.keys),
    shares: per(source, (a) => a.shares),
    shareCheck: per(source, (a) => a.shareCheck),
    masking: per(source, (a) => a.masking),
    consistency: per(source, (a) => a.consistency),
    unmask: per(source, (a) => a.unmask),
    total: per(source, (a) => a.keys + a.shares + a.shareCheck + a.masking + a.consistency + a.unmask),
  });
  const STAGES: [string, ServerStage][] = [
    ['advertise', 'advertise'],
    ['shareKeys', 'share-keys'],
    ['shareCheck', 'share-check'],
    ['maskedInput', 'masked-input'],
    ['consistency', 'consistency'],
    ['unmask', 'unmask'],
  ];
  const coordinatorReport = (source: Map<ServerStage, { accept: number; close: number }>) => {
    const get = (stage: ServerStage): { accept: number; close: number } => source.get(stage) ?? { accept: 0, close: 0 };
    const sum = (stage: ServerStage): number => get(stage).accept + get(stage).close;
    const routing = STAGES.filter(([, s]) => s !== 'unmask').reduce((acc, [, s]) => acc + sum(s), 0);
    return {
      routing: round(routing),
      unmasking: round(sum('unmask')),
      total: round(routing + sum('unmask')),
      stages: Object.fromEntries(STAGES.map(([name, s]) => [name, { accept: round(get(s).accept), close: round(get(s).close) }])),
    };
  };
  const coordinatorMs = coordinatorReport(coordWall);
  const coordinatorCpuMs = coordinatorReport(coordCpu);
  const mean = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  const sentSurvivors = survivors.map((id) => sent.get(id) ?? { total: 0, shares: 0, masked: 0, maskedWith: 0, consistency: 0 });
  const receivedSurvivors = survivors.map((id) => received.get(id) ?? { total: 0, check: 0, unmaskSignatures: 0 });
  const plain = 4 * d;
  const meanBytes = mean(sentSurvivors.map((s) => s.total));
  const meanShares = mean(sentSurvivors.map((s) => s.shares));
  const meanMasked = mean(sentSurvivors.map((s) => s.masked));
  // What the consistency round adds per agent: the maskedWith signature in the masked input, the
  // check message, the consistency message, and the neighbours' signatures in the unmask message.
  const consistencyBytes = {
    maskedWithSignature: Math.round(mean(sentSurvivors.map((s) => s.maskedWith))),
    checkReceived: Math.round(mean(receivedSurvivors.map((r) => r.check))),
    consistencySent: Math.round(mean(sentSurvivors.map((s) => s.consistency))),
    unmaskSignaturesReceived: Math.round(mean(receivedSurvivors.map((r) => r.unmaskSignatures))),
  };
  const consistencyTotalBytes = Object.values(consistencyBytes).reduce((a, b) => a + b, 0);
  const consistencyCost = (
    agent: ReturnType<typeof agentReport>,
    coordinator: ReturnType<typeof coordinatorReport>,
    source: Map<ServerStage, { accept: number; close: number }>,
  ) => ({
    agent: { check: agent.consistency.mean, unmask: agent.unmask.mean, total: round(agent.consistency.mean + agent.unmask.mean) },
    coordinator: {
      buildCheck: coordinator.stages.maskedInput?.close ?? 0,
      verifySignatures: coordinator.stages.consistency?.accept ?? 0,
      buildUnmask: coordinator.stages.consistency?.close ?? 0,
      total: round((source.get('masked-input')?.close ?? 0) + (source.get('consistency')?.accept ?? 0) + (source.get('consistency')?.close ?? 0)),
    },
  });
  const agentMs = agentReport(agentWall);
  const agentCpuMs = agentReport(agentCpu);
  const wallCost = consistencyCost(agentMs, coordinatorMs, coordWall);
  const cpuCost = consistencyCost(agentCpuMs, coordinatorCpuMs, coordCpu);
  console.log(
    JSON.stringify({
      bench: 'secagg',
      n,
      d,
      dropoutFraction: dropout,
      dropped: dropCount,
      toleratedDropout: tolerated,
      corruptFraction: corrupt,
      graph: server.params.graph,
      k: server.params.neighbours,
      t: server.params.threshold,
      prg,
      status: status.kind,
      ...(status.kind === 'aborted' ? { abort: status.abort.message } : {}),
      exact: status.kind === 'done' ? status.result.sum.every((w, i) => w === expected[i]) : false,
      failedAgents: outcome.failed.size,
      misbehaviour: status.kind === 'done' ? status.result.misbehaviour.length : server.misbehaviour.length,
      agentMs: { ...agentMs, encodeOutsideProtocol: stats(encodeMs) },
      agentCpuMs,
      coordinatorMs,
      coordinatorCpuMs,
      consistencyStage: {
        agentMs: wallCost.agent,
        agentCpuMs: cpuCost.agent,
        coordinatorMs: wallCost.coordinator,
        coordinatorCpuMs: cpuCost.coordinator,
        bytesPerAgent: { ...consistencyBytes, total: consistencyTotalBytes, ratioToPlain: Math.round((consistencyTotalBytes / plain) * 1e6) / 1e6 },
      },
      bytesPerAgent: {
        sent: Math.round(meanBytes),
        maskedInput: Math.round(meanMasked),
        shareKeys: Math.round(meanShares),
        plainFloat32: plain,
        ratioToPlain: round(meanBytes / plain),
        ratioExcludingShares: round((meanBytes - meanShares) / plain),
        received: Math.round(mean(receivedSurvivors.map((r) => r.total))),
      },
      wallMs: round(wallMs),
    }),
  );
}

function main(): void {
  if (flags['prg-only']) {
    prgBench();
    return;
  }
  const prg = flags.prg as PrgAlgorithm;
  if (!PRG_ALGORITHMS.includes(prg)) throw new Error(`--prg must be one of ${PRG_ALGORITHMS.join(', ')}`);
  const corrupt = Number(flags.corrupt);
  for (const n of list(flags.n)) {
    for (const d of list(flags.d)) {
      for (const dropout of list(flags.dropout)) {
        const tolerated = flags.tolerated !== undefined ? Number(flags.tolerated) : Math.max(0.1, dropout);
        runConfig(n, d, dropout, tolerated, corrupt, prg);
      }
    }
  }
}

main();
