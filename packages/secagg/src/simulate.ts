// In-process router for one session: agents and the coordinator exchange messages through a
// FIFO queue, no sockets. Used by the tests, the benchmark and `fedclr simulate`. Dropouts are
// scripted per stage; a stage the coordinator cannot finish for lack of answers is closed the
// way a deadline would close it.
import type { SecAggAgent } from './agent.js';
import { messageByteLength, type AgentMessage, type SecAggMessage, type ServerMessage, type Stage } from './messages.js';
import type { SecAggServer, ServerStage, ServerStatus } from './server.js';

/** Stages an agent can go silent before (it never sends that stage's message, nor later ones). */
export type DropPoint = 'advertise' | 'share-keys' | 'share-check' | 'masked-input' | 'consistency' | 'unmask-response';

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
  /** 'early': right after setup (training overlaps key setup); 'late': once participants arrived. */
  readonly inputTiming?: 'early' | 'late';
  readonly dropBefore?: Partial<Record<DropPoint, readonly string[]>>;
  readonly onTiming?: (event: TimingEvent) => void;
  /** Called for every message actually sent, with its canonical byte length. */
  readonly onSend?: (from: string, message: SecAggMessage, bytes: number) => void;
  /**
   * Rewrites an agent's message before the coordinator sees it (a misbehaving agent: the test
   * re-signs with that agent's key). Return undefined to send it unchanged.
   */
  readonly tamper?: (from: string, message: AgentMessage) => AgentMessage | undefined;
  /** An agent threw: without this handler the error propagates; with it the agent goes silent. */
  readonly onAgentError?: (id: string, error: Error) => void;
  /**
   * The coordinator refused an agent's message (state unchanged): without this handler the error
   * propagates; with it the run goes on as if the message was never sent.
   */
  readonly onRefused?: (id: string, message: AgentMessage, error: Error) => void;
}

export interface SimulationOutcome {
  readonly status: ServerStatus;
  /** Agents that went silent, with the stage they skipped. */
  readonly dropped: ReadonlyMap<string, DropPoint>;
  /** Agents that threw (refused to go on), with the error. */
  readonly failed: ReadonlyMap<string, Error>;
}

const now = (): number => performance.now();
const cpu = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

export function runInProcess(options: SimulationOptions): SimulationOutcome {
  const { server, agents } = options;
  const timing = options.onTiming ?? (() => undefined);
  const send = options.onSend ?? (() => undefined);
  const inputTiming = options.inputTiming ?? 'early';
  const dropped = new Map<string, DropPoint>();
  const failed = new Map<string, Error>();
  const guard = (id: string, task: () => AgentMessage[]): AgentMessage[] => {
    if (options.onAgentError === undefined) return task();
    try {
      return task();
    } catch (err) {
      failed.set(id, err as Error);
      options.onAgentError(id, err as Error);
      return [];
    }
  };
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

  const toServer = (id: string, messages: readonly AgentMessage[]): void => {
    for (const original of messages) {
      if (dropped.has(id)) return;
      const m = options.tamper?.(id, original) ?? original;
      if (dropAt.get(id) === m.stage) {
        dropped.set(id, m.stage as DropPoint);
        return;
      }
      send(id, m, messageByteLength(m));
      const serverStage = server.stage;
      const start = now();
      const startCpu = cpu();
      let step: ReturnType<SecAggServer['receive']>;
      try {
        step = server.receive(m);
      } catch (err) {
        if (options.onRefused === undefined) throw err;
        options.onRefused(id, m, err as Error);
        continue;
      }
      timing({ party: 'server', id, stage: m.stage, serverStage, ms: now() - start, cpuMs: cpu() - startCpu });
      fromServer(step.messages);
    }
  };

  const provideInput = (id: string, agent: SecAggAgent): void => {
    const vector = options.input(id, agent);
    const start = now();
    const startCpu = cpu();
    const out = guard(id, () => agent.setInput(vector));
    timing({ party: 'agent', id, stage: 'input', ms: now() - start, cpuMs: cpu() - startCpu });
    toServer(id, out);
  };

  fromServer(server.start());
  for (;;) {
    const message = queue.shift();
    if (message === undefined) {
      if (server.status.kind !== 'running') break;
      const serverStage = server.stage;
      const start = now();
      const startCpu = cpu();
      const step = server.stageDeadline();
      timing({ party: 'server', id: server.serverId, stage: 'deadline', serverStage, ms: now() - start, cpuMs: cpu() - startCpu });
      fromServer(step.messages);
      continue;
    }
    for (const id of message.recipients) {
      const agent = agents.get(id);
      if (agent === undefined || dropped.has(id) || failed.has(id)) continue;
      const start = now();
      const startCpu = cpu();
      const out = guard(id, () => agent.receive(message));
      timing({ party: 'agent', id, stage: message.stage, ms: now() - start, cpuMs: cpu() - startCpu });
      toServer(id, out);
      if (dropped.has(id) || failed.has(id)) continue;
      if (message.stage === 'setup' && inputTiming === 'early') provideInput(id, agent);
      if (message.stage === 'participants' && inputTiming === 'late') provideInput(id, agent);
    }
  }
  return { status: server.status, dropped, failed };
}
