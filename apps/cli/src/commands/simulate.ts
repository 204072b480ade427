// fedclr simulate: a whole federation on this machine, as real processes on loopback: one
// `fedclr coordinator` and N `fedclr agent`s, each agent over its own partition of Fashion-MNIST
// or of a labeled image folder (--data DIR).
// This process only splits the data (to report it), watches the rounds through the
// coordinator's IPC channel, evaluates the global encoder (linear probe + kNN) and writes a report.
//
// Data: the train split is partitioned among the agents; the test split, which no agent sees,
// scores the linear probe and the kNN. The probe is fitted on the train split's labels (agents
// never get labels), as `fedclr eval` and the literature do, or, with --holdout H, on H labeled
// train images carved out before partitioning that no agent sees. Agents get only the partition
// spec, the seed and their client index; each loads the train split and takes its own share. With
// --data DIR, the folder's images (or those not held out as the test set: --test-data DIR2 or a
// seeded split) are partitioned by their sub-folder labels, and each agent is handed the list of
// its files (simulate/data.ts).
//
// Training slots (--train-slots S, default the number of cores): at most S agents train at the
// same time, each asking this process for a slot over its IPC channel (slots.ts), as if each agent
// had its own machine; N agents training at once on a few cores waste a third of the machine.
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_DEADLINE_FRACTION } from '@fedclr/agent';
import { LR_SCHEDULES } from '@fedclr/coordinator';
import { initialState, recipeModelSpec, type FederatedRecipe } from '@fedclr/contrastive';
import type { PartitionSpec } from '@fedclr/data';
import { initBackend, loadModel } from '@fedclr/tensor';
import { defaultWorkers, fedproxMuOption, intOption, numberOption } from '../common.js';
import { DP_FLAG_OPTIONS, DP_FLAGS_HELP, dpFlags, dpFromFlags } from '../dp-flags.js';
import { SAMPLING_FLAG_OPTIONS, SAMPLING_FLAGS_HELP, samplingFlags, samplingFromFlags } from '../sampling-flags.js';
import { COORDINATOR_EVAL_FLAG_OPTIONS, COORDINATOR_EVAL_FLAGS_HELP, coordinatorEvalFlags, coordinatorEvalFromFlags } from '../coordinator-eval-flags.js';
import { SimulationError, UsageError } from '../errors.js';
import {
  partitionOption,
  type CoordinatorIpcMessage,
  type SimulationDataSpec,
  type StopReason,
} from '../federation.js';
import { folderFlagsHelp, FolderReader, LABELED_FOLDER_OPTIONS, testFractionOption, checkLabeledFolderFlags } from '../folders.js';
import { checkLabelsForLoss, labelsOption, lossLine } from '../labels.js';
import { lossFlags, RECIPE_FLAG_OPTIONS, recipeFlagsHelp } from '../recipe-flags.js';
import { fashionMnistData, folderData, type SimulationData } from '../simulate/data.js';
import { isSlotMessage, SlotSemaphore, unionLength, type SlotIpcMessage } from '../slots.js';
import { coordinatorRecipe } from './coordinator.js';
import { evaluateModel } from '../simulate/evaluation.js';
import { delay, mintEnrolmentTokens, reap, spawnFedclr, tail, type Child } from '../simulate/processes.js';
import { maxMetric, round4, roundRecord, type EvalRecord, type RoundRecord } from '../simulate/records.js';
import { modelChange, privacySummary, timingSummary } from '../simulate/report.js';
import { simulationReportHtml } from '../simulate/report-html.js';

export const simulateHelp = `fedclr simulate [options]
  --dataset fashion-mnist --clients 10 --cohort C     agents per round (default: all of them)
  --data DIR                  a labeled image folder instead (PNG/JPEG, labels from first-level sub-folders, used
                              only to partition and to evaluate); the test set is --test-data DIR2 (mapped by DIR's
                              class names) or --test-fraction 0.2 of each class (seeded by --seed); each agent is
                              given the list of its files (<out>/data/agent-I.files)
  --size 32 --channels 3      with --data: the model's input (images are resized; the recipe's RGB defaults for 3)
${folderFlagsHelp(30)}
  --partition iid|dirichlet|shards --alpha 0.5 --shards-per-client 2 --seed 0
  --minutes M                 time budget from the start (processes, data, rounds; the final evaluation
                              comes after it): no round starts that would not end in time
  --rounds R                  default 10, or unlimited with --minutes
  --local-epochs 1 --steps-per-round S                local training per round (S caps the steps)
  The recipe flags go to the coordinator, which sends the recipe to the agents with every round; the
  defaults are fedclr coordinator's (the recipe's federated defaults):
${recipeFlagsHelp('federated')}
  --lr-schedule cosine|constant  the learning rate of each round (default cosine: from --lr down to 5% of it
                              over the run, by rounds done of --rounds or time used of --minutes)
  --labels dataset            every agent opts in to its share's Fashion-MNIST classes (they stay on the agent):
                              needed by --loss supcon; triplet and margin then train label-aware
  --fedprox-mu MU             FedProx proximal coefficient of local training (default 0: plain FedAvg)
  --strategy fedavg|fedavgm|fedadam --aggregation plain|secure   (simulate's default: plain)
${DP_FLAGS_HELP}
                              (with simulate's default --aggregation plain, DP needs --dp-central)
${SAMPLING_FLAGS_HELP}
                              (simulate: every client is invited; not with --cohort, the cohort is the volunteers)
  --byzantine B               red team: B agents send garbage encrypted shares in every secure round (the
                              federation must complete each round without them; default 0)
  --refusers R                R agents (the last ones) require secure aggregation, as an agent's default policy does,
                              and so refuse every round of --aggregation plain: their refusals and reasons are in each
                              round's record and the dashboard's event log (default 0)
  --server-lr LR              the strategy's server step size (default 2 with fedavg, as fedclr coordinator: x + 2 x
                              the agents' mean delta, BatchNorm statistics averaged; fedavgm 1, fedadam 0.1)
  --eval-every K              also evaluate every K rounds (default 0: only at the end)
${COORDINATOR_EVAL_FLAGS_HELP}
  --k 20                      kNN neighbours
  --holdout H                 fit the probe on H labeled train images kept from the agents (default 0:
                              the probe fits on the train split's labels, which agents never get)
  --limit N                   use only the first N train and N test images (smoke runs)
  --agent-workers W           training threads per agent (default 0: in-process with --train-slots, else 1;
                              always at least 1 with --agents-per-process above 1)
  --agents-per-process K      run the agents K to a process (fedclr agent-host, default 1: one fedclr agent each):
                              each keeps its own identity, state, connection, share and token, and they share one
                              tfjs backend and one copy of the train split (hundreds of agents on one machine);
                              one log per host (logs/host-H.log), every line naming its agent
  --eval-workers N --deadline 600 (seconds per round)
  --train-slots S             at most S agents train at the same time, as if each had its own machine
                              (default: the number of cores; 0: all at once). With C agents per round,
                              each agent's local training is also capped at 0.8 x deadline / ceil(C/S),
                              so that every wave of S fits in the round's deadline
  --out DIR --json --verbose
  Admission as deployed: the coordinator admits only enrolled agents; simulate mints one one-time enrolment
  token per agent over the coordinator's admin API (<out>/coordinator/admin-token) and passes it (--token).`;

const SIMULATE_OPTIONS = {
  ...LABELED_FOLDER_OPTIONS,
  clients: { type: 'string' },
  cohort: { type: 'string' },
  partition: { type: 'string', default: 'iid' },
  alpha: { type: 'string' },
  'shards-per-client': { type: 'string' },
  seed: { type: 'string' },
  minutes: { type: 'string' },
  rounds: { type: 'string' },
  'local-epochs': { type: 'string' },
  'steps-per-round': { type: 'string' },
  ...RECIPE_FLAG_OPTIONS,
  ...DP_FLAG_OPTIONS,
  ...SAMPLING_FLAG_OPTIONS,
  'fedprox-mu': { type: 'string' },
  labels: { type: 'string' },
  'lr-schedule': { type: 'string' },
  strategy: { type: 'string' },
  'server-lr': { type: 'string' },
  aggregation: { type: 'string', default: 'plain' },
  byzantine: { type: 'string' },
  refusers: { type: 'string' },
  'eval-every': { type: 'string' },
  ...COORDINATOR_EVAL_FLAG_OPTIONS,
  k: { type: 'string' },
  holdout: { type: 'string' },
  limit: { type: 'string' },
  'agent-workers': { type: 'string' },
  'agents-per-process': { type: 'string' },
  'eval-workers': { type: 'string' },
  deadline: { type: 'string' },
  'train-slots': { type: 'string' },
  out: { type: 'string' },
  json: { type: 'boolean', default: false },
  verbose: { type: 'boolean', default: false },
} as const;

/** fedclr simulate's flags, parsed. */
export function parseSimulateArgs(argv: string[]) {
  return parseArgs({ args: argv, options: SIMULATE_OPTIONS, strict: true }).values;
}

/**
 * The recipe a simulation runs: fedclr coordinator's (coordinatorRecipe) for 28 px grayscale
 * Fashion-MNIST, or for --size (32) and --channels (3) with --data, so that a simulation and a
 * deployment share every default; the simulation passes it to its coordinator flag by flag, and
 * the coordinator sends it to the agents.
 */
export function simulateRecipe(values: Record<string, unknown>): FederatedRecipe {
  if (values['data'] === undefined) return coordinatorRecipe({ ...values, size: undefined, channels: undefined });
  return coordinatorRecipe({ ...values, size: values['size'] ?? '32', channels: values['channels'] ?? '3' });
}

/** The data flags' own errors, before anything starts. */
function checkDataFlags(values: ReturnType<typeof parseSimulateArgs>): void {
  checkLabeledFolderFlags(values);
  if (values.data === undefined) {
    if ((values.dataset ?? 'fashion-mnist') !== 'fashion-mnist') throw new UsageError(`unknown --dataset '${values.dataset}'; available: fashion-mnist (or --data DIR)`);
  } else if (values.limit !== undefined) {
    throw new UsageError('--limit goes with --dataset fashion-mnist; with --data, give a smaller folder');
  }
}

export async function simulateCommand(argv: string[], out: (line: string) => void, log: (line: string) => void): Promise<number> {
  const t0 = Date.now();
  const values = parseSimulateArgs(argv);

  // ---- options -------------------------------------------------------------------------------
  checkDataFlags(values);
  const aggregation = values.aggregation;
  if (aggregation !== 'plain' && aggregation !== 'secure') throw new UsageError(`--aggregation must be plain or secure, got '${aggregation}'`);
  const clients = intOption(values, 'clients', 10, 1);
  const sampling = samplingFromFlags(values, undefined);
  if (sampling !== undefined && values.cohort !== undefined) {
    throw new UsageError('--cohort and --sampling-rate exclude each other: under Poisson sampling the cohort is whoever volunteers (about Q x --clients)');
  }
  const cohort = intOption(values, 'cohort', clients, 1);
  if (cohort > clients) throw new UsageError(`--cohort ${cohort} exceeds --clients ${clients}`);
  if (aggregation === 'secure' && cohort < 3) throw new UsageError(`--aggregation secure needs a cohort of at least 3 agents (SecAgg+), got ${cohort}; use --aggregation plain`);
  const byzantine = intOption(values, 'byzantine', 0, 0);
  if (byzantine > 0 && aggregation !== 'secure') throw new UsageError('--byzantine needs --aggregation secure (the misbehaviour is in secure aggregation)');
  if (byzantine >= clients) throw new UsageError(`--byzantine ${byzantine} must be below --clients ${clients}`);
  const refusers = intOption(values, 'refusers', 0, 0);
  if (refusers > 0 && aggregation !== 'plain') throw new UsageError('--refusers needs --aggregation plain (they refuse rounds that are not secure)');
  if (refusers >= clients) throw new UsageError(`--refusers ${refusers} must be below --clients ${clients}`);
  const minutes = numberOption(values, 'minutes', undefined);
  const rounds = intOption(values, 'rounds', minutes === undefined ? 10 : 1_000_000);
  const stepsPerRound = values['steps-per-round'] === undefined ? undefined : intOption(values, 'steps-per-round', 1);
  const strategy = values.strategy ?? 'fedavg';
  if (!['fedavg', 'fedavgm', 'fedadam'].includes(strategy)) throw new UsageError(`--strategy must be fedavg, fedavgm or fedadam, got '${strategy}'`);
  if (values['lr-schedule'] !== undefined && !(LR_SCHEDULES as readonly string[]).includes(values['lr-schedule'])) {
    throw new UsageError(`--lr-schedule must be ${LR_SCHEDULES.join(' or ')}, got '${values['lr-schedule']}'`);
  }
  // Checked here, before any process starts; the coordinator gets it flag by flag and sends it to every agent.
  const recipe = simulateRecipe(values);
  const labels = labelsOption(values, { dataset: 'fashion-mnist' });
  checkLabelsForLoss(recipe, labels);
  const { batchSize: batch, learningRate: lr, temperature, optimizer, weightDecay, localEpochs, serverLr } = recipe;
  const { cropMin, viewSize, strength } = recipe.augment;
  const lrSchedule = recipe.lrSchedule;
  const fedproxMu = fedproxMuOption(values) ?? 0;
  const dp = dpFromFlags(values, undefined, aggregation, {
    rounds: values.rounds !== undefined || minutes === undefined ? rounds : undefined,
    ...(sampling?.rate === undefined ? {} : { samplingRate: sampling.rate }),
  });
  if (dp.calibrated !== undefined) {
    log(`simulate: --target-epsilon ${dp.privacy?.targetEpsilon}: noise multiplier ${dp.calibrated.noiseMultiplier.toPrecision(4)} (epsilon ${dp.calibrated.epsilon.toFixed(3)} after ${dp.calibrated.rounds} rounds, q = ${dp.calibrated.samplingRate})`);
  }
  // With --eval-data the coordinator evaluates during the run (and --eval-every is its); simulate only at the end.
  const coordinatorEval = coordinatorEvalFromFlags(values);
  const evalEvery = coordinatorEval === undefined ? intOption(values, 'eval-every', 0, 0) : 0;
  const k = intOption(values, 'k', 20);
  const seed = intOption(values, 'seed', 0, 0);
  // One training thread per agent keeps the agent's own event loop free for socket heartbeats
  // (in-process training blocks it for a whole step, which under 10-way CPU sharing outlasts them).
  const evalWorkers = intOption(values, 'eval-workers', defaultWorkers(), 0);
  const deadlineSec = numberOption(values, 'deadline', Math.min(600, minutes === undefined ? 600 : Math.max(1, minutes * 60))) as number;
  if (deadlineSec < 1) throw new UsageError(`--deadline must be at least 1 second, got ${deadlineSec}`);
  const trainSlots = intOption(values, 'train-slots', availableParallelism(), 0);
  const agentsPerProcess = intOption(values, 'agents-per-process', 1, 1);
  // With slots, each training agent has a core to itself: in-process training skips a worker
  // thread's start-up every round. Hosted agents share an event loop: they always train in a worker.
  const agentWorkers = intOption(values, 'agent-workers', trainSlots > 0 && agentsPerProcess === 1 ? 0 : 1, 0);
  if (agentsPerProcess > 1 && agentWorkers < 1) {
    throw new UsageError(`--agent-workers 0 does not go with --agents-per-process ${agentsPerProcess}: in-process training would hold the host's event loop, and with it the other agents' heartbeats, for whole steps; give --agent-workers 1 or more`);
  }
  // Agents train in about ceil(cohort / slots) waves: give each its share of the deadline (the
  // same work as all training at once for the whole deadline, at a fraction of the speed).
  const waves = trainSlots > 0 ? Math.ceil(cohort / trainSlots) : 1;
  const minutesPerRound = waves > 1 ? (DEFAULT_DEADLINE_FRACTION * deadlineSec) / waves / 60 : undefined;
  const partitionSpec: PartitionSpec = partitionOption(values);
  const limit = values.limit === undefined ? undefined : intOption(values, 'limit', 60_000, 2);
  const dataSpec: SimulationDataSpec = {
    dataset: 'fashion-mnist',
    clients,
    partition: partitionSpec,
    seed,
    ...(values.holdout !== undefined ? { holdout: intOption(values, 'holdout', 0, 0) } : {}),
    ...(limit !== undefined ? { limit } : {}),
  };
  const spec = recipeModelSpec(recipe.model);
  const encoder = recipe.model.encoder;
  const outDir = resolve(values.out ?? join('runs', `simulate-${new Date().toISOString().replace(/[:.]/g, '-')}`));
  try {
    if ((await readdir(outDir)).length > 0) throw new UsageError(`--out ${outDir} is not empty; give a new directory`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }

  // ---- data: every agent's share (prepared while the coordinator starts) ----------------------
  const backend = await initBackend();
  await mkdir(join(outDir, 'logs'), { recursive: true });
  const input = recipe.model.input as { height: number; width: number; channels: 1 | 3 };
  const prepareData = async (): Promise<SimulationData> => {
    const prepared =
      values.data === undefined
        ? await fashionMnistData(dataSpec, k)
        : await folderData({ data: values.data, testData: values['test-data'], testFraction: testFractionOption(values), input, split: dataSpec, k, outDir }, new FolderReader(values, 'simulate', log));
    const sorted = [...prepared.sizes].sort((a, b) => a - b);
    log(`simulate: ${clients} clients (${partitionSpec.kind}), ${sorted[0]}..${sorted[sorted.length - 1]} images each (median ${sorted[Math.floor(sorted.length / 2)]}), label skew ${prepared.skew.toFixed(3)}; holdout ${prepared.holdoutCount}, test ${prepared.testCount} (${prepared.testSource}); backend ${backend.name}`);
    return prepared;
  };
  let data: SimulationData | undefined;

  // ---- processes -----------------------------------------------------------------------------
  const children: Child[] = [];
  const level = values.verbose ? 'info' : 'warn';
  const rounds_: RoundRecord[] = [];
  const failed: { roundId: number; status: string; reason: string | null }[] = [];
  const evaluations: EvalRecord[] = [];
  let evalChain: Promise<void> = Promise.resolve();
  let evalError: Error | undefined;
  let stoppedBy: StopReason | undefined;
  let listening: Extract<CoordinatorIpcMessage, { type: 'listening' }> | undefined;
  let lastCheckpoint: string | undefined;
  let lastEnd: number | undefined;
  const starts = new Map<number, number>();
  const slots = trainSlots > 0 ? new SlotSemaphore(trainSlots) : undefined;
  /** [start, end] of the agents' training loops (Date.now() ms), from their slot releases. */
  let loops: [number, number][] = [];
  let interrupted: NodeJS.Signals | undefined;
  let failure: Error | undefined;
  const tty = process.stderr.isTTY === true;

  const onSignal = (signal: NodeJS.Signals): void => {
    interrupted ??= signal;
    log(`simulate: ${signal}: stopping the coordinator and the agents`);
    for (const c of children) if (!c.done) c.proc.kill('SIGTERM');
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    // Every agent of a simulation connects from loopback: the per-IP caps, meant for one remote
    // host, would cap the whole federation (maxPerIp: 1024 connections), so they get the global ones.
    // The first round waits for every agent, so that its cohort is sampled from all of them, not
    // from the first to connect.
    const coordinatorConfig = join(outDir, 'coordinator.json');
    const limits = { connections: { maxPendingPerIp: 256, maxPerIp: Math.max(1024, clients + 64) }, maxAgents: Math.max(10_000, clients), firstRoundAgents: clients };
    await writeFile(coordinatorConfig, `${JSON.stringify(limits)}\n`);
    const coordinatorArgs = [
      'coordinator',
      '--config', coordinatorConfig,
      '--state', join(outDir, 'coordinator'),
      '--host', '127.0.0.1',
      '--port', '0',
      '--rounds', String(rounds),
      // Poisson: any number of volunteers from the secure minimum (3) or 1 up to every client, all
      // of whom are invited (the cohort wait lets every agent connect before the first invitation).
      ...(sampling === undefined
        ? ['--min-cohort', String(cohort), '--max-cohort', String(cohort)]
        : ['--min-cohort', aggregation === 'secure' ? '3' : '1', '--max-cohort', String(clients), '--cohort-wait', String(Math.min(60, deadlineSec)), ...samplingFlags(sampling)]),
      '--local-epochs', String(localEpochs),
      '--strategy', strategy,
      '--server-lr', String(serverLr),
      '--aggregation', aggregation,
      '--deadline', String(deadlineSec),
      '--batch', String(batch),
      '--lr', String(lr),
      ...lossFlags(recipe),
      '--optimizer', optimizer,
      '--weight-decay', String(weightDecay),
      '--encoder', encoder,
      ...(encoder === 'convnet-s' ? ['--widths', recipe.model.widths.join(',')] : []),
      '--view-size', String(viewSize),
      '--crop-min', String(cropMin),
      '--strength', String(strength),
      '--fedprox-mu', String(fedproxMu),
      ...dpFlags(dp),
      ...coordinatorEvalFlags(coordinatorEval),
      '--lr-schedule', lrSchedule.kind,
      '--size', String(input.height),
      '--channels', String(input.channels),
      '--seed', String(seed),
      '--keep-last', String(Math.max(5, evalEvery + 2)),
      '--log-level', level,
      '--report-ipc',
    ];
    if (minutes !== undefined) {
      const remaining = minutes - (Date.now() - t0) / 60_000;
      if (remaining <= 0) throw new SimulationError(`the ${minutes}-minute budget was used up before the federation started`);
      coordinatorArgs.push('--minutes', remaining.toFixed(4));
    }
    log(`simulate: ${lossLine(recipe, labels)}`);
    const coordinator = spawnFedclr('coordinator', coordinatorArgs, join(outDir, 'logs', 'coordinator.log'));
    children.push(coordinator);
    data = await prepareData();
    const { evaluator } = data;

    const onRound = (m: Extract<CoordinatorIpcMessage, { type: 'round-completed' }>): void => {
      const s = m.summary;
      const startedAt = starts.get(s.roundId) ?? s.startedAt;
      const gapMs = lastEnd === undefined ? 0 : Math.max(0, startedAt - lastEnd);
      const roundMs = Math.max(0, m.at - startedAt);
      const wallMs = gapMs + roundMs;
      lastEnd = m.at;
      const agentTrainMs = maxMetric(s, 'trainMs');
      let trainMs = agentTrainMs;
      if (slots !== undefined) {
        const busy = unionLength(loops, startedAt, m.at);
        trainMs = busy > 0 || agentTrainMs !== null ? Math.round(busy) : null;
        // Later rounds start after m.at: only loops still running then can matter to them.
        loops = loops.filter(([, end]) => end > m.at);
      }
      const record = roundRecord(m, { wallMs, gapMs, roundMs, trainMs, agentTrainMs, elapsedMs: m.at - t0 });
      rounds_.push(record);
      lastCheckpoint = m.checkpointDir;
      if (tty) {
        const sec = (ms: number | null): string => (ms === null ? '?' : `${(ms / 1000).toFixed(1)}s`);
        log(
          `round ${record.round}${minutes === undefined ? `/${rounds}` : ''}  participants ${record.participants}/${record.cohort}  loss ${record.loss?.toFixed(4) ?? '?'}  ` +
            `lr ${record.learningRate?.toPrecision(3) ?? '?'}  ` +
            (record.dpEpsilon === null ? '' : `epsilon ${record.dpEpsilon.toFixed(3)} (delta ${record.dpDelta})  `) +
            `wall ${sec(wallMs)} (training ${sec(trainMs)}, other ${sec(record.nonTrainingMs)} = ${record.nonTrainingShare === null ? '?' : (record.nonTrainingShare * 100).toFixed(1)}%)`,
        );
      } else {
        const { eval: _e, ...fields } = record;
        log(JSON.stringify({ progress: 'simulate', ...fields }));
      }
      if (evalEvery > 0 && record.round % evalEvery === 0) {
        // Read the checkpoint now (older ones are pruned), evaluate after any earlier evaluation.
        const loading = loadModel(m.checkpointDir);
        loading.catch(() => undefined); // awaited below; this only keeps an early failure from being unhandled
        evalChain = evalChain.then(async () => {
          const model = await loading;
          // One worker thread: the round goes on meanwhile, and this process's event loop must keep granting training slots.
          const result = await evaluateModel(evaluator, model.spec, model.weights, 1, record.round);
          record.eval = result;
          evaluations.push(result);
          log(`evaluation after round ${record.round}: linear probe ${(result.linearProbe * 100).toFixed(2)}%, kNN ${(result.knn * 100).toFixed(2)}% (${(result.evalMs / 1000).toFixed(1)}s)`);
        }).catch((err: unknown) => {
          // Reported (and rethrown) once the federation has stopped; the run itself goes on.
          evalError ??= err as Error;
          log(`evaluation after round ${record.round} failed: ${(err as Error).message}`);
        });
      }
    };

    coordinator.proc.on('message', (raw) => {
      const m = raw as CoordinatorIpcMessage;
      switch (m.type) {
        case 'listening':
          listening = m;
          return;
        case 'round-started':
          starts.set(m.roundId, m.at);
          return;
        case 'round-completed':
          onRound(m);
          return;
        case 'round-evaluated': {
          const record = rounds_.find((r) => r.roundId === m.roundId);
          const { evalLinearProbe: linearProbe, evalKnn: knn, evalMs } = m.metrics;
          if (record === undefined || linearProbe === undefined || knn === undefined) {
            log(`simulate: the coordinator's evaluation of round ${m.roundId} matches no completed round or lacks its scores; ignored`);
            return;
          }
          record.coordinatorEval = { linearProbe, knn, evalMs: evalMs ?? null };
          log(`coordinator's evaluation of round ${record.round} (--eval-data): linear probe ${(linearProbe * 100).toFixed(2)}%, kNN ${(knn * 100).toFixed(2)}%`);
          return;
        }
        case 'round-failed':
          lastEnd = m.at;
          failed.push({ roundId: m.summary.roundId, status: m.summary.status, reason: m.summary.reason ?? null });
          log(`round ${m.summary.roundId} ${m.summary.status}: ${m.summary.reason ?? ''}`);
          return;
        case 'stopping':
          stoppedBy = m.reason;
          return;
      }
    });

    // Wait for the coordinator's address.
    const ready = await Promise.race([
      new Promise<boolean>((r) => coordinator.proc.on('message', (m) => (m as CoordinatorIpcMessage).type === 'listening' && r(true))),
      coordinator.exited.then(() => false),
      delay(120_000).then(() => false),
    ]);
    if (!ready || listening === undefined) throw new SimulationError(`the coordinator did not start; its log (${coordinator.log}):\n${tail(coordinator.log)}`);
    const processes = Math.ceil(clients / agentsPerProcess);
    log(`simulate: coordinator at ${listening.url}; starting ${clients} agents${agentsPerProcess > 1 ? ` in ${processes} agent hosts of up to ${agentsPerProcess}` : ''}`);
    // Admission as a deployment does it: one one-time enrolment token per agent, minted over the
    // coordinator's admin API with its admin token (the coordinator admits only enrolled agents).
    const enrolmentTokens = await mintEnrolmentTokens(listening.url, join(outDir, 'coordinator', 'admin-token'), clients);

    const agentArgs: string[][] = [];
    for (let i = 0; i < clients; i++) {
      agentArgs.push([
        '--coordinator', listening.url,
        // The agents pin the coordinator's key; their policy admits what this simulation runs
        // (plain rounds when --aggregation plain, any cohort size): it is the operator's own setup.
        '--coordinator-key', listening.coordinatorKey,
        '--token', enrolmentTokens[i] as string,
        '--min-cohort', '1',
        // The last R refusers keep the default policy's requirement of secure aggregation (--refusers).
        ...(aggregation === 'plain' ? [i >= clients - refusers ? '--require-secure' : '--allow-plain'] : []),
        ...data.agentArgs(i),
        ...(labels !== undefined ? ['--labels', labels] : []),
        '--state', join(outDir, 'agents', `agent-${i}`),
        '--agent-id', `sim-${i}`,
        '--workers', String(agentWorkers),
        ...(stepsPerRound !== undefined ? ['--steps-per-round', String(stepsPerRound)] : []),
        ...(minutesPerRound !== undefined ? ['--minutes-per-round', String(minutesPerRound)] : []),
        ...(slots !== undefined ? ['--train-slots', 'ipc'] : []),
        '--log-level', level,
        // The last B agents misbehave (agent ids sim-(N-B) .. sim-(N-1)).
        ...(i >= clients - byzantine ? ['--red-team', 'garbage-shares'] : []),
      ]);
    }
    // One `fedclr agent` process per agent, or (--agents-per-process K) one `fedclr agent-host` per K agents.
    const launches: { name: string; args: string[] }[] = [];
    if (agentsPerProcess === 1) {
      agentArgs.forEach((args, i) => launches.push({ name: `agent-${i}`, args: ['agent', ...args] }));
    } else {
      await mkdir(join(outDir, 'hosts'), { recursive: true });
      for (let h = 0; h * agentsPerProcess < clients; h++) {
        const file = join(outDir, 'hosts', `host-${h}.json`);
        // The agents' enrolment tokens are in it: readable by this user only.
        await writeFile(file, `${JSON.stringify({ agents: agentArgs.slice(h * agentsPerProcess, (h + 1) * agentsPerProcess) })}\n`, { mode: 0o600 });
        launches.push({ name: `host-${h}`, args: ['agent-host', '--agents', file, '--log-level', level] });
      }
    }
    // A signal during start-up stopped only the processes started so far: start no more.
    if (interrupted !== undefined) throw new SimulationError(`interrupted by ${interrupted} before the agents started (logs in ${join(outDir, 'logs')})`);
    const agents: Child[] = [];
    for (const { name, args } of launches) {
      const agent = spawnFedclr(name, args, join(outDir, 'logs', `${name}.log`));
      if (slots !== undefined) {
        const reply = (message: SlotIpcMessage): void => {
          // A failed send means the agent is gone: its exit frees the slot.
          if (agent.proc.connected) agent.proc.send(message, () => undefined);
        };
        agent.proc.on('message', (m: unknown) => {
          if (!isSlotMessage(m)) return;
          if (m.type === 'slot-acquire') slots.acquire(agent.name, m.id, () => reply({ type: 'slot-granted', id: m.id }));
          else if (m.type === 'slot-release' && slots.release(agent.name, m.id) === 'released' && m.trainMs > 0) loops.push([m.at - m.trainMs, m.at]);
        });
        void agent.exited.then(() => {
          const freed = slots.drop(agent.name);
          if (freed > 0) log(`simulate: ${agent.name} exited holding a training slot; freed it`);
        });
      }
      agents.push(agent);
      children.push(agent);
    }

    // Run until the coordinator exits; an agent that fails on its own stops the simulation.
    const agentFailure = new Promise<Child>((resolveFailure) => {
      for (const a of agents) {
        void a.exited.then(({ code }) => {
          if (code !== 0 && !coordinator.done && interrupted === undefined) resolveFailure(a);
        });
      }
    });
    const first = await Promise.race([coordinator.exited.then(() => undefined), agentFailure]);
    if (first !== undefined) {
      coordinator.proc.kill('SIGTERM');
      throw new SimulationError(`${first.name} exited early; its log (${first.log}):\n${tail(first.log)}`);
    }
    const { code, signal } = await coordinator.exited;
    await reap(agents, 20_000);
    if (interrupted !== undefined) throw new SimulationError(`interrupted by ${interrupted} after ${rounds_.length} rounds (logs in ${join(outDir, 'logs')})`);
    if (code !== 0) throw new SimulationError(`the coordinator exited with ${code ?? signal}; its log (${coordinator.log}):\n${tail(coordinator.log)}`);
    await evalChain;
    if (evalError !== undefined) throw new SimulationError(`an evaluation failed: ${evalError.message}`);
  } catch (err) {
    failure = err as Error;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await reap(children, 0);
  }
  if (failure !== undefined) throw failure;
  if (rounds_.length === 0 || lastCheckpoint === undefined || listening === undefined || data === undefined) {
    throw new SimulationError(`no round completed (stopped by ${stoppedBy ?? 'unknown'}; logs in ${join(outDir, 'logs')})`);
  }
  const trainingMs = Date.now() - t0;

  // ---- final evaluation ------------------------------------------------------------------------
  const { evaluator, holdoutCount, sizes, skew } = data;
  const finalModel = await loadModel(lastCheckpoint);
  log(`simulate: evaluating the final global encoder (${rounds_.length} rounds)`);
  const last = rounds_[rounds_.length - 1] as RoundRecord;
  const final = last.eval ?? (await evaluateModel(evaluator, finalModel.spec, finalModel.weights, evalWorkers, last.round));
  if (last.eval === undefined) evaluations.push(final);
  const change = modelChange(initialState(spec, seed).params, finalModel.weights);
  const report = {
    command: 'simulate',
    config: {
      dataset: values.data === undefined ? 'fashion-mnist' : 'folder',
      data: values.data === undefined ? null : resolve(values.data),
      testData: values['test-data'] === undefined ? null : resolve(values['test-data']),
      input,
      clients,
      cohort,
      partition: partitionSpec,
      seed,
      rounds: minutes === undefined ? rounds : null,
      minutes: minutes ?? null,
      localEpochs,
      stepsPerRound: stepsPerRound ?? null,
      batch,
      lr,
      lrSchedule,
      temperature,
      loss: recipe.loss,
      labels: labels ?? null,
      optimizer,
      weightDecay,
      strategy,
      serverLr,
      aggregation,
      byzantine,
      refusers,
      encoder,
      widths: [...recipe.model.widths],
      cropMin,
      viewSize,
      recipe,
      fedproxMu,
      dp: dp.dp === undefined ? null : { ...dp.dp, clipNorm: dp.clipNorm, ...dp.privacy, calibrated: dp.calibrated ?? null },
      samplingRate: sampling?.rate ?? null,
      architecture: listening.architecture,
      parameters: listening.parameters,
      evalEvery,
      coordinatorEval: coordinatorEval ?? null,
      k,
      holdout: holdoutCount,
      limit: limit ?? null,
      agentWorkers,
      agentsPerProcess,
      evalWorkers,
      deadlineSec,
      trainSlots,
      agentMinutesPerRound: minutesPerRound === undefined ? null : round4(minutesPerRound),
      backend: backend.name,
    },
    data: {
      trainImages: data.trainCount,
      holdoutImages: holdoutCount,
      testImages: evaluator.test.count,
      clientImages: sizes,
      labelSkew: round4(skew),
      classes: evaluator.probe.classNames,
      test: data.testSource,
      evaluation:
        holdoutCount > 0
          ? 'linear probe fitted on the labeled holdout (never seen by agents), kNN memory = holdout; both scored on the test images (never seen by agents)'
          : 'linear probe fitted on the labeled train images (agents see them, never their labels), kNN memory = the same; both scored on the test images (never seen by agents)',
    },
    completedRounds: rounds_.length,
    stoppedBy: stoppedBy ?? null,
    privacy: privacySummary(rounds_, dp, sampling?.rate ?? 1),
    rounds: rounds_,
    failedRounds: failed,
    evaluations,
    linearProbe: final.linearProbe,
    knn: final.knn,
    model: {
      initialVersion: listening.modelVersion,
      finalVersion: finalModel.info?.['modelVersion'] ?? null,
      changed: (finalModel.info?.['modelVersion'] ?? listening.modelVersion) !== listening.modelVersion && change.moved,
      relativeChange: change.relativeChange,
      checkpoint: lastCheckpoint,
    },
    timing: timingSummary(rounds_, {
      totalMs: Date.now() - t0,
      federationMs: trainingMs,
      finalEvalMs: final.evalMs,
      slots: slots === undefined ? undefined : { capacity: trainSlots, granted: slots.granted, maxHeld: slots.maxHeld, freedOnExit: slots.freedOnDrop },
    }),
    out: outDir,
    logs: join(outDir, 'logs'),
  };
  await writeFile(join(outDir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(join(outDir, 'report.html'), simulationReportHtml(report));
  if (values.json) out(JSON.stringify(report));
  else
    out(
      `simulate: ${rounds_.length} rounds in ${(trainingMs / 60_000).toFixed(1)} min (non-training share ${report.timing.meanNonTrainingShare ?? '?'}); ` +
        `linear probe ${(final.linearProbe * 100).toFixed(2)}%, kNN ${(final.knn * 100).toFixed(2)}%` +
        (report.privacy === null ? '' : `; epsilon ${report.privacy.epsilon.toFixed(3)} at delta ${report.privacy.delta}${report.privacy.targetEpsilon === null ? '' : ` (budget ${report.privacy.targetEpsilon})`}`) +
        `; report ${join(outDir, 'report.json')} (charts: report.html)`,
    );
  return 0;
}
