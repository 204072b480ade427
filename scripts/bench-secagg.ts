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
  runInProcess,
  type PrgAlgorithm,
  type TimingEvent,
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

async function runConfig(n: number, d: number, dropout: number, tolerated: number, corrupt: number, prg: PrgAlgorithm): Promise<void> {
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

  type AgentTimes = { keys: number; shares: number; masking: number; unmask: number };
  const zero = (): AgentTimes => ({ keys: 0, shares: 0, masking: 0, unmask: 0 });
  const agentWall = new Map<string, AgentTimes>();
  const agentCpu = new Map<string, AgentTimes>();
  const coordinator = { routing: 0, unmasking: 0, routingCpu: 0, unmaskingCpu: 0 };
  const onTiming = (e: TimingEvent): void => {
    if (e.party === 'server') {
      if (e.serverStage === 'unmask') {
        coordinator.unmasking += e.ms;
        coordinator.unmaskingCpu += e.cpuMs;
      } else {
        coordinator.routing += e.ms;
        coordinator.routingCpu += e.cpuMs;
      }
      return;
    }
    const field: keyof AgentTimes | undefined =
      e.stage === 'setup' ? 'keys' : e.stage === 'keys' || e.stage === 'shares' ? 'shares' : e.stage === 'input' ? 'masking' : e.stage === 'unmask' ? 'unmask' : undefined;
    if (field === undefined) return;
    const wall = agentWall.get(e.id) ?? zero();
    const cpu = agentCpu.get(e.id) ?? zero();
    wall[field] += e.ms;
    cpu[field] += e.cpuMs;
    agentWall.set(e.id, wall);
    agentCpu.set(e.id, cpu);
  };
  const sent = new Map<string, { total: number; shares: number; masked: number }>();
  const received = new Map<string, number>();
  const onSend = (from: string, message: { stage: string; recipients: readonly string[] }, bytes: number): void => {
    if (from === server.serverId) {
      for (const r of message.recipients) received.set(r, (received.get(r) ?? 0) + bytes);
      return;
    }
    const s = sent.get(from) ?? { total: 0, shares: 0, masked: 0 };
    s.total += bytes;
    if (message.stage === 'share-keys') s.shares += bytes;
    if (message.stage === 'masked-input') s.masked += bytes;
    sent.set(from, s);
  };

  const wall = performance.now();
  const outcome = await runInProcess({
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
    masking: per(source, (a) => a.masking),
    unmask: per(source, (a) => a.unmask),
    total: per(source, (a) => a.keys + a.shares + a.masking + a.unmask),
  });
  const sentSurvivors = survivors.map((id) => sent.get(id) ?? { total: 0, shares: 0, masked: 0 });
  const plain = 4 * d;
  const meanBytes = sentSurvivors.reduce((acc, s) => acc + s.total, 0) / Math.max(1, sentSurvivors.length);
  const meanShares = sentSurvivors.reduce((acc, s) => acc + s.shares, 0) / Math.max(1, sentSurvivors.length);
  const meanMasked = sentSurvivors.reduce((acc, s) => acc + s.masked, 0) / Math.max(1, sentSurvivors.length);
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
      agentMs: { ...agentReport(agentWall), encodeOutsideProtocol: stats(encodeMs) },
      agentCpuMs: agentReport(agentCpu),
      coordinatorMs: { routing: round(coordinator.routing), unmasking: round(coordinator.unmasking) },
      coordinatorCpuMs: { routing: round(coordinator.routingCpu), unmasking: round(coordinator.unmaskingCpu) },
      bytesPerAgent: {
        sent: Math.round(meanBytes),
        maskedInput: Math.round(meanMasked),
        shareKeys: Math.round(meanShares),
        plainFloat32: plain,
        ratioToPlain: round(meanBytes / plain),
        ratioExcludingShares: round((meanBytes - meanShares) / plain),
        received: Math.round(survivors.reduce((acc, id) => acc + (received.get(id) ?? 0), 0) / Math.max(1, survivors.length)),
      },
      wallMs: round(wallMs),
    }),
  );
}

async function main(): Promise<void> {
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
        await runConfig(n, d, dropout, tolerated, corrupt, prg);
      }
    }
  }
}

await main();
