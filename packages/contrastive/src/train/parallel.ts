// Data-parallel step engine: the batch is split over worker threads (each with its own wasm
// backend, since tfjs runs wasm single-threaded in Node), the loss runs here on the gathered
// embeddings, and the workers then sum the gradients and apply the optimiser slice by slice,
// in place on the one shared copy of the weights (no weight or gradient copies per step).
import { Worker } from 'node:worker_threads';
import { currentBackend, inferShapes, totalSize, type BackendChoice, type WeightManifest } from '@fedclr/tensor';
import { InvalidTrainingConfigError, TrainingWorkerError } from '../errors.js';
import { LocalStepEngine, bindMoco, checkBatch, checkStepLabels, initialState, replicaLoss, scatterStats, statsSegments, type StepEngine, type StepEngineConfig, type StepResult, type TrainingLoss } from './engine.js';
import { finishMocoStep, type MocoLoss } from './moco.js';
import { FlatOptimizer, trainableSegments } from './optimizer.js';
import { viewsPerImage } from './replica.js';
import { CELL, CELLS_PER_WORKER, type StepUpdate, type WorkerBuffers, type WorkerCommand, type WorkerReply } from './shared.js';

// Atomics.waitAsync is in Node 20 (V8 8.7+) but only in TypeScript's ES2024 lib.
const waitAsync = (Atomics as unknown as {
  waitAsync(array: Int32Array, index: number, value: number, timeoutMs: number): { async: false; value: string } | { async: true; value: Promise<string> };
}).waitAsync;

interface WorkerSlot {
  worker: Worker;
  input: Float32Array;
  z: Float32Array;
  dz: Float32Array;
  gradients: Float32Array;
  /** MoCo: the worker's key embeddings. */
  keys: Float32Array | undefined;
  error: string | undefined;
  exited: boolean;
}

function sharedFloats(count: number): SharedArrayBuffer {
  return new SharedArrayBuffer(Math.max(1, count) * Float32Array.BYTES_PER_ELEMENT);
}

/** Splits `count` images into `parts` contiguous runs as evenly as possible. */
export function splitBatch(count: number, parts: number): { start: number; count: number }[] {
  const out: { start: number; count: number }[] = [];
  let start = 0;
  for (let i = 0; i < parts; i++) {
    const size = Math.floor(count / parts) + (i < count % parts ? 1 : 0);
    out.push({ start, count: size });
    start += size;
  }
  return out;
}

export class ParallelStepEngine implements StepEngine {
  readonly manifest: WeightManifest;
  readonly workers: number;
  readonly optimizer: FlatOptimizer;
  /** All weights, in shared memory: the workers read them at each step and update them in place. */
  readonly params: Float32Array;
  private readonly slots: WorkerSlot[];
  private readonly control: Int32Array;
  private readonly loss: TrainingLoss;
  /** MoCo: its loss and the shared buffer the workers load the key encoder from. */
  private readonly moco: { loss: MocoLoss; sharedKey: Float32Array } | undefined;
  private readonly statsOffsets: { offset: number; size: number }[];
  private readonly gradientSize: number;
  private readonly statsSize: number;
  private readonly stats: Float32Array;
  private readonly pixels: number;
  private readonly maxBatch: number;
  private readonly widths: Map<string, number>;
  private readonly outputName: string;
  private readonly views: number;
  private seq = 0;
  private busy = false;

  private constructor(
    config: StepEngineConfig,
    manifest: WeightManifest,
    optimizer: FlatOptimizer,
    slots: WorkerSlot[],
    control: Int32Array,
    weights: Float32Array,
    sizes: { gradientSize: number; statsSize: number },
    moco: { loss: MocoLoss; sharedKey: Float32Array } | undefined,
  ) {
    this.manifest = manifest;
    this.params = weights;
    this.workers = slots.length;
    this.slots = slots;
    this.control = control;
    this.loss = config.loss;
    this.moco = moco;
    this.optimizer = optimizer;
    this.statsOffsets = statsSegments(manifest);
    this.gradientSize = sizes.gradientSize;
    this.statsSize = sizes.statsSize;
    this.stats = new Float32Array(sizes.statsSize);
    const { height, width, channels } = config.spec.input;
    this.pixels = height * width * channels;
    this.maxBatch = config.maxBatch ?? 1024;
    this.widths = new Map([...inferShapes(config.spec)].filter(([, s]) => s.length === 1).map(([name, s]) => [name, s[0] as number]));
    this.outputName = config.spec.output;
    this.views = viewsPerImage(config.localViews);
  }

  static async create(config: StepEngineConfig): Promise<ParallelStepEngine> {
    const workers = config.workers ?? 2;
    if (!Number.isInteger(workers) || workers < 1) throw new InvalidTrainingConfigError('workers', `expected a positive integer, got ${workers}`);
    const init = initialState(config.spec, config.seed ?? 0);
    const params = config.initialWeights ? Float32Array.from(config.initialWeights) : init.params;
    if (params.length !== totalSize(init.manifest)) {
      throw new InvalidTrainingConfigError('initialWeights', `${params.length} values, the model has ${totalSize(init.manifest)}`);
    }
    const maxBatch = config.maxBatch ?? 1024;
    const perWorker = Math.ceil(maxBatch / workers);
    const { height, width, channels } = config.spec.input;
    const widest = Math.max(...[...inferShapes(config.spec).values()].filter((s) => s.length === 1).map((s) => s[0] as number));
    const control = new SharedArrayBuffer(workers * CELLS_PER_WORKER * Int32Array.BYTES_PER_ELEMENT);
    const weights = sharedFloats(params.length);
    const sharedParams = new Float32Array(weights);
    sharedParams.set(params);
    const trainable = trainableSegments(init.manifest).size;
    const moments = { m: sharedFloats(trainable), v: sharedFloats(config.optimizer.kind === 'adam' ? trainable : 0) };
    // Built here first: it checks the optimiser config before any worker starts.
    const optimizer = new FlatOptimizer(init.manifest, config.optimizer, config.proximal, {
      m: new Float32Array(moments.m),
      v: config.optimizer.kind === 'adam' ? new Float32Array(moments.v) : new Float32Array(0),
    });
    const peerGradients = Array.from({ length: workers }, () => sharedFloats(params.length));
    const backend = currentBackend()?.name;
    const moco = bindMoco(config, sharedParams);
    const keyWeights = moco === undefined ? undefined : sharedFloats(params.length);

    const slots: WorkerSlot[] = [];
    const ready: Promise<{ gradientSize: number; statsSize: number }>[] = [];
    for (let index = 0; index < workers; index++) {
      const buffers: WorkerBuffers = {
        control,
        weights,
        input: sharedFloats(perWorker * height * width * channels),
        z: sharedFloats(viewsPerImage(config.localViews) * perWorker * widest),
        dz: sharedFloats(viewsPerImage(config.localViews) * perWorker * widest),
        gradients: peerGradients[index] as SharedArrayBuffer,
        peerGradients,
        moments,
        ...(keyWeights !== undefined ? { keyWeights, keys: sharedFloats(2 * perWorker * widest) } : {}),
      };
      const worker = new Worker(new URL('./worker.js', import.meta.url));
      const slot: WorkerSlot = {
        worker,
        input: new Float32Array(buffers.input),
        z: new Float32Array(buffers.z),
        dz: new Float32Array(buffers.dz),
        gradients: new Float32Array(buffers.gradients),
        keys: buffers.keys === undefined ? undefined : new Float32Array(buffers.keys),
        error: undefined,
        exited: false,
      };
      slots.push(slot);
      ready.push(
        new Promise((resolve, reject) => {
          worker.once('message', (reply: WorkerReply) => {
            if (reply.type === 'ready') resolve(reply);
            else reject(new TrainingWorkerError(index, reply.message));
          });
          worker.once('error', (err) => reject(new TrainingWorkerError(index, err.message)));
        }),
      );
      worker.on('message', (reply: WorkerReply) => {
        if (reply.type === 'error') slot.error = reply.message;
      });
      worker.on('error', (err) => {
        slot.error = err.message;
      });
      worker.on('exit', () => {
        slot.exited = true;
      });
      const command: WorkerCommand = {
        type: 'init',
        index,
        backend,
        spec: config.spec,
        augment: config.augment,
        localViews: config.localViews ?? null,
        optimizer: optimizer.config,
        proximal: config.proximal ?? null,
        buffers,
      };
      worker.postMessage(command);
    }
    let sizes: { gradientSize: number; statsSize: number }[];
    try {
      sizes = await Promise.all(ready);
    } catch (err) {
      await Promise.all(slots.map((s) => s.worker.terminate()));
      throw err;
    }
    const sharedKey = keyWeights === undefined ? undefined : new Float32Array(keyWeights);
    const mocoSetup = moco !== undefined && sharedKey !== undefined ? { loss: moco, sharedKey } : undefined;
    return new ParallelStepEngine(config, init.manifest, optimizer, slots, new Int32Array(control), sharedParams, sizes[0] as { gradientSize: number; statsSize: number }, mocoSetup);
  }

  private cell(worker: number, cell: number): number {
    return worker * CELLS_PER_WORKER + cell;
  }

  private async waitFor(worker: number, cell: number, seq: number): Promise<void> {
    const index = this.cell(worker, cell);
    const slot = this.slots[worker] as WorkerSlot;
    for (;;) {
      const value = Atomics.load(this.control, index);
      if (value === seq) return;
      if (value === -seq || Atomics.load(this.control, this.cell(worker, CELL.failed)) === seq || slot.exited) {
        // The error text comes by message, a moment after the failure cell flips.
        for (let i = 0; i < 50 && slot.error === undefined; i++) await new Promise((r) => setTimeout(r, 10));
        throw new TrainingWorkerError(worker, slot.error ?? (slot.exited ? 'the worker exited' : 'unknown failure'));
      }
      const wait = waitAsync(this.control, index, value, 1000);
      if (wait.async) await wait.value;
    }
  }

  private abortStep(seq: number): void {
    this.slots.forEach((_, w) => {
      Atomics.store(this.control, this.cell(w, CELL.dzReady), -seq);
      Atomics.notify(this.control, this.cell(w, CELL.dzReady));
    });
  }

  private async run<T>(body: (seq: number) => Promise<T>): Promise<T> {
    if (this.busy) throw new InvalidTrainingConfigError('engine', 'one command at a time: await the previous step');
    this.busy = true;
    try {
      return await body(++this.seq);
    } finally {
      this.busy = false;
    }
  }

  private dispatch(images: Float32Array, count: number, make: (part: { count: number }, worker: number) => WorkerCommand): { start: number; count: number }[] {
    const active = Math.min(this.workers, count);
    const parts = splitBatch(count, active);
    parts.forEach((part, w) => {
      const slot = this.slots[w] as WorkerSlot;
      slot.input.set(images.subarray(part.start * this.pixels, (part.start + part.count) * this.pixels));
      slot.worker.postMessage(make(part, w));
    });
    return parts;
  }

  step(images: Float32Array, count: number, learningRate: number, seed: number, labels?: Int32Array): Promise<StepResult> {
    checkBatch(images, count, this.pixels, this.maxBatch);
    checkStepLabels(this.loss, labels, count, this.views);
    return this.run(async (seq) => {
      if (this.moco !== undefined) this.moco.sharedKey.set(this.moco.loss.state.key as Float32Array);
      const optimizerStep = this.optimizer.advance();
      const slices = splitBatch(this.gradientSize, Math.min(this.workers, count));
      const update = (w: number): StepUpdate => {
        const { start, count: size } = slices[w] as { start: number; count: number };
        return { learningRate, optimizerStep, start, end: start + size, active: slices.length };
      };
      const parts = this.dispatch(images, count, (part, w) => ({ type: 'step', seq, count: part.count, seed: seed * 131 + w, update: update(w) }));
      const dim = this.widths.get(this.outputName) as number;
      try {
        await Promise.all(parts.map((_, w) => this.waitFor(w, CELL.zReady, seq)));
      } catch (err) {
        this.abortStep(seq);
        throw err;
      }
      const { loss, dz, enqueue } = replicaLoss(
        this.loss,
        parts.map((p, w) => ({ z: (this.slots[w] as WorkerSlot).z, keys: (this.slots[w] as WorkerSlot).keys, count: p.count })),
        dim,
        this.views,
        labels,
      );
      dz.forEach((values, w) => {
        (this.slots[w] as WorkerSlot).dz.set(values);
        Atomics.store(this.control, this.cell(w, CELL.dzReady), seq);
        Atomics.notify(this.control, this.cell(w, CELL.dzReady));
      });
      await Promise.all(parts.map((_, w) => this.waitFor(w, CELL.done, seq)));

      // The workers have applied the update; average BatchNorm statistics by rows.
      const stats = this.stats.fill(0);
      parts.forEach((part, w) => {
        const buffer = (this.slots[w] as WorkerSlot).gradients;
        const weight = part.count / count;
        for (let i = 0; i < this.statsSize; i++) stats[i] = (stats[i] as number) + weight * (buffer[this.gradientSize + i] as number);
      });
      scatterStats(this.params, stats, this.statsOffsets);
      if (this.moco !== undefined && enqueue !== undefined) finishMocoStep(this.moco.loss, this.params, enqueue.keys, enqueue.count);
      return { loss };
    });
  }

  forward(images: Float32Array, count: number, seed: number): Promise<void> {
    checkBatch(images, count, this.pixels, this.maxBatch);
    return this.run(async (seq) => {
      const parts = this.dispatch(images, count, (part, w) => ({ type: 'forward', seq, count: part.count, seed: seed * 131 + w }));
      await Promise.all(parts.map((_, w) => this.waitFor(w, CELL.done, seq)));
    });
  }

  embed(images: Float32Array, count: number, output?: string): Promise<Float32Array> {
    const name = output ?? this.outputName;
    const dim = this.widths.get(name);
    if (dim === undefined) throw new InvalidTrainingConfigError('output', `'${name}' is not a vector-valued node of the model`);
    if (count < 1 || count > this.maxBatch) throw new InvalidTrainingConfigError('batch', `embed takes 1..${this.maxBatch} images, got ${count}`);
    return this.run(async (seq) => {
      const parts = this.dispatch(images, count, (part) => ({ type: 'embed', seq, count: part.count, output: name }));
      await Promise.all(parts.map((_, w) => this.waitFor(w, CELL.done, seq)));
      const out = new Float32Array(count * dim);
      parts.forEach((part, w) => out.set((this.slots[w] as WorkerSlot).z.subarray(0, part.count * dim), part.start * dim));
      return out;
    });
  }

  async dispose(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

/**
 * Worker threads a step engine uses: `workers`, except on a backend with its own native threads
 * (tfjs-node), which trains in-process: its addon stays out of worker threads, and TensorFlow's
 * thread pool already uses the cores.
 */
export function engineWorkers(workers: number | undefined, backend: Pick<BackendChoice, 'parallelism'> | undefined): number {
  return backend?.parallelism === 'native' ? 0 : workers ?? 0;
}

/** A parallel engine when `workers` >= 1 (and the backend runs one thread), else in-process. */
export async function createStepEngine(config: StepEngineConfig): Promise<StepEngine> {
  return engineWorkers(config.workers, currentBackend()) >= 1 ? ParallelStepEngine.create(config) : new LocalStepEngine(config);
}
