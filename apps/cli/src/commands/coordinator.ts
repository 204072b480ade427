// fedclr coordinator: runs a federation's coordinator (HTTP + socket.io) with a contrastive model,
// plain aggregation and tfjs checkpoints, until its rounds are done, its time budget would be
// exceeded by another round, or SIGTERM/SIGINT.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pino, type Logger } from 'pino';
import { architectureId, protocolManifest, wireRecipe } from '@fedclr/agent';
import { initialState, recipeModelSpec, RECIPE_DEFAULTS, type FederatedRecipe } from '@fedclr/contrastive';
import { checkpointDirName, LR_SCHEDULES, startCoordinator, STRATEGY_DEFAULTS, type CoordinatorConfig, type CoordinatorHandle } from '@fedclr/coordinator';
import { initBackend } from '@fedclr/tensor';
import { fedproxMuOption, intOption, nonNegativeOption, numberOption } from '../common.js';
import { DP_FLAG_OPTIONS, DP_FLAGS_HELP, dpFromFlags } from '../dp-flags.js';
import { LIVENESS_FLAG_OPTIONS, LIVENESS_FLAGS_HELP, livenessFromFlags } from '../liveness-flags.js';
import { UsageError } from '../errors.js';
import { sendToParent, type StopReason } from '../federation.js';
import { RECIPE_FLAG_OPTIONS, recipeFlagsHelp, recipeFromFlags } from '../recipe-flags.js';
import { SAMPLING_FLAG_OPTIONS, SAMPLING_FLAGS_HELP, samplingFromFlags } from '../sampling-flags.js';
import { createTfjsExporter, tfjsCheckpointDir } from '../tfjs-exporter.js';
import { CoordinatorEvaluation } from '../coordinator-eval.js';
import { writeCoordinatorReport } from '../coordinator-report.js';
import { admissionConfig, admissionFlags, admissionHelp } from './admin.js';

export const coordinatorHelp = `fedclr coordinator [options]
  --config FILE                 JSON: startCoordinator settings (stateDir, rounds, minCohort, training {...},
                                strategy {...}, enrolment {...}, quorum {...}, ...) plus "model": {"encoder",
                                "size", "channels", "widths"} and "minutes"; flags override the file
  The coordinator sends the whole recipe (model, augmentation, optimizer, rate, batch, loss, temperature,
  margin, mining) with every round: agents build their model, augmentation and loss from it and need none
  of these flags. An agent without labels refuses a supcon round (the reason is recorded with the round).
  --state DIR                   SQLite state and checkpoints (default ./fedclr-coordinator)
  --host 127.0.0.1 --port 8080  listen address (--port 0: any free port)
  --rounds 10 --min-cohort 2 --max-cohort 100 --local-epochs 1
  --cohort-wait SECONDS         once --min-cohort agents are ready, wait up to this long for --max-cohort (default 0)
${SAMPLING_FLAGS_HELP}
  --strategy fedavg|fedavgm|fedadam --aggregation secure|plain   (the coordinator's default: secure)
  --server-lr LR                the strategy's server step size (defaults: fedavg 2, the recipe's: x + 2 x the
                                agents' mean delta; fedavgm 1, fedadam 0.1); BatchNorm statistics are always averaged
  --deadline SECONDS            agents' train + upload budget per round (default 600)
${LIVENESS_FLAGS_HELP}
  --size 28 --channels 1        the images the model takes (agents read their folders at this size)
${recipeFlagsHelp('federated')}
  --fedprox-mu MU               FedProx: agents pull their weights towards the round's global model (default 0)
${DP_FLAGS_HELP}
  --lr-schedule cosine|constant the learning rate of each round (default cosine: --lr decays to 5% of it
                                over the run, by rounds done of --rounds or time used of --minutes, whichever
                                is further); "lrSchedule": {"kind", "finalFraction"} in --config
  --minutes M                   do not start a round that would not end within M minutes
  --keep-last 5 --seed 0 --log-level info --json
  --tls-cert FILE --tls-key FILE serve https (and wss for agents) with this PEM certificate chain and key;
                                without them plain http (loopback, or behind a TLS reverse proxy)
  --max-update-norm N           plain rounds: the server clips each update to L2 norm N (default: the round's
                                clipNorm, plus room for DP noise; without clipNorm the global model's norm)
  --max-example-count N         largest exampleCount one update may claim (default 100000; more is rejected)
  --eval-data DIR               evaluate checkpoints on this labeled folder (DIR/<class>/images; read at
                                --size/--channels): linear probe + kNN (k 20) in a worker thread, so rounds never
                                wait; --eval-test-fraction F of each class (default 0.2, seeded split) is the test set
  --eval-every K                evaluate every K-th completed round and the last (default 1 with --eval-data);
                                results join the round's metrics (evalLinearProbe, evalKnn) and the dashboard
  Checkpoints: <state>/checkpoints/round-NNNNNNNN/tfjs (tfjs layers; fedclr eval --model DIR).
  The latest global model: GET /api/model/model.json (tf.loadLayersModel takes that URL).
  The dashboard: GET / (live; README "Operate: the dashboard"). At exit: <state>/report.html (the run's charts).
  Its Ed25519 key (<state>/secagg-identity.json) signs every message to agents: it is printed at start
  ('coordinator public key HEX') and in GET /api/status (coordinatorKey); agents pin it with --coordinator-key.
${admissionHelp}`;

const STRATEGIES = ['fedavg', 'fedavgm', 'fedadam'] as const;
const AGGREGATIONS = ['secure', 'plain'] as const;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
type LogLevel = (typeof LOG_LEVELS)[number];

interface FileConfig extends Partial<CoordinatorConfig> {
  model?: { encoder?: string; size?: number; channels?: number; widths?: string | number[] };
  minutes?: number;
}

/**
 * The recipe fedclr coordinator sends: the recipe's federated defaults (@fedclr/contrastive
 * defaultFederatedRecipe), then --config's "model", "training", "lrSchedule" and "strategy",
 * then the flags.
 */
export function coordinatorRecipe(values: Record<string, unknown>, file: FileConfig = {}): FederatedRecipe {
  const size = values['size'] !== undefined ? intOption(values, 'size', 28) : (file.model?.size ?? 28);
  const channels = values['channels'] !== undefined ? intOption(values, 'channels', 1) : (file.model?.channels ?? 1);
  if (channels !== 1 && channels !== 3) throw new UsageError(`--channels must be 1 or 3, got ${channels}`);
  if (!Number.isInteger(size) || size < 8 || size > 512) throw new UsageError(`--size must be an integer in [8, 512], got ${size}`);
  const t = file.training ?? {};
  const recipe = recipeFromFlags(values, { height: size, width: size, channels }, 'federated', {
    encoder: file.model?.encoder,
    widths: file.model?.widths,
    batchSize: t.batchSize,
    learningRate: t.learningRate,
    optimizer: t.optimizer,
    temperature: t.temperature,
    loss: t.loss,
    margin: t.margin,
    mining: t.mining,
  });
  const scheduleFlag = oneOf('lr-schedule', values['lr-schedule'] as string | undefined, LR_SCHEDULES);
  const fileSchedule = typeof file.lrSchedule === 'string' ? { kind: file.lrSchedule } : file.lrSchedule;
  const kind = scheduleFlag ?? fileSchedule?.kind ?? RECIPE_DEFAULTS.lrSchedule.kind;
  const strategy = oneOf('strategy', values['strategy'] as string | undefined, STRATEGIES) ?? file.strategy?.name ?? 'fedavg';
  const fileStrategy = file.strategy?.name === strategy ? file.strategy : undefined;
  // The recipe's server step is FedAvg's (2); the other strategies keep their own defaults.
  const serverLr = numberOption(values, 'server-lr', undefined) ?? fileStrategy?.lr ?? (strategy === 'fedavg' ? RECIPE_DEFAULTS.serverLr : STRATEGY_DEFAULTS[strategy].lr);
  return {
    ...recipe,
    lrSchedule: kind === 'cosine' ? { kind, finalFraction: (fileSchedule?.kind === 'cosine' ? fileSchedule.finalFraction : undefined) ?? RECIPE_DEFAULTS.lrSchedule.finalFraction } : { kind },
    serverLr,
    localEpochs: values['local-epochs'] !== undefined ? intOption(values, 'local-epochs', 1) : (file.localEpochs ?? RECIPE_DEFAULTS.localEpochs),
  };
}

async function readConfigFile(path: string): Promise<FileConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read --config ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--config ${path} is not JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError(`--config ${path} must hold a JSON object`);
  return parsed as FileConfig;
}

async function readPem(flag: string, path: string): Promise<string> {
  try {
    return await readFile(resolve(path), 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read --${flag} ${path}: ${(err as Error).message}`);
  }
}

function oneOf<T extends string>(name: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got '${value}'`);
  return value as T;
}

export function logLevelOption(values: Record<string, unknown>, fallback: LogLevel = 'info'): LogLevel {
  return oneOf('log-level', values['log-level'] as string | undefined, LOG_LEVELS) ?? (process.env['FEDCLR_LOG_LEVEL'] as LogLevel | undefined) ?? fallback;
}

/** A pino logger on stderr (stdout carries only the command's result). */
export function stderrLogger(level: LogLevel, svc: string): Logger {
  return pino({ level, base: { svc } }, pino.destination(2));
}

const COORDINATOR_OPTIONS = {
  ...RECIPE_FLAG_OPTIONS,
  ...DP_FLAG_OPTIONS,
  ...SAMPLING_FLAG_OPTIONS,
  'cohort-wait': { type: 'string' },
  config: { type: 'string' },
  state: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  rounds: { type: 'string' },
  'min-cohort': { type: 'string' },
  'max-cohort': { type: 'string' },
  'local-epochs': { type: 'string' },
  strategy: { type: 'string' },
  'server-lr': { type: 'string' },
  aggregation: { type: 'string' },
  deadline: { type: 'string' },
  'fedprox-mu': { type: 'string' },
  'lr-schedule': { type: 'string' },
  size: { type: 'string' },
  channels: { type: 'string' },
  minutes: { type: 'string' },
  'keep-last': { type: 'string' },
  seed: { type: 'string' },
  'log-level': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'max-update-norm': { type: 'string' },
  'max-example-count': { type: 'string' },
  ...LIVENESS_FLAG_OPTIONS,
  'eval-data': { type: 'string' },
  'eval-every': { type: 'string' },
  'eval-test-fraction': { type: 'string' },
  'report-ipc': { type: 'boolean', default: false },
  ...admissionFlags,
  json: { type: 'boolean', default: false },
} as const;

/** fedclr coordinator's flags, parsed. */
export function parseCoordinatorArgs(argv: string[]) {
  return parseArgs({ args: argv, options: COORDINATOR_OPTIONS, strict: true }).values;
}

export async function coordinatorCommand(argv: string[], out: (line: string) => void, log: (line: string) => void): Promise<number> {
  const values = parseCoordinatorArgs(argv);
  const file: FileConfig = values.config === undefined ? {} : await readConfigFile(values.config);
  const { model: _fileModel, minutes: fileMinutes, ...fileRest } = file;
  if (fileRest.budgetEndsAt !== undefined) throw new UsageError('--config: give the time budget as "minutes" (or --minutes), not "budgetEndsAt"');
  const strategy = oneOf('strategy', values.strategy, STRATEGIES);
  const aggregation = oneOf('aggregation', values.aggregation, AGGREGATIONS);
  const deadline = numberOption(values, 'deadline', undefined);
  const minutes = numberOption(values, 'minutes', fileMinutes);
  if (minutes !== undefined && !(minutes > 0)) throw new UsageError(`"minutes" in --config must be > 0, got ${minutes}`);
  // The recipe: its federated defaults, then the file, then the flags; sent whole with every round.
  const recipe = coordinatorRecipe(values, file);
  const { margin: _m, mining: _k, ...fileTraining } = fileRest.training ?? {};
  const training = {
    ...fileTraining,
    batchSize: recipe.batchSize,
    learningRate: recipe.learningRate,
    optimizer: recipe.optimizer,
    loss: recipe.loss,
    temperature: recipe.temperature,
    ...(recipe.margin !== undefined ? { margin: recipe.margin } : {}),
    ...(recipe.mining !== undefined ? { mining: recipe.mining } : {}),
  };
  const fedproxMu = fedproxMuOption(values);
  if (fedproxMu !== undefined) training.fedproxMu = fedproxMu;
  const plannedRounds = values.rounds !== undefined ? intOption(values, 'rounds', 10) : (fileRest.rounds ?? (minutes === undefined ? 10 : undefined));
  const sampling = samplingFromFlags(values, fileRest.sampling);
  const samplingRate = sampling?.mode === 'poisson' ? sampling.rate : undefined;
  const dpSettings = dpFromFlags(values, fileRest.training, aggregation ?? fileRest.aggregation ?? 'secure', { rounds: plannedRounds, ...(samplingRate === undefined ? {} : { samplingRate }) }, fileRest.privacy);
  if (dpSettings.clipNorm !== undefined) training.clipNorm = dpSettings.clipNorm;
  if (dpSettings.dp !== undefined) training.dp = dpSettings.dp;
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new UsageError('give --tls-cert FILE and --tls-key FILE together');
  const tls = values['tls-cert'] === undefined ? undefined : { cert: await readPem('tls-cert', values['tls-cert']), key: await readPem('tls-key', values['tls-key'] as string) };
  const maxUpdateNorm = numberOption(values, 'max-update-norm', undefined); // > 0
  const cohortWait = values['cohort-wait'] === undefined ? undefined : nonNegativeOption(values, 'cohort-wait', 0);
  const config: CoordinatorConfig = admissionConfig(values, {
    ...fileRest,
    ...(tls !== undefined ? { tls } : {}),
    ...(maxUpdateNorm !== undefined ? { maxUpdateNorm } : {}),
    ...(sampling !== undefined ? { sampling } : {}),
    ...(cohortWait !== undefined ? { cohortWaitMs: Math.round(cohortWait * 1000) } : {}),
    ...(values['max-example-count'] !== undefined ? { maxExampleCount: intOption(values, 'max-example-count', 100_000) } : {}),
    ...livenessFromFlags(values),
    stateDir: resolve(values.state ?? fileRest.stateDir ?? 'fedclr-coordinator'),
    training,
    recipe: wireRecipe(recipe),
    localEpochs: recipe.localEpochs,
    ...(values.host !== undefined ? { host: values.host } : {}),
    ...(values.port !== undefined ? { port: intOption(values, 'port', 8080, 0) } : {}),
    ...(values.rounds !== undefined ? { rounds: intOption(values, 'rounds', 10) } : {}),
    ...(values['min-cohort'] !== undefined ? { minCohort: intOption(values, 'min-cohort', 2) } : {}),
    ...(values['max-cohort'] !== undefined ? { maxCohort: intOption(values, 'max-cohort', 100) } : {}),
    strategy: {
      ...(strategy === undefined || fileRest.strategy?.name === strategy ? fileRest.strategy : {}),
      name: strategy ?? fileRest.strategy?.name ?? 'fedavg',
      lr: recipe.serverLr,
    } as NonNullable<CoordinatorConfig['strategy']>,
    // The recipe's schedule (cosine to 5%) unless the flag or the file names one (the flag keeps the file's finalFraction when it names the same schedule).
    lrSchedule: recipe.lrSchedule,
    ...(aggregation !== undefined ? { aggregation } : {}),
    ...(deadline !== undefined ? { deadlineMs: Math.round(deadline * 1000) } : {}),
    ...(values['keep-last'] !== undefined ? { keepLastK: intOption(values, 'keep-last', 5) } : {}),
    ...(values.seed !== undefined ? { seed: intOption(values, 'seed', 0, 0) } : {}),
    ...(dpSettings.privacy === undefined ? {} : { privacy: dpSettings.privacy }),
    handleSignals: false,
  });
  if (config.minCohort !== undefined && config.maxCohort === undefined && config.minCohort > 100) config.maxCohort = config.minCohort;
  const spec = recipeModelSpec(recipe.model);
  const logger = stderrLogger(logLevelOption(values), 'coordinator');
  if (dpSettings.calibrated !== undefined) {
    const c = dpSettings.calibrated;
    logger.info({ ...c, targetEpsilon: dpSettings.privacy?.targetEpsilon }, `--target-epsilon: noise multiplier ${c.noiseMultiplier.toPrecision(4)} calibrated for ${c.rounds} rounds (epsilon ${c.epsilon.toFixed(3)}, q = ${c.samplingRate})`);
  }
  const ipc = values['report-ipc'];

  if (values['eval-data'] === undefined && (values['eval-every'] !== undefined || values['eval-test-fraction'] !== undefined)) {
    throw new UsageError('--eval-every and --eval-test-fraction need --eval-data DIR');
  }
  const evalEvery = values['eval-every'] === undefined ? 1 : intOption(values, 'eval-every', 1);
  if (evalEvery < 1) throw new UsageError(`--eval-every must be >= 1, got ${evalEvery}`);
  const evalFraction = numberOption(values, 'eval-test-fraction', 0.2) as number;
  if (!(evalFraction > 0 && evalFraction < 1)) throw new UsageError(`--eval-test-fraction must be in (0, 1), got ${evalFraction}`);

  await initBackend();
  // Before the coordinator listens: a folder that cannot be evaluated stops the start-up.
  const evaluation =
    values['eval-data'] === undefined
      ? undefined
      : await CoordinatorEvaluation.start(
          { dir: resolve(values['eval-data']), height: recipe.model.input.height, width: recipe.model.input.width, channels: recipe.model.input.channels === 3 ? 3 : 1, testFraction: evalFraction, seed: config.seed ?? 0, k: 20, spec },
          logger,
        );
  const init = initialState(spec, config.seed ?? 0);
  // The time budget: no round starts that would not end before it; the learning-rate schedule
  // (lrSchedule 'cosine') also counts progress by it.
  const budgetEnd = minutes === undefined ? undefined : Date.now() + minutes * 60_000;
  if (budgetEnd !== undefined) config.budgetEndsAt = budgetEnd;
  const handle: CoordinatorHandle = await startCoordinator(config, {
    initialModel: { architecture: architectureId(spec), manifest: protocolManifest(spec), weights: init.params },
    exporters: [createTfjsExporter(spec)],
    modelSpec: spec, // GET /api/model/model.json: the latest global model for tf.loadLayersModel
    logger,
  });
  const stateDir = handle.config.stateDir;
  const startedAt = Date.now();
  evaluation?.attach(handle, evalEvery);
  const model = handle.globalModel();
  if (ipc) {
    sendToParent({ type: 'listening', url: handle.url, coordinatorKey: handle.publicKey, modelVersion: model.modelVersion, architecture: model.architecture, parameters: model.weights.length, completedRounds: model.completedRounds, at: Date.now() });
  }
  logger.info({ url: handle.url, recipe, architecture: model.architecture }, 'the training recipe, sent to the agents with every round');
  if (!values.json) log(`coordinator listening on ${handle.url} (state ${stateDir}, model ${model.architecture}, ${model.completedRounds} rounds done)`);
  // Always (stderr, also with --json): the key agents pin.
  log(`coordinator public key ${handle.publicKey} (agents pin it: fedclr agent --coordinator-key ${handle.publicKey})`);

  // ---- stopping: rounds done, time budget, signals, parent gone ---------------------------------
  let stopReason: StopReason | undefined;
  let resolveStop: () => void = () => undefined;
  const stopRequested = new Promise<void>((r) => {
    resolveStop = r;
  });
  const stop = (reason: StopReason, options: { mode: 'abort' | 'finish'; reason: 'stopping' | 'restarting' }): void => {
    if (stopReason !== undefined) return;
    stopReason = reason;
    logger.info({ reason }, 'stopping the coordinator');
    if (ipc) sendToParent({ type: 'stopping', reason, completedRounds: handle.status().completedRounds, at: Date.now() });
    // The synchronous part of close() tells the engine to start no further round; called from a
    // round-completed listener this happens before the engine hears that the commit is done.
    const close = (): void =>
      void handle.close(options).then(resolveStop, (err: unknown) => {
        logger.error({ err }, 'closing the coordinator failed');
        resolveStop();
      });
    // A finished run starts no round anyway: let the last checkpoint's evaluation land in its round
    // first. Stopped by time, signal or parent, close at once (an evaluation in progress is dropped).
    if (evaluation !== undefined && (reason === 'rounds' || reason === 'privacy-budget')) void evaluation.drain(10 * 60_000).then(close);
    else close();
  };

  const walls: number[] = [];
  let lastMark: number | undefined;
  handle.events.on('round-started', (r) => {
    lastMark ??= Date.now();
    if (ipc) sendToParent({ type: 'round-started', roundId: r.roundId, cohort: r.cohort.length, at: Date.now() });
  });
  handle.events.on('round-failed', (s) => {
    lastMark = Date.now();
    if (ipc) sendToParent({ type: 'round-failed', summary: s, at: Date.now() });
  });
  handle.events.on('round-evaluated', (e) => {
    if (ipc) sendToParent({ type: 'round-evaluated', roundId: e.roundId, metrics: e.metrics, at: Date.now() });
  });
  handle.events.on('round-completed', (s) => {
    const now = Date.now();
    walls.push(now - (lastMark ?? s.startedAt));
    lastMark = now;
    const completedRounds = handle.status().completedRounds + 1; // the engine adopts the model after this event
    if (ipc) sendToParent({ type: 'round-completed', summary: s, completedRounds, checkpointDir: tfjsCheckpointDir(stateDir, checkpointDirName(s.roundId)), at: now });
    if (budgetEnd !== undefined && completedRounds < handle.config.rounds) {
      const estimate = Math.max(...walls.slice(-3));
      if (now + estimate > budgetEnd) {
        logger.info({ remainingMs: budgetEnd - now, estimateMs: estimate }, 'the next round would not fit in the time budget');
        stop('minutes', { mode: 'finish', reason: 'stopping' });
      }
    }
  });
  const budgetTimer = budgetEnd === undefined ? undefined : setTimeout(() => stop('minutes', { mode: 'finish', reason: 'stopping' }), Math.max(0, budgetEnd - Date.now()));
  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'signal received');
    stop('signal', { mode: 'abort', reason: 'restarting' });
  };
  const onParentGone = (): void => stop('parent-gone', { mode: 'abort', reason: 'stopping' });
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  if (ipc) process.once('disconnect', onParentGone);
  void handle.finished.then(() => stop(handle.status().finishedBy === 'privacy-budget' ? 'privacy-budget' : 'rounds', { mode: 'finish', reason: 'stopping' }));

  try {
    await stopRequested;
  } finally {
    if (budgetTimer !== undefined) clearTimeout(budgetTimer);
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('disconnect', onParentGone);
  }
  await evaluation?.close();
  const final = handle.globalModel();
  let report: string | null = null;
  try {
    report = await writeCoordinatorReport(handle.config, { architecture: final.architecture, parameters: final.weights.length }, stopReason ?? 'unknown');
  } catch (err) {
    logger.error({ err }, 'could not write report.html');
  }
  const summary = {
    url: handle.url,
    stateDir,
    stoppedBy: stopReason,
    completedRounds: final.completedRounds,
    modelVersion: final.modelVersion,
    model: final.roundId > 0 ? tfjsCheckpointDir(stateDir, checkpointDirName(final.roundId)) : null,
    elapsedMs: Date.now() - startedAt,
    privacy: handle.status().privacy ?? null,
    report,
  };
  if (values.json) out(JSON.stringify(summary));
  else {
    const spent = summary.privacy === null ? '' : `; epsilon ${summary.privacy.epsilon.toFixed(3)} at delta ${summary.privacy.delta}`;
    out(`coordinator stopped (${stopReason}) after ${summary.completedRounds} completed rounds${spent}; latest model: ${summary.model ?? 'the initial one (no round completed)'}`);
  }
  return 0;
}
