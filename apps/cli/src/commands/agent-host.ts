// fedclr agent-host: fedclr simulate's internal (--agents-per-process K): K simulated agents in one
// process, each with its own identity, state dir, socket connection, data share and token (each
// given as the argv of one `fedclr agent`), sharing one tfjs backend and one copy of the train split.
// Agent processes each load node, tfjs and the dataset on their own; a host pays for that once.
//
// Training: the agents train in worker threads (--workers >= 1, each worker with its own wasm
// backend), so that the host's event loop stays free for every agent's heartbeats and uploads;
// the main thread's share of a step (the loss on the gathered embeddings, the optimiser) runs
// without awaiting, so two agents training at once never interleave inside one use of the shared
// engine. With --train-slots ipc they all ask the parent for slots through one gate (unique ids
// on this process's one IPC channel).
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { TrainingGate } from '@fedclr/agent';
import { initBackend } from '@fedclr/tensor';
import { agentImages, agentSummary, parseAgentSetup, setupLogger, startSetupAgent, superviseAgents, TrainSplitCache, type AgentSetup, type RunningAgent } from '../agent-setup.js';
import { UsageError } from '../errors.js';
import { ipcTrainingGate, parentChannel } from '../slots.js';
import { logLevelOption, stderrLogger } from './coordinator.js';

export const agentHostHelp = `fedclr agent-host --agents FILE [--log-level warn]   (internal: fedclr simulate --agents-per-process)
  --agents FILE               JSON {"agents": [[...argv of one fedclr agent...], ...]}: the agents this process runs,
                              each with its own --state, --agent-id, --token and --client; every one needs --workers >= 1
  Prints one JSON line per agent when they stop ({agentId, exit, updatesSent, images}); exits 1 if any failed.`;

/** The --agents file: one `fedclr agent` argv per hosted agent. */
async function readAgentsFile(path: string): Promise<string[][]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read --agents ${path}: ${(err as Error).message}`);
  }
  const agents = (parsed as { agents?: unknown } | null)?.agents;
  if (!Array.isArray(agents) || agents.length === 0 || !agents.every((a) => Array.isArray(a) && a.every((x) => typeof x === 'string'))) {
    throw new UsageError(`--agents ${path} must be {"agents": [[...fedclr agent argv...], ...]} with at least one agent`);
  }
  return agents as string[][];
}

export async function agentHostCommand(argv: string[], out: (line: string) => void, log: (line: string) => void): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { agents: { type: 'string' }, 'log-level': { type: 'string' } }, strict: true });
  if (values.agents === undefined) throw new UsageError('give --agents FILE (fedclr simulate writes it)');
  const argvs = await readAgentsFile(values.agents);
  const setups: AgentSetup[] = [];
  for (const [i, agentArgv] of argvs.entries()) {
    let setup: AgentSetup;
    try {
      setup = await parseAgentSetup(agentArgv);
    } catch (err) {
      // Named by its place in the file; UsageError's own "(see ...)" suffix is added once, here.
      throw new UsageError(`agent ${i + 1} of ${values.agents}: ${(err as Error).message.replace(/ \(see `fedclr --help`\)$/, '')}`);
    }
    // In-process training would hold the shared event loop (every hosted agent's heartbeats) for a whole step.
    if (setup.values['agent-id'] === undefined && argvs.length > 1) throw new UsageError(`agent ${i + 1} of ${values.agents} has no --agent-id: hosted agents share one log, each line names its agent`);
    if (setup.workers < 1 && argvs.length > 1) throw new UsageError(`agent ${i + 1} of ${values.agents} has --workers 0: hosted agents train in worker threads (--workers 1 or more)`);
    setups.push(setup);
  }
  const logger = stderrLogger(logLevelOption(values, 'warn'), 'agent-host');
  let gate: TrainingGate | undefined;
  if (setups.some((s) => s.ipcSlots)) {
    const channel = parentChannel();
    if (channel === undefined) throw new UsageError('--train-slots ipc needs an IPC channel to the parent process (fedclr simulate forks its agent hosts with one); this process has none');
    gate = ipcTrainingGate(channel);
  }
  const cache = new TrainSplitCache();
  await initBackend();
  const agentsLogger = stderrLogger((setups[0] as AgentSetup).logLevel, 'agent');
  const running: RunningAgent[] = [];
  try {
    for (const setup of setups) {
      // Every line of this host's log names its agent (setupLogger, and the agent library's own binding).
      const images = await agentImages(setup, setupLogger(setup, agentsLogger), cache);
      running.push(await startSetupAgent(setup, images, agentsLogger, setup.ipcSlots ? gate : undefined));
    }
  } catch (err) {
    // The agents already started must not keep this process alive after the failure (not awaited:
    // an agent closed while still connecting never settles its close()).
    for (const r of running) void r.agent.close();
    throw err;
  }
  logger.info({ agents: running.length }, 'agent host started');
  const { outcomes, signalled } = await superviseAgents(running, logger);
  for (const o of outcomes) out(JSON.stringify(agentSummary(o, signalled)));
  const failed = outcomes.filter((o) => !o.ok);
  for (const o of failed) log(`fedclr agent-host: ${o.running.agent.agentId}: ${o.exit.error?.message ?? o.exit.message ?? o.exit.reason}`);
  return failed.length === 0 ? 0 : 1;
}
