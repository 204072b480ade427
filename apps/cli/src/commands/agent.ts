// fedclr agent: an edge agent that trains the federation's model on a private image folder (or,
// in a simulation, on its partition of Fashion-MNIST) and uploads only its weight updates. The
// flags, images and start-up are agent-setup.ts's (fedclr agent-host runs several agents with them).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadOrCreateIdentity } from '@fedclr/agent';
import { initBackend } from '@fedclr/tensor';
import { agentImages, agentSummary, parseAgentSetup, setupLogger, startSetupAgent, superviseAgents, TrainSplitCache } from '../agent-setup.js';
import { folderFlagsHelp } from '../folders.js';
import { labelsHelp } from '../labels.js';
import { ipcTrainingGate, parentChannel } from '../slots.js';
import { stderrLogger } from './coordinator.js';

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
  --workers N                   training threads (default min(2, cores); on tfjs-node, in-process on its native threads)
  --steps-per-round S --minutes-per-round M   caps on local training per round
  --state DIR                   identity (Ed25519 key) directory (default ./fedclr-agent)
  --agent-id ID --log-level info --json
  simulation (fedclr simulate passes these): --dataset fashion-mnist --client I/N
    --partition iid|dirichlet|shards --alpha 0.5 --shards-per-client 2 --seed 0 --holdout H --limit N
    --train-slots ipc           train only while holding a slot granted by the parent process over IPC
    --red-team garbage-shares   robustness tests (fedclr simulate --byzantine): send garbage encrypted shares in
                                secure rounds; honest agents prove it and the coordinator excludes this agent`;

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
  const channel = parentChannel();
  const setup = await parseAgentSetup(argv, channel === undefined ? { ipcRefusal: '--train-slots ipc needs an IPC channel to the parent process (fedclr simulate forks its agents with one); this process has none' } : {});
  const gate = setup.ipcSlots && channel !== undefined ? ipcTrainingGate(channel) : undefined;
  const logger = stderrLogger(setup.logLevel, 'agent');
  const images = await agentImages(setup, setupLogger(setup, logger), new TrainSplitCache());
  await initBackend();
  const running = await startSetupAgent(setup, images, logger, gate);
  const { outcomes, signalled } = await superviseAgents([running], logger);
  const outcome = outcomes[0] as (typeof outcomes)[number];
  const { exit } = outcome;
  if (setup.values.json) out(JSON.stringify(agentSummary(outcome, signalled)));
  else out(`agent ${running.agent.agentId} stopped (${exit.reason}${exit.message !== undefined ? `: ${exit.message}` : ''}) after sending ${running.updatesSent} updates`);
  if (!outcome.ok) log(`fedclr agent: ${exit.error?.message ?? exit.message ?? exit.reason}`);
  return outcome.ok ? 0 : 1;
}
