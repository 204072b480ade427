// Building a running agent from `fedclr agent` flags, in three steps that a process can repeat for
// several agents (fedclr agent runs one; fedclr agent-host, simulate's internal, runs K):
//   parseAgentSetup(argv)   the flags, checked (cheap: no data, no backend, no socket)
//   agentImages(setup)      the agent's images: its simulated Fashion-MNIST share (the train split
//                           is loaded once per process, through a TrainSplitCache) or its folder
//   startSetupAgent(...)    the trainer and the agent, connected
// and superviseAgents(), which runs them until they stop, a signal, or the parent going away.
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  createContrastiveTrainer,
  InsecureUrlError,
  isLoopbackHost,
  parseCoordinatorKey,
  RED_TEAM_MODES,
  startAgent,
  type AgentExit,
  type AgentHandle,
  type RedTeamMode,
  type RoundPolicy,
  type TrainingGate,
} from '@fedclr/agent';
import { describeLoss, type InputShape } from '@fedclr/contrastive';
import { DEFAULT_DP_DELTA } from '@fedclr/coordinator';
import { subsetDataset, type ImageDataset, type LabeledImageDataset } from '@fedclr/data';
import type { Logger } from 'pino';
import { defaultWorkers, intOption, numberOption, nonNegativeOption } from './common.js';
import { UsageError } from './errors.js';
import { FOLDER_FLAG_OPTIONS, FolderReader } from './folders.js';
import { checkLabelledImages, labelsOption } from './labels.js';
import { loadSimulationTrain, partitionOption, splitSimulation, type SimulationDataSpec, type SimulationSplit } from './federation.js';
import { RECIPE_FLAG_OPTIONS } from './recipe-flags.js';
import { logLevelOption } from './commands/coordinator.js';

/** `I/N`: client I (0-based) of N. */
export function clientOption(raw: string): { index: number; clients: number } {
  const m = /^(\d+)\/(\d+)$/.exec(raw);
  const index = Number(m?.[1]);
  const clients = Number(m?.[2]);
  if (m === null || clients < 1 || index >= clients) throw new UsageError(`--client must be I/N with 0 <= I < N, got '${raw}'`);
  return { index, clients };
}

/** --file-list FILE: one relative path a line (blank lines ignored). */
async function readFileList(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read --file-list ${path}: ${(err as Error).message}`);
  }
  const files = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  if (files.length < 2) throw new UsageError(`--file-list ${path} lists ${files.length} files; contrastive training needs at least 2`);
  return files;
}

/** The first line of a token file (--token-file: keeps the token out of the process list). */
async function readTokenFile(path: string): Promise<string> {
  try {
    return ((await readFile(path, 'utf8')).split('\n')[0] ?? '').trim();
  } catch (err) {
    throw new UsageError(`cannot read --token-file ${path}: ${(err as Error).message}`);
  }
}

const AGENT_OPTIONS = {
  coordinator: { type: 'string' },
  'coordinator-key': { type: 'string' },
  token: { type: 'string' },
  'token-file': { type: 'string' },
  ca: { type: 'string' },
  insecure: { type: 'boolean', default: false },
  'trust-on-first-use': { type: 'boolean', default: false },
  'allow-plain': { type: 'boolean', default: false },
  'require-secure': { type: 'boolean', default: false },
  'min-cohort': { type: 'string' },
  'min-noise-multiplier': { type: 'string' },
  'max-epsilon': { type: 'string' },
  'dp-delta': { type: 'string' },
  'require-sampling': { type: 'boolean', default: false },
  'allow-coordinator-sampling': { type: 'boolean', default: false },
  'red-team': { type: 'string' },
  data: { type: 'string' },
  'file-list': { type: 'string' },
  ...FOLDER_FLAG_OPTIONS,
  dataset: { type: 'string' },
  client: { type: 'string' },
  partition: { type: 'string' },
  alpha: { type: 'string' },
  'shards-per-client': { type: 'string' },
  holdout: { type: 'string' },
  limit: { type: 'string' },
  seed: { type: 'string' },
  labels: { type: 'string' },
  // Refused with a clear error below: the coordinator's recipe sets them.
  ...RECIPE_FLAG_OPTIONS,
  size: { type: 'string' },
  channels: { type: 'string' },
  state: { type: 'string' },
  workers: { type: 'string' },
  'steps-per-round': { type: 'string' },
  'minutes-per-round': { type: 'string' },
  'agent-id': { type: 'string' },
  'train-slots': { type: 'string' },
  'log-level': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

function parseAgentValues(argv: string[]) {
  return parseArgs({ args: argv, options: AGENT_OPTIONS, strict: true }).values;
}

type AgentValues = ReturnType<typeof parseAgentValues>;

/** An agent's flags, checked: everything but its images, its backend and its connection. */
export interface AgentSetup {
  readonly values: AgentValues;
  readonly coordinatorUrl: string;
  readonly labels: ReturnType<typeof labelsOption>;
  readonly workers: number;
  readonly maxSteps: number | undefined;
  readonly maxMinutes: number | undefined;
  /** --train-slots ipc: train only while holding a slot from the parent process. */
  readonly ipcSlots: boolean;
  readonly ca: { ca: string; caPath: string } | undefined;
  readonly coordinatorKey: string | undefined;
  readonly enrolmentToken: string | undefined;
  readonly policy: Partial<RoundPolicy>;
  /** --max-epsilon E (--dp-delta D): this agent's own privacy budget. */
  readonly privacyBudget: { maxEpsilon: number; delta: number } | undefined;
  readonly redTeam: RedTeamMode | undefined;
  readonly logLevel: ReturnType<typeof logLevelOption>;
  /** --dataset fashion-mnist --client I/N: the simulated share and its data spec. */
  readonly simulated: { index: number; clients: number; spec: SimulationDataSpec } | undefined;
}

/** Parses and checks `fedclr agent` flags (UsageError on the first problem), before any data loads. */
/**
 * `ipcRefusal`: the usage error when --train-slots ipc cannot work in this process (no parent
 * channel), checked with the other flag values before trust and data (fedclr agent passes it).
 */
export async function parseAgentSetup(argv: string[], options: { ipcRefusal?: string } = {}): Promise<AgentSetup> {
  const values = parseAgentValues(argv);
  if (values.coordinator === undefined) throw new UsageError('give --coordinator URL (e.g. http://127.0.0.1:8080)');
  if (!/^(https?|wss?):\/\/[^/\s]+/.test(values.coordinator)) throw new UsageError(`--coordinator must be an http(s):// URL, got '${values.coordinator}'`);
  for (const flag of [...Object.keys(RECIPE_FLAG_OPTIONS), 'size', 'channels']) {
    if ((values as Record<string, unknown>)[flag] !== undefined) {
      throw new UsageError(
        `--${flag} is not an agent flag: the coordinator sends the training recipe (model, image size, augmentation, optimizer, rate, batch, loss) with every round and the agent trains exactly that; set it on fedclr coordinator`,
      );
    }
  }
  if ((values.data === undefined) === (values.dataset === undefined)) throw new UsageError('give exactly one of --data DIR (private images) or --dataset fashion-mnist --client I/N (simulation)');
  const labels = labelsOption(values, { data: values.data, dataset: values.dataset });
  const workers = intOption(values, 'workers', defaultWorkers(), 0);
  const maxSteps = values['steps-per-round'] === undefined ? undefined : intOption(values, 'steps-per-round', 1);
  const maxMinutes = numberOption(values, 'minutes-per-round', undefined);
  if (values['train-slots'] !== undefined && values['train-slots'] !== 'ipc') {
    throw new UsageError(`--train-slots takes only 'ipc' (a slot from the parent process, as fedclr simulate passes it), got '${values['train-slots']}'`);
  }
  if (values['train-slots'] === 'ipc' && options.ipcRefusal !== undefined) throw new UsageError(options.ipcRefusal);
  // The data flags' own errors first (they are cheap to check), then trust and policy: all before any data loads.
  let simulated: AgentSetup['simulated'];
  if (values.dataset !== undefined) {
    if (values.dataset !== 'fashion-mnist') throw new UsageError(`unknown --dataset '${values.dataset}'; available: fashion-mnist`);
    if (values.client === undefined) throw new UsageError('--dataset needs --client I/N (this agent is client I of N)');
    const client = clientOption(values.client);
    const spec: SimulationDataSpec = {
      dataset: 'fashion-mnist',
      clients: client.clients,
      partition: partitionOption(values),
      seed: intOption(values, 'seed', 0, 0),
      ...(values.holdout !== undefined ? { holdout: intOption(values, 'holdout', 0, 0) } : {}),
      ...(values.limit !== undefined ? { limit: intOption(values, 'limit', 60_000) } : {}),
    };
    simulated = { ...client, spec };
  } else if (values.client !== undefined || values.partition !== undefined) {
    throw new UsageError('--client and --partition go with --dataset (simulation), not with --data');
  }
  if (values.dataset !== undefined && (values['file-list'] !== undefined || values['skipped-report'] !== undefined || values['max-memory'] !== undefined)) {
    throw new UsageError('--file-list, --skipped-report and --max-memory go with --data DIR, not with --dataset');
  }
  // TLS: before any data is loaded, so a wrong URL or CA file fails at once.
  let coordinatorHost: string;
  try {
    coordinatorHost = new URL(values.coordinator).hostname;
  } catch {
    throw new UsageError(`--coordinator must be a URL such as https://coord.example:8080, got '${values.coordinator}'`);
  }
  if (/^(http|ws):/.test(values.coordinator) && !isLoopbackHost(coordinatorHost) && !values.insecure) {
    throw new InsecureUrlError(values.coordinator, coordinatorHost);
  }
  let ca: { ca: string; caPath: string } | undefined;
  if (values.ca !== undefined) {
    const caPath = resolve(values.ca);
    try {
      ca = { ca: await readFile(caPath, 'utf8'), caPath };
    } catch (err) {
      throw new UsageError(`cannot read --ca ${caPath}: ${(err as Error).message}`);
    }
    if (!ca.ca.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`--ca ${caPath} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  const coordinatorKey = values['coordinator-key'];
  if (coordinatorKey !== undefined) {
    if (values['trust-on-first-use']) throw new UsageError('give either --coordinator-key KEY or --trust-on-first-use, not both');
    try {
      parseCoordinatorKey(coordinatorKey, '--coordinator-key');
    } catch (err) {
      throw new UsageError(`--coordinator-key must be the coordinator's 32-byte Ed25519 public key as 64 hex characters or base64, got '${coordinatorKey}' (${(err as Error).message})`);
    }
  } else if (!values['trust-on-first-use']) {
    throw new UsageError(
      "give --coordinator-key KEY (the coordinator's public key: it prints 'coordinator public key ...' at start, and " +
        `GET ${values.coordinator.replace(/\/+$/, '')}/api/status returns it as coordinatorKey), or --trust-on-first-use to accept the first key seen`,
    );
  }
  if (values.token !== undefined && values['token-file'] !== undefined) throw new UsageError('give --token T or --token-file F, not both');
  const enrolmentToken = values['token-file'] !== undefined ? await readTokenFile(values['token-file']) : values.token;
  if (enrolmentToken !== undefined && !/^[A-Za-z0-9._-]{1,256}$/.test(enrolmentToken)) {
    throw new UsageError(`--token must be an enrolment token as fedclr admin token prints it (fedclr-et1....), got '${enrolmentToken.slice(0, 40)}'`);
  }
  if (values['allow-plain'] && values['require-secure']) throw new UsageError('give either --allow-plain or --require-secure, not both');
  const policy: { -readonly [K in keyof RoundPolicy]?: RoundPolicy[K] } = {};
  if (values['allow-plain']) policy.requireSecure = false;
  if (values['require-secure']) policy.requireSecure = true;
  if (values['min-cohort'] !== undefined) policy.minCohort = intOption(values, 'min-cohort', 5, 1);
  if (values['min-noise-multiplier'] !== undefined) policy.minNoiseMultiplier = nonNegativeOption(values, 'min-noise-multiplier', 0);
  const maxEpsilon = numberOption(values, 'max-epsilon', undefined);
  const dpDelta = numberOption(values, 'dp-delta', undefined);
  if (dpDelta !== undefined && maxEpsilon === undefined) throw new UsageError('--dp-delta goes with --max-epsilon E (the delta of this agent\'s budget)');
  if (dpDelta !== undefined && !(dpDelta < 0.1)) throw new UsageError(`--dp-delta must be a number in (0, 0.1), got ${dpDelta}`);
  const privacyBudget = maxEpsilon === undefined ? undefined : { maxEpsilon, delta: dpDelta ?? DEFAULT_DP_DELTA };
  if (values['require-sampling'] && values['allow-coordinator-sampling']) throw new UsageError('give either --require-sampling or --allow-coordinator-sampling, not both');
  if (values['require-sampling']) policy.requireSampling = true;
  if (values['allow-coordinator-sampling']) policy.requireSampling = false;
  const redTeam = values['red-team'] as RedTeamMode | undefined;
  if (redTeam !== undefined && !(RED_TEAM_MODES as readonly string[]).includes(redTeam)) {
    throw new UsageError(`--red-team must be one of ${RED_TEAM_MODES.join(', ')}, got '${redTeam}'`);
  }
  if (values.data !== undefined) {
    const info = await stat(values.data).catch(() => undefined);
    if (info === undefined || !info.isDirectory()) throw new UsageError(`--data ${values.data} is not a readable directory`);
  }
  return {
    values,
    coordinatorUrl: values.coordinator,
    labels,
    workers,
    maxSteps,
    maxMinutes,
    ipcSlots: values['train-slots'] === 'ipc',
    ca,
    coordinatorKey,
    enrolmentToken,
    policy,
    privacyBudget,
    redTeam,
    logLevel: logLevelOption(values),
    simulated,
  };
}

/**
 * The Fashion-MNIST train split and its partition, loaded once per process for each data spec:
 * the agents of one agent-host share one copy of the images (each then copies out only its share).
 */
export class TrainSplitCache {
  private readonly loaded = new Map<string, Promise<{ train: LabeledImageDataset; split: SimulationSplit }>>();

  get(spec: SimulationDataSpec): Promise<{ train: LabeledImageDataset; split: SimulationSplit }> {
    const key = JSON.stringify(spec);
    let entry = this.loaded.get(key);
    if (entry === undefined) {
      entry = loadSimulationTrain(spec).then((train) => ({ train, split: splitSimulation(train.labels, spec) }));
      this.loaded.set(key, entry);
    }
    return entry;
  }
}

/** An agent's images, and their count once known (a folder is read at the first round's input size). */
export interface AgentImages {
  readonly images: ImageDataset | ((input: InputShape) => Promise<ImageDataset>);
  count: number | undefined;
}

/** The images of an agent: a simulated client's fixed Fashion-MNIST share (28x28x1), or its private folder. */
export async function agentImages(setup: AgentSetup, logger: Logger, cache: TrainSplitCache): Promise<AgentImages> {
  const { values, labels, simulated } = setup;
  if (simulated !== undefined) {
    const { train, split } = await cache.get(simulated.spec);
    // The simulated private folder: this client's images only, with their labels only if it opted in.
    const own = subsetDataset(train, split.parts[simulated.index] as number[]);
    const share: ImageDataset = labels === 'dataset' ? own : { ...own, labels: null, classNames: [] };
    if (labels !== undefined) checkLabelledImages(share, `client ${simulated.index}'s share`);
    return { images: share, count: share.count };
  }
  const dir = values.data as string;
  const files = values['file-list'] === undefined ? undefined : await readFileList(values['file-list']);
  const reader = new FolderReader(values, 'agent', (line) => logger.warn(line));
  const result: AgentImages = {
    count: undefined,
    images: async (input) => {
      logger.info({ data: dir, input, files: files?.length ?? 'all' }, "reading the image folder at the coordinator's input size");
      const folder = await reader.read(dir, 'agent data', { height: input.height, width: input.width, channels: input.channels as 1 | 3, labeled: labels === 'folders', ...(files !== undefined ? { files } : {}) });
      if (folder.count < 2) throw new Error(`${folder.count} readable PNG or JPEG images under ${dir}; contrastive training needs at least 2`);
      if (labels !== undefined) {
        checkLabelledImages(folder, dir);
        logger.info({ classes: folder.classNames }, 'labels: the sub-folder names, used only on this agent');
      }
      result.count = folder.count;
      return folder;
    },
  };
  return result;
}

/** A started agent and the updates it has sent so far. */
export interface RunningAgent {
  readonly agent: AgentHandle;
  readonly images: AgentImages;
  readonly logger: Logger;
  updatesSent: number;
}

/** `base`, binding --agent-id when given (the agent library binds its own lines' agentId itself). */
export function setupLogger(setup: AgentSetup, base: Logger): Logger {
  const agentId = setup.values['agent-id'];
  return agentId === undefined ? base : base.child({ agentId });
}

/** Builds the agent's trainer and starts the agent (the tfjs backend must be initialised). */
export async function startSetupAgent(setup: AgentSetup, images: AgentImages, base: Logger, gate: TrainingGate | undefined): Promise<RunningAgent> {
  const logger = setupLogger(setup, base);
  const { values, labels, maxSteps, maxMinutes, coordinatorKey, ca, enrolmentToken, redTeam } = setup;
  if (redTeam !== undefined) logger.warn({ redTeam }, 'red team: this agent will misbehave in secure rounds (a robustness test)');
  if (values['trust-on-first-use']) logger.warn('--trust-on-first-use: the first coordinator key seen will be trusted; pin it with --coordinator-key instead');
  const trainer = createContrastiveTrainer({
    dataset: images.images,
    workers: setup.workers,
    logger,
    useLabels: labels !== undefined,
    onPlan: (plan) => logger.info({ round: plan.round, model: plan.spec.name, recipe: plan.recipe, loss: describeLoss(plan.loss, plan.labelled) }, "training the coordinator's recipe"),
    ...(maxSteps !== undefined ? { maxStepsPerRound: maxSteps } : {}),
    ...(maxMinutes !== undefined ? { maxMinutesPerRound: maxMinutes } : {}),
    ...(gate !== undefined ? { gate } : {}),
  });
  const agent = await startAgent({
    coordinatorUrl: setup.coordinatorUrl,
    stateDir: resolve(values.state ?? 'fedclr-agent'),
    trainer,
    ...(images.count !== undefined ? { exampleCount: images.count } : {}),
    // DP noise and clipping are the agent's; FedProx (the round's fedproxMu) is the trainer's.
    capabilities: ['fedprox', 'dp'],
    logger: base,
    ...(coordinatorKey !== undefined ? { coordinatorKey } : { trustOnFirstUse: true }),
    ...(ca ?? {}),
    ...(values.insecure ? { insecure: true } : {}),
    policy: setup.policy,
    ...(setup.privacyBudget === undefined ? {} : { privacyBudget: setup.privacyBudget }),
    ...(values['agent-id'] !== undefined ? { agentId: values['agent-id'] } : {}),
    ...(enrolmentToken !== undefined ? { enrolmentToken } : {}),
    ...(redTeam !== undefined ? { secagg: { redTeam } } : {}),
  });
  const simulated = setup.simulated === undefined ? {} : { index: setup.simulated.index, clients: setup.simulated.clients };
  logger.info({ agentId: agent.agentId, images: images.count ?? null, ...simulated, policy: agent.policy }, 'agent started');
  const running: RunningAgent = { agent, images, logger, updatesSent: 0 };
  agent.events.on('update-sent', () => running.updatesSent++);
  return running;
}

/** How one supervised agent ended. */
export interface AgentOutcome {
  readonly running: RunningAgent;
  readonly exit: AgentExit;
  /** Whether it ended as it should: completed, stopping, closed, or stopped by a signal. */
  readonly ok: boolean;
}

/**
 * Runs the agents until every one has stopped, or until one fails (the others are then closed:
 * in a simulation one failed agent stops its process, as it does with one agent a process).
 * SIGTERM, SIGINT and the parent going away (IPC 'disconnect') close them all.
 */
export async function superviseAgents(agents: readonly RunningAgent[], logger: Logger): Promise<{ outcomes: AgentOutcome[]; signalled: NodeJS.Signals | 'parent-gone' | undefined }> {
  let signalled: NodeJS.Signals | 'parent-gone' | undefined;
  let closing = false;
  const forced = new Map<RunningAgent, (exit: AgentExit) => void>();
  const closeAll = (why: string): void => {
    if (closing) return;
    closing = true;
    // Keep the process alive until every agent settles.
    const keepAlive = setInterval(() => undefined, 1000);
    void all.finally(() => clearInterval(keepAlive));
    for (const a of agents) {
      void a.agent.close();
      // An agent closed while its socket is still connecting never settles `done` (socket.io-client
      // fires no 'disconnect' for a socket that never connected): do not wait for it forever.
      setTimeout(() => {
        a.logger.warn('the agent did not confirm its shutdown within 5 s; exiting anyway');
        forced.get(a)?.({ reason: 'closed', message: why });
      }, 5000).unref();
    }
  };
  const okExit = (exit: AgentExit): boolean => signalled !== undefined || exit.reason === 'completed' || exit.reason === 'stopping' || exit.reason === 'closed';
  const all = Promise.all(
    agents.map(async (running): Promise<AgentOutcome> => {
      const exit = await Promise.race([running.agent.done, new Promise<AgentExit>((r) => forced.set(running, r))]);
      const ok = okExit(exit);
      if (!ok && !closing) {
        running.logger.error({ exit: exit.reason, message: exit.error?.message ?? exit.message }, 'agent failed: stopping the other agents of this process');
        closeAll(`another agent of this process failed (${running.agent.agentId})`);
      }
      return { running, exit, ok };
    }),
  );
  const onSignal = (signal: NodeJS.Signals | 'parent-gone'): void => {
    if (signalled !== undefined) return;
    signalled = signal;
    logger.info({ signal, agents: agents.length }, 'stopping');
    closeAll(`stopped by ${signal}`);
  };
  const onTerm = (): void => onSignal('SIGTERM');
  const onInt = (): void => onSignal('SIGINT');
  const onGone = (): void => onSignal('parent-gone');
  process.once('SIGTERM', onTerm);
  process.once('SIGINT', onInt);
  if (typeof process.send === 'function') process.once('disconnect', onGone);
  try {
    const outcomes = await all;
    // An agent stopped with the others after a signal counts as stopped by it.
    return { outcomes: outcomes.map((o) => ({ ...o, ok: o.ok || signalled !== undefined })), signalled };
  } finally {
    process.removeListener('SIGTERM', onTerm);
    process.removeListener('SIGINT', onInt);
    process.removeListener('disconnect', onGone);
  }
}

/** One agent's end, as a JSON-able summary. */
export function agentSummary(outcome: AgentOutcome, signalled: string | undefined): Record<string, unknown> {
  const { running, exit } = outcome;
  return {
    agentId: running.agent.agentId,
    exit: exit.reason,
    ...(exit.message !== undefined ? { message: exit.message } : {}),
    ...(signalled !== undefined ? { signal: signalled } : {}),
    updatesSent: running.updatesSent,
    images: running.images.count ?? null,
  };
}
