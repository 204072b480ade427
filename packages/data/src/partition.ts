// Split a dataset's example indices among simulated clients: IID, Dirichlet label skew, or
// label-sorted shards. Every partitioner is a pure function of its inputs and the Rng stream,
// so a seed reproduces a federation exactly. Each client's indices are returned ascending.
import {
  PartitionInvalidLabelsError,
  PartitionInvalidOptionError,
  PartitionMinSizeUnmetError,
  PartitionNotEnoughExamplesError,
} from './errors.js';
import type { Rng } from './rng.js';

/** One ascending array of example indices per client. */
export type Partition = number[][];

export interface IidOptions {
  readonly clients: number;
  readonly rng: Rng;
}

export interface DirichletOptions {
  readonly clients: number;
  /** Concentration: small (0.1) = each client dominated by few classes; large (100) = near IID. */
  readonly alpha: number;
  readonly rng: Rng;
  /** Redraw until every client has at least this many examples. Default 10 (as in NIID-Bench). */
  readonly minPerClient?: number;
  /** Draws before giving up with FEDCLR_DATA_PARTITION_MIN_SIZE_UNMET. Default 1000. */
  readonly maxAttempts?: number;
  /**
   * NIID-Bench's balancing: a client already holding n/clients examples gets no share of later
   * classes, which keeps client sizes from diverging wildly. Default true.
   */
  readonly balance?: boolean;
}

export interface ShardOptions {
  readonly clients: number;
  /** Shards dealt to each client (McMahan et al. 2017 used 2). */
  readonly shardsPerClient: number;
  readonly rng: Rng;
}

/** Declarative partition choice, e.g. from a CLI flag or an experiment config. */
export type PartitionSpec =
  | { readonly kind: 'iid' }
  | {
      readonly kind: 'dirichlet';
      readonly alpha: number;
      readonly minPerClient?: number;
      readonly maxAttempts?: number;
      readonly balance?: boolean;
    }
  | { readonly kind: 'shards'; readonly shardsPerClient: number };

function checkInteger(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new PartitionInvalidOptionError(`${name} must be an integer >= ${min}, got ${String(value)}`);
  }
}

/** Validate labels (non-negative integers) and return the number of classes (max label + 1). */
function checkLabels(labels: ArrayLike<number>): number {
  let max = -1;
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i] as number;
    if (!Number.isSafeInteger(l) || l < 0) {
      throw new PartitionInvalidLabelsError(`label at index ${i} is ${String(l)}; labels must be integers >= 0`);
    }
    if (l > max) max = l;
  }
  return max + 1;
}

function ascending(parts: number[][]): Partition {
  for (const p of parts) p.sort((a, b) => a - b);
  return parts;
}

/** Shuffle 0..count-1 and deal contiguous runs; client sizes differ by at most one. */
export function partitionIid(count: number, options: IidOptions): Partition {
  checkInteger('count', count, 0);
  checkInteger('clients', options.clients, 1);
  const { clients, rng } = options;
  if (count < clients) throw new PartitionNotEnoughExamplesError(clients, 1, 'example', count);
  const order = rng.shuffle(Array.from({ length: count }, (_, i) => i));
  const parts: number[][] = [];
  for (let c = 0; c < clients; c++) {
    parts.push(order.slice(Math.floor((c * count) / clients), Math.floor(((c + 1) * count) / clients)));
  }
  return ascending(parts);
}

/**
 * Dirichlet label skew, the usual FL benchmark recipe (Hsu et al. 2019; Li et al., NIID-Bench
 * 2022): for each class, shuffle its examples and split them among clients in proportions drawn
 * from Dir(alpha, ..., alpha). The whole draw is repeated (continuing the same Rng stream, so
 * still deterministic) until every client has at least minPerClient examples.
 */
export function partitionDirichlet(labels: ArrayLike<number>, options: DirichletOptions): Partition {
  const { clients, alpha, rng, minPerClient = 10, maxAttempts = 1000, balance = true } = options;
  checkInteger('clients', clients, 1);
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) {
    throw new PartitionInvalidOptionError(`alpha must be a finite number > 0, got ${String(alpha)}`);
  }
  checkInteger('minPerClient', minPerClient, 0);
  checkInteger('maxAttempts', maxAttempts, 1);
  const numClasses = checkLabels(labels);
  const n = labels.length;
  if (n < clients * minPerClient) throw new PartitionNotEnoughExamplesError(clients, minPerClient, 'examples', n);

  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < n; i++) (byClass[labels[i] as number] as number[]).push(i);
  const alphas = new Array<number>(clients).fill(alpha);
  const fairShare = n / clients;

  let smallest = 0;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const parts: number[][] = Array.from({ length: clients }, () => []);
    for (const members of byClass) {
      if (members.length === 0) continue;
      const idx = rng.shuffle(members.slice());
      let p = rng.dirichlet(alphas);
      if (balance) {
        const masked = p.map((v, j) => ((parts[j] as number[]).length < fairShare ? v : 0));
        const sum = masked.reduce((a, b) => a + b, 0);
        // Some client is always below its fair share while examples remain; still, never divide by 0.
        if (sum > 0) p = masked.map((v) => v / sum);
      }
      // Cut points floor(cumsum(p) * m), as in NIID-Bench; the last client takes the remainder.
      let cum = 0;
      let start = 0;
      for (let j = 0; j < clients; j++) {
        cum += p[j] as number;
        const end = j === clients - 1 ? idx.length : Math.min(idx.length, Math.floor(cum * idx.length));
        const part = parts[j] as number[];
        for (let k = start; k < end; k++) part.push(idx[k] as number);
        if (end > start) start = end;
      }
    }
    smallest = parts.reduce((m, p) => Math.min(m, p.length), Infinity);
    if (smallest >= minPerClient) return ascending(parts);
  }
  throw new PartitionMinSizeUnmetError(alpha, minPerClient, maxAttempts, smallest);
}

/**
 * Pathological non-IID shards (McMahan et al. 2017): order examples by label (random order within
 * a class), cut into clients * shardsPerClient contiguous shards of near-equal size, and deal
 * shardsPerClient random shards to each client. A client sees at most shardsPerClient labels when
 * shards align with class boundaries, and at most 2 * shardsPerClient otherwise.
 */
export function partitionShards(labels: ArrayLike<number>, options: ShardOptions): Partition {
  const { clients, shardsPerClient, rng } = options;
  checkInteger('clients', clients, 1);
  checkInteger('shardsPerClient', shardsPerClient, 1);
  checkLabels(labels);
  const n = labels.length;
  const shards = clients * shardsPerClient;
  if (n < shards) throw new PartitionNotEnoughExamplesError(clients, shardsPerClient, 'examples (one per shard)', n);

  // Shuffle first, then a stable sort by label: classes contiguous, random order inside each.
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  order.sort((a, b) => (labels[a] as number) - (labels[b] as number));
  const dealt = rng.shuffle(Array.from({ length: shards }, (_, s) => s));
  const parts: number[][] = [];
  for (let c = 0; c < clients; c++) {
    const part: number[] = [];
    for (let k = 0; k < shardsPerClient; k++) {
      const s = dealt[c * shardsPerClient + k] as number;
      const end = Math.floor(((s + 1) * n) / shards);
      for (let i = Math.floor((s * n) / shards); i < end; i++) part.push(order[i] as number);
    }
    parts.push(part);
  }
  return ascending(parts);
}

/** Partition by a declarative spec. IID ignores the labels' values (only their count matters). */
export function partition(labels: ArrayLike<number>, clients: number, spec: PartitionSpec, rng: Rng): Partition {
  switch (spec.kind) {
    case 'iid':
      return partitionIid(labels.length, { clients, rng });
    case 'dirichlet':
      return partitionDirichlet(labels, { ...spec, clients, rng });
    case 'shards':
      return partitionShards(labels, { clients, shardsPerClient: spec.shardsPerClient, rng });
    default:
      throw new PartitionInvalidOptionError(
        `unknown partition kind ${JSON.stringify((spec as { kind: unknown }).kind)}; use iid, dirichlet or shards`,
      );
  }
}

/** counts[client][class]: how many examples of each class each client holds. */
export function labelCounts(
  parts: readonly (readonly number[])[],
  labels: ArrayLike<number>,
  numClasses?: number,
): number[][] {
  const classes = numClasses ?? checkLabels(labels);
  checkInteger('numClasses', classes, 0);
  return parts.map((part, c) =>
    part.reduce((row, i) => {
      const l = labels[i];
      if (l === undefined || !Number.isInteger(i)) {
        throw new PartitionInvalidLabelsError(`client ${c} holds index ${i}, outside 0..${labels.length - 1}`);
      }
      if (!Number.isInteger(l) || l < 0) throw new PartitionInvalidLabelsError(`label at index ${i} is ${l}`);
      if (l >= classes) throw new PartitionInvalidLabelsError(`label ${l} at index ${i} is >= numClasses ${classes}`);
      row[l] = (row[l] as number) + 1;
      return row;
    }, new Array<number>(classes).fill(0)),
  );
}

/**
 * Mean total-variation distance between each client's label distribution and the pooled one:
 * 0 for perfectly IID clients, approaching 1 when clients hold disjoint classes. Empty clients
 * are ignored.
 */
export function labelSkew(counts: readonly (readonly number[])[]): number {
  const classes = Math.max(0, ...counts.map((row) => row.length));
  const pooled = new Array<number>(classes).fill(0);
  for (const row of counts) row.forEach((v, k) => (pooled[k] = (pooled[k] as number) + v));
  const total = pooled.reduce((a, b) => a + b, 0);
  let sum = 0;
  let used = 0;
  for (const row of counts) {
    const size = row.reduce((a, b) => a + b, 0);
    if (size === 0) continue;
    let tv = 0;
    for (let k = 0; k < classes; k++) tv += Math.abs((row[k] ?? 0) / size - (pooled[k] as number) / total);
    sum += tv / 2;
    used++;
  }
  return used === 0 ? 0 : sum / used;
}

export interface HistogramOptions {
  /** Column headers; default the class indices. */
  readonly classNames?: readonly string[];
  /** Default max label + 1. */
  readonly numClasses?: number;
}

/** A right-aligned text table: one row per client, one column per class, totals row and column. */
export function formatLabelHistogram(
  parts: readonly (readonly number[])[],
  labels: ArrayLike<number>,
  options: HistogramOptions = {},
): string {
  const classes = options.numClasses ?? Math.max(options.classNames?.length ?? 0, checkLabels(labels));
  const counts = labelCounts(parts, labels, classes);
  const totals = new Array<number>(classes).fill(0);
  for (const row of counts) row.forEach((v, k) => (totals[k] = (totals[k] as number) + v));
  const header = ['client', ...Array.from({ length: classes }, (_, k) => options.classNames?.[k] ?? String(k)), 'total'];
  const sumOf = (row: readonly number[]): number => row.reduce((a, b) => a + b, 0);
  const body = counts.map((row, c) => [String(c), ...row.map(String), String(sumOf(row))]);
  body.push(['total', ...totals.map(String), String(sumOf(totals))]);
  const widths = header.map((h, col) => Math.max(h.length, ...body.map((r) => (r[col] as string).length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, col) => cell.padStart(widths[col] as number)).join('  ');
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(header), rule, ...body.slice(0, -1).map(line), rule, line(body[body.length - 1] as string[])].join('\n');
}
