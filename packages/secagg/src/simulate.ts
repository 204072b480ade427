// In-process router for one session: agents and the coordinator exchange messages through a
// FIFO queue, no sockets. Used by the tests, the benchmark and `fedclr simulate`. Dropouts are
// scripted per stage; a stage the coordinator cannot finish for lack of answers is closed the
// way a deadline would close it.
import type { SecAggAgent } from './agent.js';
import { messageByteLength, type AgentMessage, type SecAggMessage, type ServerMessage, type Stage } from './messages.js';
import type { SecAggServer, ServerStage, ServerStatus } from './server.js';

/** Stages an agent can go silent before (it never sends that stage's message, nor later ones). */
export type DropPoint = 'advertise' | 'share-keys' | 'masked-input' | 'unmask-response';

export interface TimingEvent {
  readonly party: 'agent' | 'server';
  readonly id: string;
  /** The stage of the message handled ('input' for setInput, 'deadline' for stageDeadline). */
  readonly stage: Stage | 'input' | 'deadline';
  /** Server events: the coordinator's stage when the call started. */
  readonly serverStage?: ServerStage;
  /** Wall-clock milliseconds. */
  readonly ms: number;
  /** Process CPU milliseconds (user + system, all threads) over the call: robust to a busy machine. */
  readonly cpuMs: number;
}

export interface SimulationOptions {
  readonly server: SecAggServer;
  readonly agents: ReadonlyMap<string, SecAggAgent>;
  /** The encoded input of an agent, called once its session config is known. */
  readonly input: (id: string, agent: SecAggAgent) => Uint32Array;
  /** 'early': right after setup (training overlaps key setup); 'late': once shares arrived. */
  readonly inputTiming?: 'early' | 'late';
  readonly dropBefore?: Partial<Record<DropPoint, readonly string[]>>;
  readonly onTiming?: (event: TimingEvent) => void;
  /** Called for every message actually sent, with its canonical byte length. */
  readonly onSend?: (from: string, message: SecAggMessage, bytes: number) => void;
}

export interface SimulationOutcome {
  readonly status: ServerStatus;
  /** Agents that went silent, with the stage they skipped. */
  readonly dropped: ReadonlyMap<string, DropPoint>;
}

const now = (): number => performance.now();
const cpu = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

export async function runInProcess(options: SimulationOptions): Promise<SimulationOutcome> {
  const { server, agents } = options;
  const timing = options.onTiming ?? (() => undefined);
  const send = options.onSend ?? (() => undefined);
  const inputTiming = options.inputTiming ?? 'early';
  const dropped = new Map<string, DropPoint>();
  const dropAt = new Map<string, DropPoint>();
  for (const [point, ids] of Object.entries(options.dropBefore ?? {}) as [DropPoint, readonly string[]][]) {
    for (const id of ids) dropAt.set(id, point);
  }
  const queue: ServerMessage[] = [];
  const fromServer = (messages: readonly ServerMessage[]): void => {
    for (const m of messages) {
      send(server.serverId, m, messageByteLength(m));
      queue.push(m);
    }
  };

  const toServer = async (id: string, messages: readonly AgentMessage[]): Promise<void> => {
    for (const m of messages) {
      if (dropped.has(id)) return;
      if (dropAt.get(id) === m.stage) {
        dropped.set(id, m.stage as DropPoint);
        return;
      }
      send(id, m, messageByteLength(m));
      const serverStage = server.stage;
      const start = now();
      const startCpu = cpu();
      const step = await server.receive(m);
      timing({ party: 'server', id, stage: m.stage, serverStage, ms: now() - start, cpuMs: cpu() - startCpu });
      fromServer(step.messages);
    }
  };

  const provideInput = async (id: string, agent: SecAggAgent): Promise<void> => {
    const vector = options.input(id, agent);
    const start = now();
    const startCpu = cpu();
    const out = await agent.setInput(vector);
    timing({ party: 'agent', id, stage: 'input', ms: now() - start, cpuMs: cpu() - startCpu });
    await toServer(id, out);
  };

  fromServer(server.start());
  for (;;) {
    const message = queue.shift();
    if (message === undefined) {
      if (server.status.kind !== 'running') break;
      const serverStage = server.stage;
      const start = now();
      const startCpu = cpu();
      const step = await server.stageDeadline();
      timing({ party: 'server', id: server.serverId, stage: 'deadline', serverStage, ms: now() - start, cpuMs: cpu() - startCpu });
      fromServer(step.messages);
      continue;
    }
    for (const id of message.recipients) {
      const agent = agents.get(id);
      if (agent === undefined || dropped.has(id)) continue;
      const start = now();
      const startCpu = cpu();
      const out = await agent.receive(message);
      timing({ party: 'agent', id, stage: message.stage, ms: now() - start, cpuMs: cpu() - startCpu });
      await toServer(id, out);
      if (dropped.has(id)) continue;
      if (message.stage === 'setup' && inputTiming === 'early') await provideInput(id, agent);
      if (message.stage === 'shares' && inputTiming === 'late') await provideInput(id, agent);
    }
  }
  return { status: server.status, dropped };
}
