// fedclr agent: an edge agent that trains the federation's model on a private image folder (or,
// in a simulation, on its partition of Fashion-MNIST) and uploads only its weight updates.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  createContrastiveTrainer,
  loadOrCreateIdentity,
  InsecureUrlError,
  isLoopbackHost,
  parseCoordinatorKey,
  RED_TEAM_MODES,
  startAgent,
  type AgentExit,
  type RedTeamMode,
  type RoundPolicy,
  type TrainingGate,
} from '@fedclr/agent';
import { stat } from 'node:fs/promises';
import { describeLoss, type InputShape } from '@fedclr/contrastive';
import { subsetDataset, type ImageDataset } from '@fedclr/data';
import { DEFAULT_DP_DELTA } from '@fedclr/coordinator';
import { initBackend } from '@fedclr/tensor';
import { defaultWorkers, intOption, numberOption, nonNegativeOption } from '../common.js';
import { UsageError } from '../errors.js';
import { FOLDER_FLAG_OPTIONS, folderFlagsHelp, FolderReader } from '../folders.js';
import { checkLabelledImages, labelsHelp, labelsOption } from '../labels.js';
import { loadSimulationTrain, partitionOption, splitSimulation, type SimulationDataSpec } from '../federation.js';
import { RECIPE_FLAG_OPTIONS } from '../recipe-flags.js';
import { ipcTrainingGate, parentChannel } from '../slots.js';
import { logLevelOption, stderrLogger } from './coordinator.js';

export const agentHelp = `fedclr agent --coordinator URL (--data DIR | --dataset fashion-mnist --client I/N) [options]
       fedclr agent id [--state DIR] [--agent-id ID] [--json]   print this agent's id and public key (hex), to enrol
                                it (creates the identity if missing; does not connect)
  --token T | --token-file F    one-time enrolment token from the operator (fedclr admin token; the file's first line):
                                enrols this key at its first successful handshake; ignored once enrolled. Without it,
                                the operator enrols the key printed by \`fedclr agent id\` (fedclr admin enroll ID KEY)
  --coordinator URL             e.g. https://coord.example:8080 (http:// only to loopback, or with --insecure)
  --ca FILE                     PEM CA certificate(s) that signed the coordinator's TLS certificate (a private CA;
                                default: the system CA store). A certificate that does not verify stops the agent
  --insecure                    allow http:// (no TLS) to a host that is not loopback
  --coordinator-key KEY         the coordinator's Ed25519 public key (hex or base64), pinned: every message from
                                the coordinator must be signed by it. The coordinator prints it at start
                                ('coordinator public key ...'); GET /api/status returns it as coordinatorKey
  --trust-on-first-use          without --coordinator-key: trust the first key seen and refuse any later change
                                (weaker: a first connection to an impostor pins the impostor). One of the two is required
  round policy (saved in the --state dir; a later flag overrides and is saved; a round that breaks it is refused):
  --allow-plain                 also train in plain (unmasked) rounds; default: secure aggregation only
  --require-secure              back to secure aggregation only (after an earlier --allow-plain)
  --min-cohort N                refuse rounds that sample fewer than N agents (default 5)
  --min-noise-multiplier S      refuse rounds without DP noise multiplier >= S (default 0: any, or no DP)
  --max-epsilon E               this agent's own privacy budget: join only DP rounds, and none that would take its
                                epsilon (its own RDP accountant over the rounds it revealed an update for, q = 1,
                                kept in <state>/privacy-budget.json) above E. Whatever the coordinator reports
  --dp-delta D                  the delta of --max-epsilon (default 1e-5)
  --require-sampling            refuse rounds whose cohort the coordinator chose: only Poisson rounds (coordinator
                                --sampling-rate), which this agent joins only when its own coin volunteers it
  --allow-coordinator-sampling  back to accepting coordinator-chosen cohorts (after an earlier --require-sampling)
  --data DIR                    the private image folder (PNG/JPEG, recursive), read at the image size and
                                channels of the coordinator's model (each image is resized)
${labelsHelp(32, ["opt-in: this agent's own labels, which never leave it:"])}
                                without them, supcon rounds are refused and triplet and margin train label-free
  --file-list FILE              train only on these files of --data (one path relative to DIR a line; fedclr simulate
                                --data gives each agent its share this way)
${folderFlagsHelp(32)}
  The coordinator sends the training recipe with every round (model, image size, augmentation, optimizer,
  rate, batch, loss, temperature, weight decay): the agent trains exactly that and refuses a recipe it cannot run
  (FEDCLR_AGENT_RECIPE_REFUSED); the recipe flags of fedclr coordinator are refused here.
  Limits of this agent (they only ever cut its own work):
  --workers N                   training threads (default min(2, cores))
  --steps-per-round S --minutes-per-round M   caps on local training per round
  --state DIR                   identity (Ed25519 key) directory (default ./fedclr-agent)
  --agent-id ID --log-level info --json
  simulation (fedclr simulate passes these): --dataset fashion-mnist --client I/N
    --partition iid|dirichlet|shards --alpha 0.5 --shards-per-client 2 --seed 0 --holdout H --limit N
    --train-slots ipc           train only while holding a slot granted by the parent process over IPC
    --red-team garbage-shares   robustness tests (fedclr simulate --byzantine): send garbage encrypted shares in
                                secure rounds; honest agents prove it and the coordinator excludes this agent`;

/** `I/N`: client I (0-based) of N. */
function clientOption(raw: string): { index: number; clients: number } {
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

/** fedclr agent id: the identity an operator enrols (fedclr admin enroll ID KEY). */
async function agentIdCommand(argv: string[], out: (line: string) => void): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { state: { type: 'string' }, 'agent-id': { type: 'string' }, json: { type: 'boolean', default: false } },
    strict: true,
  });
  const id = await loadOrCreateIdentity(resolve(values.state ?? 'fedclr-agent'), values['agent-id']);
  const publicKey = Buffer.from(id.publicKey).toString('hex');
  if (values.json) out(JSON.stringify({ agentId: id.agentId, publicKey, identity: id.path, created: id.created }));
  else {
    out(`agent id    ${id.agentId}`);
    out(`public key  ${publicKey}`);
    out(`${id.created ? 'created' : 'identity'}     ${id.path}`);
    out(`enrol it:   fedclr admin enroll --coordinator URL ${id.agentId} ${publicKey}`);
  }
  return 0;
}

export async function agentCommand(argv: string[], out: (line: string) => void, log: (line: string) => void): Promise<number> {
  if (argv[0] === 'id') return agentIdCommand(argv.slice(1), out);
  const { values } = parseArgs({
    args: argv,
    options: {
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
    },
    strict: true,
  });
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
  let gate: TrainingGate | undefined;
  if (values['train-slots'] !== undefined) {
    if (values['train-slots'] !== 'ipc') throw new UsageError(`--train-slots takes only 'ipc' (a slot from the parent process, as fedclr simulate passes it), got '${values['train-slots']}'`);
    const channel = parentChannel();
    if (channel === undefined) throw new UsageError('--train-slots ipc needs an IPC channel to the parent process (fedclr simulate forks its agents with one); this process has none');
    gate = ipcTrainingGate(channel);
  }
  // The data flags' own errors first (they are cheap to check), then trust and policy: all before any data loads.
  if (values.dataset !== undefined) {
    if (values.dataset !== 'fashion-mnist') throw new UsageError(`unknown --dataset '${values.dataset}'; available: fashion-mnist`);
    if (values.client === undefined) throw new UsageError('--dataset needs --client I/N (this agent is client I of N)');
    clientOption(values.client);
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
  const logger = stderrLogger(logLevelOption(values), 'agent');
  const redTeam = values['red-team'] as RedTeamMode | undefined;
  if (redTeam !== undefined && !(RED_TEAM_MODES as readonly string[]).includes(redTeam)) {
    throw new UsageError(`--red-team must be one of ${RED_TEAM_MODES.join(', ')}, got '${redTeam}'`);
  }
  if (redTeam !== undefined) logger.warn({ redTeam }, 'red team: this agent will misbehave in secure rounds (a robustness test)');
  if (values['trust-on-first-use']) logger.warn('--trust-on-first-use: the first coordinator key seen will be trusted; pin it with --coordinator-key instead');

  // The images: a simulated client's fixed Fashion-MNIST share (28x28x1: a recipe for another input
  // is refused), or the private folder, read at the recipe's input size on the first round.
  let images: ImageDataset | ((input: InputShape) => Promise<ImageDataset>);
  let imageCount: number | undefined;
  let simulated: { index: number; clients: number } | undefined;
  if (values.dataset !== undefined) {
    if (values.dataset !== 'fashion-mnist') throw new UsageError(`unknown --dataset '${values.dataset}'; available: fashion-mnist`);
    if (values.client === undefined) throw new UsageError('--dataset needs --client I/N (this agent is client I of N)');
    simulated = clientOption(values.client);
    const spec: SimulationDataSpec = {
      dataset: 'fashion-mnist',
      clients: simulated.clients,
      partition: partitionOption(values),
      seed: intOption(values, 'seed', 0, 0),
      ...(values.holdout !== undefined ? { holdout: intOption(values, 'holdout', 0, 0) } : {}),
      ...(values.limit !== undefined ? { limit: intOption(values, 'limit', 60_000) } : {}),
    };
    const train = await loadSimulationTrain(spec);
    const split = splitSimulation(train.labels, spec);
    // The simulated private folder: this client's images only, with their labels only if it opted in.
    const own = subsetDataset(train, split.parts[simulated.index] as number[]);
    const share: ImageDataset = labels === 'dataset' ? own : { ...own, labels: null, classNames: [] };
    if (labels !== undefined) checkLabelledImages(share, `client ${simulated.index}'s share`);
    images = share;
    imageCount = share.count;
  } else {
    if (values.client !== undefined || values.partition !== undefined) throw new UsageError('--client and --partition go with --dataset (simulation), not with --data');
    const dir = values.data as string;
    const info = await stat(dir).catch(() => undefined);
    if (info === undefined || !info.isDirectory()) throw new UsageError(`--data ${dir} is not a readable directory`);
    const files = values['file-list'] === undefined ? undefined : await readFileList(values['file-list']);
    const reader = new FolderReader(values, 'agent', (line) => logger.warn(line));
    images = async (input) => {
      logger.info({ data: dir, input, files: files?.length ?? 'all' }, "reading the image folder at the coordinator's input size");
      const folder = await reader.read(dir, 'agent data', { height: input.height, width: input.width, channels: input.channels as 1 | 3, labeled: labels === 'folders', ...(files !== undefined ? { files } : {}) });
      if (folder.count < 2) throw new Error(`${folder.count} readable PNG or JPEG images under ${dir}; contrastive training needs at least 2`);
      if (labels !== undefined) {
        checkLabelledImages(folder, dir);
        logger.info({ classes: folder.classNames }, 'labels: the sub-folder names, used only on this agent');
      }
      imageCount = folder.count;
      return folder;
    };
  }
  await initBackend();
  const trainer = createContrastiveTrainer({
    dataset: images,
    workers,
    logger,
    useLabels: labels !== undefined,
    onPlan: (plan) => logger.info({ round: plan.round, model: plan.spec.name, recipe: plan.recipe, loss: describeLoss(plan.loss, plan.labelled) }, "training the coordinator's recipe"),
    ...(maxSteps !== undefined ? { maxStepsPerRound: maxSteps } : {}),
    ...(maxMinutes !== undefined ? { maxMinutesPerRound: maxMinutes } : {}),
    ...(gate !== undefined ? { gate } : {}),
  });
  const agent = await startAgent({
    coordinatorUrl: values.coordinator,
    stateDir: resolve(values.state ?? 'fedclr-agent'),
    trainer,
    ...(imageCount !== undefined ? { exampleCount: imageCount } : {}),
    // DP noise and clipping are the agent's; FedProx (the round's fedproxMu) is the trainer's.
    capabilities: ['fedprox', 'dp'],
    logger,
    ...(coordinatorKey !== undefined ? { coordinatorKey } : { trustOnFirstUse: true }),
    ...(ca ?? {}),
    ...(values.insecure ? { insecure: true } : {}),
    policy,
    ...(privacyBudget === undefined ? {} : { privacyBudget }),
    ...(values['agent-id'] !== undefined ? { agentId: values['agent-id'] } : {}),
    ...(enrolmentToken !== undefined ? { enrolmentToken } : {}),
    ...(redTeam !== undefined ? { secagg: { redTeam } } : {}),
  });
  logger.info({ agentId: agent.agentId, images: imageCount ?? null, ...(simulated ?? {}), policy: agent.policy }, 'agent started');
  let rounds = 0;
  agent.events.on('update-sent', () => rounds++);

  let signalled: NodeJS.Signals | 'parent-gone' | undefined;
  let resolveForced: (exit: AgentExit) => void = () => undefined;
  const forced = new Promise<AgentExit>((r) => {
    resolveForced = r;
  });
  const onSignal = (signal: NodeJS.Signals | 'parent-gone'): void => {
    if (signalled !== undefined) return;
    signalled = signal;
    logger.info({ signal }, 'stopping the agent');
    void agent.close();
    // An agent closed while its socket is still connecting never settles `done` (socket.io-client
    // fires no 'disconnect' for a socket that never connected): do not wait for it forever.
    setTimeout(() => {
      logger.warn('the agent did not confirm its shutdown within 5 s; exiting anyway');
      resolveForced({ reason: 'closed', message: `stopped by ${signal}` });
    }, 5000).unref();
    // Keep the process alive until one of the two settles.
    const keepAlive = setInterval(() => undefined, 1000);
    void Promise.race([agent.done, forced]).finally(() => clearInterval(keepAlive));
  };
  const onTerm = (): void => onSignal('SIGTERM');
  const onInt = (): void => onSignal('SIGINT');
  const onGone = (): void => onSignal('parent-gone');
  process.once('SIGTERM', onTerm);
  process.once('SIGINT', onInt);
  if (typeof process.send === 'function') process.once('disconnect', onGone);
  let exit: AgentExit;
  try {
    exit = await Promise.race([agent.done, forced]);
  } finally {
    process.removeListener('SIGTERM', onTerm);
    process.removeListener('SIGINT', onInt);
    process.removeListener('disconnect', onGone);
  }
  const ok = signalled !== undefined || exit.reason === 'completed' || exit.reason === 'stopping' || exit.reason === 'closed';
  const summary = { agentId: agent.agentId, exit: exit.reason, ...(exit.message !== undefined ? { message: exit.message } : {}), ...(signalled !== undefined ? { signal: signalled } : {}), updatesSent: rounds, images: imageCount ?? null };
  if (values.json) out(JSON.stringify(summary));
  else out(`agent ${agent.agentId} stopped (${exit.reason}${exit.message !== undefined ? `: ${exit.message}` : ''}) after sending ${rounds} updates`);
  if (!ok) log(`fedclr agent: ${exit.error?.message ?? exit.message ?? exit.reason}`);
  return ok ? 0 : 1;
}
