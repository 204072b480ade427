// The coordinator's Prometheus series, through prom-client (one Registry per coordinator, so that
// several coordinators in one process, as in the tests, do not share series). Conventional
// names: counters end in _total, durations are histograms in seconds, agent counts are gauges.
// Every series name of the former hand-written registry is kept.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

type Labels = Readonly<Record<string, string>>;

/** What GET /metrics renders. */
export interface MetricsRegistry {
  readonly contentType: string;
  render(): Promise<string>;
}

/**
 * A prom-client counter that also answers `get(labels)` synchronously (prom-client's get() is
 * async): the tests and the logs read it.
 */
export class CountingCounter {
  private readonly counts = new Map<string, number>();
  constructor(private readonly counter: Counter<string>) {}
  inc(labels?: Labels, by = 1): void {
    if (labels === undefined) this.counter.inc(by);
    else this.counter.inc(labels, by);
    const k = key(labels);
    this.counts.set(k, (this.counts.get(k) ?? 0) + by);
  }
  get(labels?: Labels): number {
    return this.counts.get(key(labels)) ?? 0;
  }
}

function key(labels: Labels | undefined): string {
  return labels === undefined ? '' : JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
}

const ROUND_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
const STAGE_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800];

/** The coordinator's series. */
export function createCoordinatorMetrics(live: {
  connected: () => number;
  authenticated?: () => number;
  ready: () => number;
  active: () => number;
  cohort?: () => number;
  round: () => number;
  /** Open dashboard event streams. */
  streams?: () => number;
  /** DP runs only: epsilon spent (at `delta`), and the budget if any. */
  epsilon?: () => number;
  delta?: number;
  targetEpsilon?: number | undefined;
}) {
  const registers = [new Registry()];
  const [registry] = registers as [Registry];
  const gauge = (name: string, help: string, value: () => number): Gauge<string> =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(value());
      },
    });
  const counter = (name: string, help: string, labelNames: string[] = []): CountingCounter => new CountingCounter(new Counter({ name, help, labelNames, registers }));

  // process_* and nodejs_* (CPU, memory, event loop lag, GC): the event-loop lag shows whether
  // anything (a dashboard attached, say) delays the coordinator's loop.
  collectDefaultMetrics({ register: registry });

  const { epsilon, delta, targetEpsilon } = live;
  if (epsilon !== undefined && delta !== undefined) {
    gauge('fedclr_dp_epsilon', 'Epsilon spent by the committed rounds (RDP accountant, at fedclr_dp_delta)', epsilon);
    gauge('fedclr_dp_delta', 'Delta at which fedclr_dp_epsilon is reported', () => delta);
    if (targetEpsilon !== undefined) gauge('fedclr_dp_target_epsilon', 'The privacy budget: no round starts that would exceed it', () => targetEpsilon);
  }
  const render: MetricsRegistry = { contentType: registry.contentType, render: () => registry.metrics() };
  return {
    registry: render,
    roundsStarted: counter('fedclr_rounds_started_total', 'Rounds started (cohort sampled and round-start sent)'),
    roundsCompleted: counter('fedclr_rounds_completed_total', 'Rounds completed and committed'),
    roundsFailed: counter('fedclr_rounds_failed_total', 'Rounds that failed or were aborted, by status', ['status']),
    roundDuration: new Histogram({ name: 'fedclr_round_duration_seconds', help: 'Duration of completed rounds, start to commit', buckets: ROUND_BUCKETS, registers }),
    stageDuration: new Histogram({
      name: 'fedclr_round_stage_duration_seconds',
      help: 'Time a round spent in each engine stage (inviting, collecting, aggregating, committing), by stage',
      labelNames: ['stage'],
      buckets: STAGE_BUCKETS,
      registers,
    }),
    updatesAccepted: counter('fedclr_updates_accepted_total', 'Updates accepted into an aggregate'),
    updatesRejected: counter('fedclr_updates_rejected_total', 'Updates rejected, by reason', ['reason']),
    handshakesRejected: counter('fedclr_handshakes_rejected_total', 'Hellos or key proofs refused, by reason', ['reason']),
    bytesIn: counter('fedclr_bytes_received_total', 'Bytes received from agents (socket.io payloads)'),
    bytesOut: counter('fedclr_bytes_sent_total', 'Bytes sent to agents (socket.io payloads)'),
    agentsConnected: gauge('fedclr_agents_connected', 'Open agent connections', live.connected),
    ...(live.authenticated === undefined ? {} : { agentsAuthenticated: gauge('fedclr_agents_authenticated', 'Agents whose handshake (signed ready) verified', live.authenticated) }),
    agentsReady: gauge('fedclr_agents_ready', 'Authenticated agents available for rounds', live.ready),
    agentsActive: gauge('fedclr_agents_active', 'Agents in the running round that have not answered yet', live.active),
    ...(live.cohort === undefined ? {} : { agentsInCohort: gauge('fedclr_agents_in_cohort', 'Cohort size of the running round (0 between rounds)', live.cohort) }),
    currentRound: gauge('fedclr_round_id', 'Id of the running or last round', live.round),
    ...(live.streams === undefined ? {} : { dashboardStreams: gauge('fedclr_dashboard_streams', 'Open dashboard event streams (GET /api/events)', live.streams) }),
  };
}

export type CoordinatorMetrics = ReturnType<typeof createCoordinatorMetrics>;
