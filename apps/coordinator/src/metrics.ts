// A small Prometheus registry (text exposition format 0.0.4): counters, gauges and histograms
// with optional labels. Enough for the coordinator's handful of series; no dependency.

type Labels = Readonly<Record<string, string>>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelKey(labels: Labels | undefined): string {
  if (labels === undefined) return '';
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${escapeLabel(labels[k] as string)}"`).join(',')}}`;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  render(): string[];
}

export class Counter implements Metric {
  readonly type = 'counter' as const;
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels?: Labels, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels?: Labels): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string[] {
    if (this.values.size === 0) return [`${this.name} 0`];
    return [...this.values].map(([k, v]) => `${this.name}${k} ${formatValue(v)}`);
  }
}

export class Gauge implements Metric {
  readonly type = 'gauge' as const;
  private readonly values = new Map<string, number>();
  private readonly collect: (() => number) | undefined;
  constructor(
    readonly name: string,
    readonly help: string,
    collect?: () => number,
  ) {
    this.collect = collect;
  }
  set(v: number, labels?: Labels): void {
    this.values.set(labelKey(labels), v);
  }
  render(): string[] {
    if (this.collect !== undefined) return [`${this.name} ${formatValue(this.collect())}`];
    if (this.values.size === 0) return [`${this.name} 0`];
    return [...this.values].map(([k, v]) => `${this.name}${k} ${formatValue(v)}`);
  }
}

export class Histogram implements Metric {
  readonly type = 'histogram' as const;
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {
    this.counts = buckets.map(() => 0);
  }
  observe(v: number): void {
    for (let i = 0; i < this.buckets.length; i++) if (v <= (this.buckets[i] as number)) this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += v;
    this.count++;
  }
  render(): string[] {
    const lines = this.buckets.map((b, i) => `${this.name}_bucket{le="${formatValue(b)}"} ${this.counts[i]}`);
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${formatValue(this.sum)}`, `${this.name}_count ${this.count}`);
    return lines;
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];
  register<M extends Metric>(m: M): M {
    this.metrics.push(m);
    return m;
  }
  render(): string {
    const out: string[] = [];
    for (const m of this.metrics) {
      out.push(`# HELP ${m.name} ${m.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${m.name} ${m.type}`, ...m.render());
    }
    return `${out.join('\n')}\n`;
  }
}

/** The coordinator's series. */
export function createCoordinatorMetrics(live: {
  connected: () => number;
  ready: () => number;
  active: () => number;
  round: () => number;
  /** DP runs only: epsilon spent (at `delta`), and the budget if any. */
  epsilon?: () => number;
  delta?: number;
  targetEpsilon?: number | undefined;
}) {
  const registry = new Registry();
  const { epsilon, delta, targetEpsilon } = live;
  if (epsilon !== undefined && delta !== undefined) {
    registry.register(new Gauge('fedclr_dp_epsilon', 'Epsilon spent by the committed rounds (RDP accountant, at fedclr_dp_delta)', epsilon));
    registry.register(new Gauge('fedclr_dp_delta', 'Delta at which fedclr_dp_epsilon is reported', () => delta));
    if (targetEpsilon !== undefined) registry.register(new Gauge('fedclr_dp_target_epsilon', 'The privacy budget: no round starts that would exceed it', () => targetEpsilon));
  }
  return {
    registry,
    roundsCompleted: registry.register(new Counter('fedclr_rounds_completed_total', 'Rounds completed and committed')),
    roundsFailed: registry.register(new Counter('fedclr_rounds_failed_total', 'Rounds that failed or were aborted, by status')),
    roundDuration: registry.register(
      new Histogram('fedclr_round_duration_seconds', 'Duration of completed rounds', [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600]),
    ),
    updatesAccepted: registry.register(new Counter('fedclr_updates_accepted_total', 'Updates accepted into an aggregate')),
    updatesRejected: registry.register(new Counter('fedclr_updates_rejected_total', 'Updates rejected, by reason')),
    handshakesRejected: registry.register(new Counter('fedclr_handshakes_rejected_total', 'Hellos or key proofs refused, by reason')),
    bytesIn: registry.register(new Counter('fedclr_bytes_received_total', 'Bytes received from agents (socket.io payloads)')),
    bytesOut: registry.register(new Counter('fedclr_bytes_sent_total', 'Bytes sent to agents (socket.io payloads)')),
    agentsConnected: registry.register(new Gauge('fedclr_agents_connected', 'Open agent connections', live.connected)),
    agentsReady: registry.register(new Gauge('fedclr_agents_ready', 'Authenticated agents available for rounds', live.ready)),
    agentsActive: registry.register(new Gauge('fedclr_agents_active', 'Agents in the running round that have not answered yet', live.active)),
    currentRound: registry.register(new Gauge('fedclr_round_id', 'Id of the running or last round', live.round)),
  };
}

export type CoordinatorMetrics = ReturnType<typeof createCoordinatorMetrics>;
