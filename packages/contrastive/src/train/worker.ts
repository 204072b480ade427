// Worker thread of the parallel step engine: one replica, one tfjs backend.
import { parentPort } from 'node:worker_threads';
import { Network, initBackend, type BackendName } from '@fedclr/tensor';
import { FlatOptimizer } from './optimizer.js';
import { Replica, loadWeights } from './replica.js';
import { CELL, CELLS_PER_WORKER, DZ_TIMEOUT_MS, type StepUpdate, type WorkerCommand, type WorkerReply } from './shared.js';

if (parentPort === null) throw new Error('train/worker.js must run in a worker thread');
const port = parentPort;

let replica: Replica | undefined;
let control: Int32Array;
let weights: Float32Array;
let input: Float32Array;
let zBuffer: Float32Array;
let dzBuffer: Float32Array;
let gradBuffer: Float32Array;
/** Every worker's gradient buffer (this one's included), in worker order. */
let peerGradients: Float32Array[];
let optimizer: FlatOptimizer;
let slice = new Float32Array(0);
/** MoCo: the key encoder, its shared weights and the key embeddings it writes. */
let key: { network: Network; weights: Float32Array; out: Float32Array } | undefined;
let base = 0;

function signal(cell: number, seq: number): void {
  Atomics.store(control, base + cell, seq);
  Atomics.notify(control, base + cell);
}

function waitForLossGradient(seq: number): void {
  const deadline = Date.now() + DZ_TIMEOUT_MS;
  for (;;) {
    const value = Atomics.load(control, base + CELL.dzReady);
    if (value === seq) return;
    if (value < 0) throw new Error('the engine aborted the step');
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no loss gradient after ${DZ_TIMEOUT_MS} ms`);
    Atomics.wait(control, base + CELL.dzReady, value, left);
  }
}

/** Waits until the first `active` workers have written their gradients for step `seq`. */
function waitForPeerGradients(seq: number, active: number): void {
  const deadline = Date.now() + DZ_TIMEOUT_MS;
  for (let w = 0; w < active; w++) {
    const cell = w * CELLS_PER_WORKER + CELL.gradientsReady;
    for (;;) {
      const value = Atomics.load(control, cell);
      if (value === seq) break;
      if (value === -seq) throw new Error(`worker ${w} failed during this step`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no gradients from worker ${w} after ${DZ_TIMEOUT_MS} ms`);
      Atomics.wait(control, cell, value, left);
    }
  }
}

/** This worker's slice of the update: the gradients summed over the workers in worker order, then the optimiser on the shared weights. */
function applySlice(update: StepUpdate): void {
  const { start, end, active } = update;
  if (slice.length < end - start) slice = new Float32Array(end - start);
  const sum = slice.subarray(0, end - start);
  sum.set((peerGradients[0] as Float32Array).subarray(start, end));
  for (let w = 1; w < active; w++) {
    const peer = peerGradients[w] as Float32Array;
    for (let i = 0, g = start; g < end; i++, g++) sum[i] = (sum[i] as number) + (peer[g] as number);
  }
  optimizer.applyRange(weights, sum, update.learningRate, update.optimizerStep, start, end);
}

function reply(message: WorkerReply): void {
  port.postMessage(message);
}

async function handle(command: WorkerCommand): Promise<void> {
  if (command.type === 'init') {
    await initBackend(command.backend ? { prefer: command.backend as BackendName } : {});
    const b = command.buffers;
    control = new Int32Array(b.control);
    weights = new Float32Array(b.weights);
    input = new Float32Array(b.input);
    zBuffer = new Float32Array(b.z);
    dzBuffer = new Float32Array(b.dz);
    gradBuffer = new Float32Array(b.gradients);
    peerGradients = b.peerGradients.map((buffer) => new Float32Array(buffer));
    base = command.index * CELLS_PER_WORKER;
    replica = new Replica({ spec: command.spec, augment: command.augment, localViews: command.localViews ?? undefined });
    optimizer = new FlatOptimizer(replica.manifest, command.optimizer, command.proximal ?? undefined, { m: new Float32Array(b.moments.m), v: new Float32Array(b.moments.v) });
    if (b.keyWeights !== undefined && b.keys !== undefined) key = { network: new Network(command.spec), weights: new Float32Array(b.keyWeights), out: new Float32Array(b.keys) };
    reply({ type: 'ready', gradientSize: replica.gradientSize, statsSize: replica.statsSize });
    return;
  }
  if (command.type === 'close') {
    replica?.dispose();
    key?.network.dispose();
    port.close();
    return;
  }
  const r = replica;
  if (r === undefined) throw new Error('worker used before init');
  const { seq } = command;
  try {
    if (command.type === 'step') {
      r.load(weights);
      if (key !== undefined) loadWeights(key.network, key.weights);
      const grads = gradBuffer.subarray(0, r.gradientSize);
      const stats = gradBuffer.subarray(r.gradientSize, r.gradientSize + r.statsSize);
      r.gradients(input, command.count, command.seed, (z, rows, dim, keys) => {
        zBuffer.set(z);
        if (keys !== undefined) key?.out.set(keys);
        signal(CELL.zReady, seq);
        waitForLossGradient(seq);
        return dzBuffer.slice(0, rows * dim);
      }, grads, stats, key?.network);
      signal(CELL.gradientsReady, seq);
      waitForPeerGradients(seq, command.update.active);
      applySlice(command.update);
    } else if (command.type === 'forward') {
      r.load(weights);
      r.forward(input, command.count, command.seed);
    } else {
      r.load(weights);
      zBuffer.set(r.embed(input, command.count, command.output));
    }
    signal(CELL.done, seq);
  } catch (err) {
    const message = err instanceof Error ? err.stack ?? err.message : String(err);
    reply({ type: 'error', seq, message });
    signal(CELL.failed, seq);
    signal(CELL.zReady, -seq);
    signal(CELL.gradientsReady, -seq);
    signal(CELL.done, -seq);
  }
}

port.on('message', (command: WorkerCommand) => {
  handle(command).catch((err: unknown) => {
    reply({ type: 'error', seq: 0, message: err instanceof Error ? err.stack ?? err.message : String(err) });
  });
});
