// An agent host of the chaos harness (forked by chaos-run.ts): several real agents (startAgent,
// the fake trainer, their own identity and state dir) in one process, each on its own socket
// through chaos-connector.ts. Reports what it sees to the orchestrator over IPC in batches
// (every 100 ms) so a thousand agents do not flood the channel.
import { join } from 'node:path';
import { pino } from 'pino';
import { createFakeTrainer, startAgent, type AgentHandle } from '@fedclr/agent';
import { chaosConnector } from './chaos-connector.js';
import { unit } from './chaos-plan.js';

export interface HostedAgent {
  readonly id: string;
  readonly seed: number;
  readonly exampleCount: number;
  readonly trainMs: number;
  readonly latencyMs: number;
}

export interface ChaosHostArgs {
  readonly url: string;
  readonly coordinatorKey: string;
  readonly dir: string;
  readonly seed: number;
  readonly dropout: number;
  readonly scale: number;
  readonly agents: readonly HostedAgent[];
}

/** One observation: [kind, agentId, ...fields]; times are Date.now(). */
export type HostReport =
  | ['welcome', string, number]
  | ['round-start', string, number, number]
  | ['sent', string, number, string, number]
  | ['dropped', string, number, string, number]
  | ['disconnected', string, string]
  | ['exit', string, string];

/** Orchestrator -> host: hold back the unmask responses of about half of the agents in a round. */
export interface HoldUnmaskCommand {
  readonly cmd: 'hold-unmask';
  readonly roundId: number;
  readonly ms: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as ChaosHostArgs;
const logger = pino({ level: process.env['FEDCLR_LOG_LEVEL'] ?? 'warn', base: { svc: 'chaos-agent' } });
let batch: HostReport[] = [];
const flush = (): void => {
  if (batch.length === 0) return;
  process.send?.({ event: 'batch', items: batch });
  batch = [];
};
const flusher = setInterval(flush, 100);
const holds = new Map<number, number>();
process.on('message', (raw) => {
  const m = raw as HoldUnmaskCommand;
  if (m.cmd === 'hold-unmask') holds.set(m.roundId, m.ms);
});

const handles: AgentHandle[] = [];
for (const a of args.agents) {
  const connector = chaosConnector({
    agentId: a.id,
    seed: args.seed,
    dropout: args.dropout,
    latencyMs: a.latencyMs,
    unmaskHoldMs: (roundId) => (unit(args.seed, 'hold', a.id, roundId) < 0.5 ? (holds.get(roundId) ?? 0) : 0),
    observer: {
      sent: (roundId, stage) => batch.push(['sent', a.id, roundId, stage, Date.now()]),
      dropped: (roundId, point) => batch.push(['dropped', a.id, roundId, point, Date.now()]),
    },
  });
  const h = await startAgent({
    coordinatorUrl: args.url,
    stateDir: join(args.dir, a.id),
    agentId: a.id,
    trainer: createFakeTrainer({ seed: a.seed, exampleCount: a.exampleCount, delayMs: a.trainMs, scale: args.scale }),
    connector,
    coordinatorKey: args.coordinatorKey,
    policy: { requireSecure: true, minCohort: 1 },
    // Back within about a second of a restart; jitter spreads the reconnect storm.
    reconnect: { initialDelayMs: 100, maxDelayMs: 1000, jitter: 0.5 },
    connectTimeoutMs: 20_000,
    logger,
  });
  h.events.on('welcome', () => batch.push(['welcome', a.id, Date.now()]));
  h.events.on('round-start', (r) => batch.push(['round-start', a.id, r.roundId, Date.now()]));
  h.events.on('disconnected', (reason) => batch.push(['disconnected', a.id, reason]));
  handles.push(h);
}
const exits = await Promise.all(handles.map(async (h) => ({ id: h.agentId, exit: await h.done })));
for (const e of exits) batch.push(['exit', e.id, e.exit.reason]);
clearInterval(flusher);
flush();
process.disconnect?.();
