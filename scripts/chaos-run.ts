// The chaos harness's orchestrator: forks one coordinator process and a few agent-host
// processes on loopback, injects the seeded faults of chaos-plan.ts (agents leaving at each
// secure-aggregation stage and coming back, slow links, stragglers, cut uploads; the
// coordinator SIGKILLed mid-unmask, mid-checkpoint and at random moments, then restarted on the
// same state and port), samples the coordinator's RSS and CPU from /proc, and at the end checks
// the invariants (chaos-invariants.ts) over the coordinator's database and checkpoints.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileModelStore, StateDb, type CoordinatorConfig } from '@fedclr/coordinator';
import { chaosModel, type AgentSpec } from './chaos-model.js';
import { checkInvariants, type CheckpointFacts, type InvariantResult, type RoundFacts } from './chaos-invariants.js';
import { inFraction, killPlan, type KillKind, type KillPlan } from './chaos-plan.js';
import type { ChaosHostArgs, HostedAgent, HostReport } from './chaos-agents.js';
import type { ChaosCoordinatorArgs } from './chaos-coordinator.js';
import { freePort } from './free-port.js';

export interface ChaosOptions {
  readonly agents: number;
  /** Agents per round (default: all of them). */
  readonly cohort: number;
  /** Fraction of each cohort leaving the round at a random secure-aggregation stage. */
  readonly dropout: number;
  readonly kills: number;
  readonly rounds: number;
  readonly seed: number;
  readonly parameters: number;
  readonly agentsPerHost: number;
  /** Simulated training time of a normal agent. */
  readonly trainMs: number;
  /** Fraction of agents that are stragglers, and how much slower they train. */
  readonly stragglers: number;
  readonly stragglerFactor: number;
  /** Coordinator's grace time after the quorum (undefined: wait for every agent or the deadline). */
  readonly stragglerGraceMs?: number;
  /** Fraction of agents with a slow link, and its added latency per message. */
  readonly slow: number;
  readonly latencyMs: number;
  readonly deadlineMs: number;
  /** Secure aggregation's advertise / share-keys stage deadline (their cost grows with the neighbour count). */
  readonly stageTimeoutMs: number;
  /** The dropout fraction SecAgg+ is configured to tolerate (its threshold and neighbour graph follow). */
  readonly tolerate: number;
  readonly quorum: number;
  readonly maxRssMiB: number;
  readonly timeoutMs: number;
  /** Keep the run's directory (state, checkpoints) instead of deleting it. */
  readonly keep: boolean;
}

export const CHAOS_DEFAULTS: ChaosOptions = {
  agents: 30,
  cohort: 0,
  dropout: 0.3,
  kills: 1,
  rounds: 3,
  seed: 1,
  parameters: 1000,
  agentsPerHost: 50,
  trainMs: 300,
  stragglers: 0,
  stragglerFactor: 10,
  slow: 0.1,
  latencyMs: 100,
  deadlineMs: 20_000,
  stageTimeoutMs: 5000,
  tolerate: 0.45,
  quorum: 0.5,
  maxRssMiB: 1024,
  timeoutMs: 600_000,
  keep: false,
};

const COORDINATOR = fileURLToPath(new URL('./chaos-coordinator.js', import.meta.url));
const HOST = fileURLToPath(new URL('./chaos-agents.js', import.meta.url));
const SCALE = 0.001;
const CLIP = 0.1;
const MAX_WEIGHT = 10_000;
const CHECKPOINT_HOLD_MS = 400;
const UNMASK_HOLD_MS = 1500;
const RANDOM_WINDOW_MS = 3000;

export interface KillRecord {
  readonly kind: KillKind;
  readonly roundId: number;
  readonly atMs: number;
  readonly restartMs: number;
  /** From the restart until every agent was welcomed again. */
  rejoinMs?: number;
}

export interface RoundTiming {
  readonly roundId: number;
  readonly status: string;
  readonly durationMs: number;
  readonly cohort: number;
  readonly included: number;
  /** Per secure-aggregation stage: ms from round start until the last agent sent it (agents' view). */
  readonly stageMs: Record<string, number>;
}

export interface ChaosSummary {
  readonly invariantsHeld: boolean;
  readonly invariants: readonly InvariantResult[];
  readonly options: ChaosOptions;
  readonly completedRounds: number;
  readonly roundsStarted: number;
  readonly failedRounds: { roundId: number; status: string; reason: string }[];
  readonly kills: KillRecord[];
  readonly drops: Record<string, number>;
  /** Agents' disconnects by socket.io reason (the harness's own cuts included). */
  readonly disconnects: Record<string, number>;
  readonly rounds: RoundTiming[];
  readonly meanCompletedRoundMs: number;
  readonly coordinator: { peakRssMiB: number; cpuSeconds: number; cpuPerWallSecond: number };
  readonly maxAggregateError: number;
  readonly agentExits: Record<string, number>;
  readonly wallMs: number;
  readonly dir?: string;
}

/** RSS (bytes) and CPU (user + system seconds) of a process, from /proc (Linux). */
function procStats(pid: number): { rss: number; cpu: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime 15, rss (pages) 24
    const ticks = Number(fields[11]) + Number(fields[12]);
    const rssPages = Number(fields[21]);
    return { rss: rssPages * 4096, cpu: ticks / 100 };
  } catch {
    return undefined; // the process is gone (killed): its last sample stands
  }
}

function forkJson(script: string, arg: unknown): ChildProcess {
  return fork(script, [JSON.stringify(arg)], {
    // The children's stdout goes to our stderr: our stdout carries only the JSON summary (a
    // child's log line there, e.g. pino's default destination, would corrupt it).
    stdio: ['ignore', 2, 'inherit', 'ipc'],
    env: { ...process.env, FEDCLR_LOG_LEVEL: process.env['FEDCLR_LOG_LEVEL'] ?? 'error' },
  });
}

export async function runChaos(input: Partial<ChaosOptions> = {}): Promise<ChaosSummary> {
  const o: ChaosOptions = { ...CHAOS_DEFAULTS, ...input };
  const cohort = o.cohort > 0 ? Math.min(o.cohort, o.agents) : o.agents;
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'fedclr-chaos-'));
  const stateDir = join(dir, 'coordinator');
  const port = await freePort();
  const config: CoordinatorConfig = {
    stateDir,
    port,
    host: '127.0.0.1',
    rounds: o.rounds,
    minCohort: Math.max(2, Math.ceil(cohort * 0.6)),
    maxCohort: cohort,
    firstRoundAgents: o.agents,
    // Agents that dropped reconnect within about a second: wait a little for them.
    cohortWaitMs: 1500,
    deadlineMs: o.deadlineMs,
    deadlineGraceMs: 500,
    aggregationDeadlineMs: Math.max(10_000, o.stageTimeoutMs),
    quorum: { fraction: o.quorum, minCount: 2 },
    ...(o.stragglerGraceMs === undefined ? {} : { stragglerGraceMs: o.stragglerGraceMs }),
    retryDelayMs: 200,
    keepLastK: o.rounds * 4 + 10,
    seed: o.seed,
    aggregation: 'secure',
    secagg: { clip: CLIP, maxWeight: MAX_WEIGHT, dropoutFraction: o.tolerate, corruptFraction: 0, stageTimeoutMs: o.stageTimeoutMs },
    enrolment: { mode: 'open' },
    maxAgents: o.agents + 16,
    connections: { maxPending: Math.max(256, o.agents + 16), maxPendingPerIp: Math.max(32, o.agents + 16), maxPerIp: Math.max(1024, 2 * o.agents + 16) },
    handshakeTimeoutMs: 60_000,
    heartbeatIntervalMs: 10_000,
    // Fifty agents share one host process's event loop: a long secure-aggregation stage must not
    // read as a dead link (socket.io's 20 s default did, at 300 agents on a loaded machine).
    pingTimeoutMs: 120_000,
    logLevel: 'error',
    // SIGTERM (the harness's own timeout) aborts and records the running round before exiting.
    handleSignals: true,
  };
  const coordinatorArgs: ChaosCoordinatorArgs = { config, parameters: o.parameters, checkpointHoldMs: CHECKPOINT_HOLD_MS };

  const specs = new Map<string, AgentSpec>();
  const hosted: HostedAgent[] = [];
  for (let i = 0; i < o.agents; i++) {
    const id = `chaos-${String(i).padStart(4, '0')}`;
    const spec = { id, seed: i + 1, exampleCount: 20 + ((i * 37) % 200) };
    specs.set(id, spec);
    const straggler = inFraction(o.seed, 'straggler', id, o.stragglers);
    hosted.push({ ...spec, trainMs: straggler ? o.trainMs * o.stragglerFactor : o.trainMs, latencyMs: inFraction(o.seed, 'slow', id, o.slow) ? o.latencyMs : 0 });
  }

  // ---- observations --------------------------------------------------------------------------
  const welcomes = new Map<string, number[]>();
  const uploaded = new Map<number, Set<string>>();
  const stageLast = new Map<number, Map<string, number>>();
  const roundStart = new Map<number, { t: number; cohort: number }>();
  const drops: Record<string, number> = {};
  const agentExits: Record<string, number> = {};
  const disconnects: Record<string, number> = {};
  const restarts: number[] = [];
  const kills: KillRecord[] = [];
  let peakRss = 0;
  let cpuDone = 0;
  let cpuCurrent = 0;
  let roundsStarted = 0;
  let completed = 0;
  let finished = false;

  const plan: KillPlan[] = killPlan(o.seed, o.kills, o.rounds);
  let armed: KillPlan | undefined;
  let randomTimer: NodeJS.Timeout | undefined;
  let killing = false;

  let coordinator!: ChildProcess;
  let listeningResolve: ((m: Record<string, unknown>) => void) | undefined;
  let finishedResolve!: () => void;
  const finishedP = new Promise<void>((resolve) => (finishedResolve = resolve));
  const hosts: ChildProcess[] = [];

  const arm = (): void => {
    if (armed !== undefined || killing) return;
    const next = plan[kills.length];
    if (next !== undefined && completed >= next.afterCompleted) armed = next;
  };

  const kill = async (kind: KillKind, roundId: number): Promise<void> => {
    if (killing || finished) return;
    killing = true;
    armed = undefined;
    if (randomTimer !== undefined) clearTimeout(randomTimer);
    const atMs = Date.now() - t0;
    const exited = new Promise<void>((resolve) => coordinator.once('exit', () => resolve()));
    coordinator.kill('SIGKILL');
    await exited;
    cpuDone += cpuCurrent;
    cpuCurrent = 0;
    await start();
    const restartAt = Date.now();
    restarts.push(restartAt);
    kills.push({ kind, roundId, atMs, restartMs: restartAt - t0 });
    killing = false;
  };

  const onCoordinatorMessage = (raw: unknown): void => {
    const m = raw as Record<string, unknown>;
    const roundId = Number(m['roundId']);
    switch (m['event']) {
      case 'listening':
        listeningResolve?.(m);
        return;
      case 'round-started': {
        roundsStarted++;
        roundStart.set(roundId, { t: Number(m['t']), cohort: Number(m['cohort']) });
        const a = armed;
        if (a?.kind === 'unmask') for (const h of hosts) h.send({ cmd: 'hold-unmask', roundId, ms: UNMASK_HOLD_MS });
        if (a?.kind === 'random') randomTimer = setTimeout(() => void kill('random', roundId), Math.round(a.at * RANDOM_WINDOW_MS));
        return;
      }
      case 'checkpoint-write':
        if (armed?.kind === 'checkpoint') void kill('checkpoint', roundId);
        return;
      case 'round-completed':
        completed++;
        arm();
        return;
      case 'finished':
        finished = true;
        finishedResolve();
        return;
      default:
        return;
    }
  };

  const start = (): Promise<Record<string, unknown>> => {
    coordinator = forkJson(COORDINATOR, coordinatorArgs);
    coordinator.on('message', onCoordinatorMessage);
    return new Promise((resolve) => (listeningResolve = resolve));
  };

  const onHostMessage = (raw: unknown): void => {
    const items = (raw as { items?: HostReport[] }).items ?? [];
    for (const it of items) {
      switch (it[0]) {
        case 'welcome': {
          const list = welcomes.get(it[1]) ?? [];
          list.push(it[2]);
          welcomes.set(it[1], list);
          break;
        }
        case 'sent': {
          const [, id, roundId, stage, t] = it;
          const last = stageLast.get(roundId) ?? new Map<string, number>();
          last.set(stage, Math.max(last.get(stage) ?? 0, t));
          stageLast.set(roundId, last);
          if (stage === 'masked-input') {
            const s = uploaded.get(roundId) ?? new Set<string>();
            s.add(id);
            uploaded.set(roundId, s);
          }
          // The first unmask response of a held round went out: the coordinator is mid-unmask.
          if (stage === 'unmask-response' && armed?.kind === 'unmask') void kill('unmask', roundId);
          break;
        }
        case 'dropped':
          drops[it[3]] = (drops[it[3]] ?? 0) + 1;
          break;
        case 'disconnected':
          disconnects[it[2]] = (disconnects[it[2]] ?? 0) + 1;
          break;
        case 'exit':
          agentExits[it[2]] = (agentExits[it[2]] ?? 0) + 1;
          break;
        default:
          break;
      }
    }
  };

  const sampler = setInterval(() => {
    const s = coordinator.pid === undefined || coordinator.exitCode !== null || coordinator.signalCode !== null ? undefined : procStats(coordinator.pid);
    if (s === undefined) return;
    peakRss = Math.max(peakRss, s.rss);
    cpuCurrent = s.cpu;
  }, 250);

  let timedOut = false;
  const listening = await start();
  arm();
  const hostExits: Promise<void>[] = [];
  for (let i = 0; i < hosted.length; i += o.agentsPerHost) {
    const args: ChaosHostArgs = { url: `http://127.0.0.1:${port}`, coordinatorKey: String(listening['publicKey']), dir: join(dir, 'agents'), seed: o.seed, dropout: o.dropout, scale: SCALE, agents: hosted.slice(i, i + o.agentsPerHost) };
    const h = forkJson(HOST, args);
    h.on('message', onHostMessage);
    hosts.push(h);
    hostExits.push(new Promise((resolve) => h.once('exit', () => resolve())));
  }
  const deadline = new Promise<void>((resolve) => setTimeout(() => {
    timedOut = true;
    resolve();
  }, o.timeoutMs).unref());
  await Promise.race([finishedP, deadline]);
  await Promise.race([Promise.all(hostExits), new Promise((resolve) => setTimeout(resolve, 15_000).unref())]);
  clearInterval(sampler);
  if (randomTimer !== undefined) clearTimeout(randomTimer);
  for (const h of hosts) if (h.exitCode === null) h.kill('SIGKILL');
  if (coordinator.exitCode === null && coordinator.signalCode === null) {
    const exited = new Promise<void>((resolve) => coordinator.once('exit', () => resolve()));
    coordinator.kill('SIGTERM');
    const force = setTimeout(() => coordinator.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(force);
  }
  cpuDone += cpuCurrent;
  const endedAt = Date.now();

  // ---- what the run left on disk --------------------------------------------------------------
  const db = new StateDb(join(stateDir, 'coordinator.db'));
  const rows = db.listRounds(100_000, 0).items;
  const rounds: RoundFacts[] = rows.map((r) => ({
    id: r.id,
    status: r.status,
    baseModelVersion: r.baseModelVersion,
    modelVersion: r.modelVersion,
    completedRounds: r.completedRounds,
    reason: r.reason,
    checkpoint: r.checkpoint,
    metrics: r.metrics,
    included: db.participants(r.id).filter((p) => p.status === 'included').map((p) => p.agentId),
  }));
  db.close();
  const store = new FileModelStore({ dir: join(stateDir, 'checkpoints') });
  const checkpoints = new Map<number, CheckpointFacts>();
  for (const id of await store.list()) {
    try {
      const cp = await store.load(id);
      if (cp !== undefined) checkpoints.set(id, { modelVersion: cp.modelVersion, weights: cp.weights });
    } catch (err) {
      checkpoints.set(id, { error: (err as Error).message });
    }
  }
  const model = chaosModel(o.parameters);
  const { invariants, maxAggregateError } = checkInvariants({
    targetRounds: o.rounds,
    manifest: model.manifest,
    initialWeights: model.weights,
    rounds,
    checkpoints,
    agents: specs,
    scale: SCALE,
    maxWeight: MAX_WEIGHT,
    clip: CLIP,
    uploaded,
    restarts,
    welcomes,
    endedAt,
    peakRssBytes: peakRss,
    maxRssBytes: o.maxRssMiB * 2 ** 20,
  });
  if (timedOut) invariants.push({ name: 'finished-in-time', held: false, detail: `the run did not finish within ${o.timeoutMs} ms` });
  if (kills.length < o.kills) invariants.push({ name: 'kills-injected', held: false, detail: `${kills.length} of ${o.kills} coordinator kills happened` });
  for (const k of kills) {
    const at = t0 + k.restartMs;
    const all = [...specs.keys()].map((id) => (welcomes.get(id) ?? []).find((w) => w >= at));
    if (all.every((w) => w !== undefined)) k.rejoinMs = Math.max(...(all as number[])) - at;
  }

  const timings: RoundTiming[] = rows
    .map((r) => {
      const start = roundStart.get(r.id);
      const last = stageLast.get(r.id) ?? new Map<string, number>();
      const stageMs: Record<string, number> = {};
      for (const [stage, t] of last) if (start !== undefined) stageMs[stage] = t - start.t;
      return { roundId: r.id, status: r.status, durationMs: r.durationMs ?? 0, cohort: r.cohortSize, included: r.included ?? 0, stageMs };
    })
    .sort((a, b) => a.roundId - b.roundId);
  const done = timings.filter((t) => t.status === 'completed');
  const wallMs = endedAt - t0;
  const summary: ChaosSummary = {
    invariantsHeld: invariants.every((i) => i.held),
    invariants,
    options: o,
    completedRounds: done.length,
    roundsStarted,
    failedRounds: rows.filter((r) => r.status !== 'completed').map((r) => ({ roundId: r.id, status: r.status, reason: r.reason ?? '' })),
    kills,
    drops,
    disconnects,
    rounds: timings,
    meanCompletedRoundMs: done.length === 0 ? 0 : Math.round(done.reduce((a, t) => a + t.durationMs, 0) / done.length),
    coordinator: { peakRssMiB: Math.round(peakRss / 2 ** 20), cpuSeconds: +cpuDone.toFixed(2), cpuPerWallSecond: +(cpuDone / (wallMs / 1000)).toFixed(3) },
    maxAggregateError,
    agentExits,
    wallMs,
    ...(o.keep ? { dir } : {}),
  };
  if (!o.keep) rmSync(dir, { recursive: true, force: true });
  return summary;
}
