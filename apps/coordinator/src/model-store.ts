// Checkpoints of the global model, one directory per completed round:
//
//   <stateDir>/checkpoints/round-00000003/
//       checkpoint.json   {format, roundId, completedRounds, architecture, modelVersion, manifest, strategy}
//       weights.bin       the flat float32 weights, little-endian, in manifest order
//       strategy-<name>.f64  server-optimizer buffers (FedAvgM velocity, FedAdam m and v)
//       ...               whatever the configured CheckpointExporters add (e.g. tfjs layers files)
//
// A checkpoint is written into `round-N.tmp-<pid>-<n>/`, fsynced, then renamed into place, so a
// directory named `round-N` is always complete. It only counts once the database row of round
// N says 'completed' (the engine's commit = files first, then the DB transaction); on start-up
// the coordinator ignores, and removes, checkpoint directories without a committed row.
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { computeModelHash, elementCount, isModelHash } from '@fedclr/protocol';
import type { Manifest, TensorSpec } from '@fedclr/protocol';
import { CheckpointCorruptError } from './errors.js';
import { STRATEGY_NAMES, type StrategyName, type StrategyState } from './strategy.js';

export interface Checkpoint {
  readonly roundId: number;
  readonly completedRounds: number;
  readonly architecture: string;
  readonly manifest: Manifest;
  /** Flat float32 weights in manifest order. */
  readonly weights: Float32Array;
  readonly modelVersion: string;
  readonly strategyState?: StrategyState;
}

/** Writes one checkpoint. Resolves once the checkpoint is durable and complete. */
export interface CheckpointWriter {
  save(checkpoint: Checkpoint): Promise<void>;
}

/** Where the coordinator keeps its checkpoints. */
export interface ModelStore extends CheckpointWriter {
  /** The checkpoint of exactly `roundId`, or undefined if there is none. Throws if it is corrupt. */
  load(roundId: number): Promise<Checkpoint | undefined>;
  /** The newest checkpoint whose round passes `isCommitted`; corrupt ones are skipped via onCorrupt. */
  loadLatest(isCommitted: (roundId: number) => boolean, onCorrupt?: (roundId: number, err: Error) => void): Promise<Checkpoint | undefined>;
  /** Round ids with a complete checkpoint on disk, ascending. */
  list(): Promise<number[]>;
  remove(roundId: number): Promise<void>;
  /** Removes incomplete (temporary) checkpoint directories left by a crash. */
  sweep(): Promise<void>;
}

/**
 * Adds files to a checkpoint directory before it is renamed into place (the lead's tfjs layers
 * writer plugs in here). `dir` is the temporary directory; write files into it, do not rename it.
 */
export interface CheckpointExporter {
  readonly name: string;
  write(checkpoint: Checkpoint, dir: string): Promise<void>;
}

export interface FileModelStoreOptions {
  /** Directory holding the round-N directories. */
  readonly dir: string;
  readonly exporters?: readonly CheckpointExporter[];
}

const FORMAT = 'fedclr-checkpoint-v1';
const ROUND_DIR = /^round-(\d{8,})$/;
const TMP_DIR = /^round-\d{8,}\.tmp-/;
let tmpCounter = 0;

export function checkpointDirName(roundId: number): string {
  return `round-${String(roundId).padStart(8, '0')}`;
}

interface CheckpointJson {
  format: typeof FORMAT;
  roundId: number;
  completedRounds: number;
  architecture: string;
  modelVersion: string;
  manifest: TensorSpec[];
  strategy?: { strategy: StrategyName; step: number; buffers: string[] };
}

async function writeDurable(path: string, data: Uint8Array | string): Promise<void> {
  const fh = await open(path, 'w', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function syncDir(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function bytes(a: Float32Array | Float64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The default store: flat weights + manifest JSON per round, in the state dir. Little-endian hosts. */
export class FileModelStore implements ModelStore {
  readonly dir: string;
  private readonly exporters: readonly CheckpointExporter[];

  constructor(options: FileModelStoreOptions) {
    this.dir = options.dir;
    this.exporters = options.exporters ?? [];
  }

  async save(cp: Checkpoint): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const final = join(this.dir, checkpointDirName(cp.roundId));
    const tmp = `${final}.tmp-${process.pid}-${tmpCounter++}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { mode: 0o700 });
    try {
      const meta: CheckpointJson = {
        format: FORMAT,
        roundId: cp.roundId,
        completedRounds: cp.completedRounds,
        architecture: cp.architecture,
        modelVersion: cp.modelVersion,
        manifest: cp.manifest.map((t) => ({ name: t.name, shape: [...t.shape], dtype: t.dtype })),
      };
      await writeDurable(join(tmp, 'weights.bin'), bytes(cp.weights));
      if (cp.strategyState !== undefined) {
        const names = Object.keys(cp.strategyState.buffers).sort();
        meta.strategy = { strategy: cp.strategyState.strategy, step: cp.strategyState.step, buffers: names };
        for (const name of names) {
          await writeDurable(join(tmp, `strategy-${name}.f64`), bytes(cp.strategyState.buffers[name] as Float64Array));
        }
      }
      for (const exporter of this.exporters) await exporter.write(cp, tmp);
      await writeDurable(join(tmp, 'checkpoint.json'), `${JSON.stringify(meta, null, 2)}\n`);
      await syncDir(tmp);
      await rm(final, { recursive: true, force: true });
      await rename(tmp, final);
      await syncDir(this.dir);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  async load(roundId: number): Promise<Checkpoint | undefined> {
    const dir = join(this.dir, checkpointDirName(roundId));
    let text: string;
    try {
      text = await readFile(join(dir, 'checkpoint.json'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const fail = (problem: string): never => {
      throw new CheckpointCorruptError(dir, problem);
    };
    let meta: CheckpointJson;
    try {
      meta = JSON.parse(text) as CheckpointJson;
    } catch (err) {
      return fail(`checkpoint.json is not JSON (${(err as Error).message})`);
    }
    if (meta.format !== FORMAT) fail(`unknown format ${JSON.stringify(meta.format)}`);
    if (meta.roundId !== roundId) fail(`checkpoint.json names round ${meta.roundId}`);
    if (!isModelHash(meta.modelVersion)) fail('modelVersion is not a sha256 hex string');
    if (!Array.isArray(meta.manifest)) fail('manifest is not an array');
    const n = meta.manifest.reduce((s, t) => s + elementCount(t.shape), 0);
    const raw = await readFile(join(dir, 'weights.bin'));
    if (raw.byteLength !== n * 4) fail(`weights.bin has ${raw.byteLength} bytes; the manifest needs ${n * 4}`);
    const weights = new Float32Array(n);
    bytes(weights).set(raw);
    const actual = computeModelHash({ manifest: meta.manifest, data: weights });
    if (actual !== meta.modelVersion) fail(`the weights hash to ${actual}, not the recorded model version ${meta.modelVersion}`);
    let strategyState: StrategyState | undefined;
    if (meta.strategy !== undefined) {
      if (!(STRATEGY_NAMES as readonly string[]).includes(meta.strategy.strategy)) fail(`unknown strategy ${meta.strategy.strategy}`);
      const buffers: Record<string, Float64Array> = {};
      for (const name of meta.strategy.buffers) {
        const b = await readFile(join(dir, `strategy-${name}.f64`));
        if (b.byteLength !== n * 8) fail(`strategy buffer ${name} has ${b.byteLength} bytes; expected ${n * 8}`);
        const arr = new Float64Array(n);
        bytes(arr).set(b);
        buffers[name] = arr;
      }
      strategyState = { strategy: meta.strategy.strategy, step: meta.strategy.step, buffers };
    }
    return {
      roundId,
      completedRounds: meta.completedRounds,
      architecture: meta.architecture,
      manifest: meta.manifest,
      weights,
      modelVersion: meta.modelVersion,
      ...(strategyState === undefined ? {} : { strategyState }),
    };
  }

  async loadLatest(
    isCommitted: (roundId: number) => boolean,
    onCorrupt?: (roundId: number, err: Error) => void,
  ): Promise<Checkpoint | undefined> {
    const ids = (await this.list()).filter(isCommitted).reverse();
    for (const id of ids) {
      try {
        const cp = await this.load(id);
        if (cp !== undefined) return cp;
      } catch (err) {
        if (onCorrupt === undefined) throw err;
        onCorrupt(id, err as Error);
      }
    }
    return undefined;
  }

  async list(): Promise<number[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const ids: number[] = [];
    for (const name of names) {
      const m = ROUND_DIR.exec(name);
      if (m !== null) ids.push(Number(m[1]));
    }
    return ids.sort((a, b) => a - b);
  }

  async remove(roundId: number): Promise<void> {
    await rm(join(this.dir, checkpointDirName(roundId)), { recursive: true, force: true });
  }

  async sweep(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const name of names) if (TMP_DIR.test(name)) await rm(join(this.dir, name), { recursive: true, force: true });
  }
}
