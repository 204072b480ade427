// MoCo (He et al. 2020; MoCo v2, Chen et al. 2020): queries from the online encoder, keys from a
// momentum (key) encoder, an exponential moving average of the online weights, and negatives
// from a FIFO queue of earlier keys, so that a small batch still sees thousands of negatives.
//
// Choices (README "MoCo"):
// - symmetrised (MoCo v3): both views are queries, each against the other view's key. An agent's
//   round is a number of epochs of its own images, so both views' gradients per image come at
//   the cost of one more key forward pass, and the online encoder sees both views per step, as
//   with NT-Xent (same BatchNorm batch, same images per step).
// - negatives: the other images' keys of the batch, then the queue. The batch keys come from the
//   same key encoder as the positive, and make the first step of a run (empty queue) meaningful.
// - BatchNorm: the key encoder normalises with the batch statistics of its own forward pass
//   (each replica's key views; its moving statistics are left alone), as single-device MoCo
//   does. Those are statistics of the same images as the queries' batch, a signature that
//   current keys share and queue keys lack (what MoCo's shuffled BN breaks on 8 GPUs; a
//   replica's key batch cannot avoid its query batch's images). Keeping the batch's other keys
//   as negatives means the signature cannot single out the positive: at worst it makes the
//   queue's negatives easy. Keys batch-independent by construction (inference-mode BN on moving
//   statistics) trained worse: those statistics start at 0/1 and lag the key weights (300 steps:
//   linear probe 0.845 vs 0.852, kNN 0.788 vs 0.808; README "MoCo").
// - one key per image enters the queue (view 1's), so the queue spans `capacity` images.
import * as tf from '@tensorflow/tfjs-core';
import { InvalidTrainingConfigError } from '../errors.js';
import { gatherViewMajor, scatterViewMajor } from './views.js';

/** A FIFO ring of unit-norm keys [capacity, dim] in one Float32Array: enqueuing past capacity overwrites the oldest. */
export class KeyQueue {
  readonly capacity: number;
  readonly dim: number;
  private readonly data: Float32Array;
  private next = 0;
  private size = 0;

  constructor(capacity: number, dim: number) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new InvalidTrainingConfigError('moco.queueSize', `expected an integer >= 0, got ${capacity}`);
    if (!Number.isInteger(dim) || dim < 1) throw new InvalidTrainingConfigError('moco.dim', `expected a positive integer, got ${dim}`);
    this.capacity = capacity;
    this.dim = dim;
    this.data = new Float32Array(capacity * dim);
  }

  /** Keys held (at most capacity). */
  get length(): number {
    return this.size;
  }

  /** Appends `count` rows of `keys`; only the newest `capacity` survive. */
  enqueue(keys: Float32Array, count: number): void {
    const d = this.dim;
    if (keys.length < count * d) throw new InvalidTrainingConfigError('moco.keys', `${keys.length} values cannot hold ${count} keys of ${d}`);
    if (this.capacity === 0) return;
    const skip = Math.max(0, count - this.capacity);
    for (let row = skip; row < count; row++) {
      this.data.set(keys.subarray(row * d, (row + 1) * d), this.next * d);
      this.next = (this.next + 1) % this.capacity;
    }
    this.size = Math.min(this.capacity, this.size + count - skip);
  }

  /** The queued keys [length, dim], in slot order (the loss does not depend on their order). A view: copy it to keep it. */
  keys(): Float32Array {
    return this.data.subarray(0, this.size * this.dim);
  }

  /** Everything needed to restore the queue exactly (checkpoints). */
  snapshot(): { next: number; size: number; data: Float32Array } {
    return { next: this.next, size: this.size, data: Float32Array.from(this.data) };
  }

  restore(saved: { next: number; size: number; data: Float32Array }): void {
    if (saved.data.length !== this.data.length || !(saved.size >= 0 && saved.size <= this.capacity) || !(saved.next >= 0 && (saved.next < this.capacity || this.capacity === 0))) {
      throw new InvalidTrainingConfigError('moco.queue', `a saved queue of ${saved.data.length} values (size ${saved.size}) does not fit ${this.capacity} x ${this.dim}`);
    }
    this.data.set(saved.data);
    this.next = saved.next;
    this.size = saved.size;
  }
}

/** key <- m·key + (1-m)·online, over every value (BatchNorm's moving statistics too, though keys use batch statistics). */
export function emaUpdate(key: Float32Array, online: Float32Array, momentum: number): void {
  if (key.length !== online.length) throw new InvalidTrainingConfigError('moco.key', `${key.length} key weights for ${online.length} online ones`);
  const rest = 1 - momentum;
  for (let i = 0; i < key.length; i++) key[i] = momentum * (key[i] as number) + rest * (online[i] as number);
}

/**
 * What MoCo keeps between steps, and between the rounds of one federated run: the key encoder's
 * weights (manifest order, BatchNorm statistics included) and the queue. Engines bind it to
 * their model when they start; a state outlives its engines.
 */
export class MocoState {
  readonly queueSize: number;
  private keyWeights: Float32Array | undefined;
  private ring: KeyQueue | undefined;

  constructor(queueSize: number) {
    if (!Number.isInteger(queueSize) || queueSize < 0 || queueSize > 1 << 20) throw new InvalidTrainingConfigError('moco.queueSize', `expected an integer in [0, ${1 << 20}], got ${queueSize}`);
    this.queueSize = queueSize;
  }

  /** The key encoder's weights; undefined until an engine binds the state or resetKey is called. */
  get key(): Float32Array | undefined {
    return this.keyWeights;
  }

  /** The queue; undefined until an engine binds the state (it needs the embedding width). */
  get queue(): KeyQueue | undefined {
    return this.ring;
  }

  /** The key encoder becomes a copy of `weights` (the start of a run, or of a federated round). */
  resetKey(weights: Float32Array): void {
    this.keyWeights = Float32Array.from(weights);
  }

  /** Continues a saved state (checkpoints): its key encoder, and its queue of `dim`-wide keys. */
  restore(key: Float32Array, dim: number, queue: { next: number; size: number; data: Float32Array }): void {
    const ring = new KeyQueue(this.queueSize, dim);
    ring.restore(queue);
    this.resetKey(key);
    this.ring = ring;
  }

  /** Called by an engine: a fresh key encoder starts as the online one, and the queue gets its width. */
  bind(params: Float32Array, dim: number): { key: Float32Array; queue: KeyQueue } {
    if (this.keyWeights === undefined) this.resetKey(params);
    const key = this.keyWeights as Float32Array;
    if (key.length !== params.length) throw new InvalidTrainingConfigError('moco.state', `the key encoder has ${key.length} weights, this model ${params.length}: a MoCo state serves one architecture`);
    this.ring ??= new KeyQueue(this.queueSize, dim);
    if (this.ring.dim !== dim) throw new InvalidTrainingConfigError('moco.state', `the queue holds ${this.ring.dim}-d keys, this model embeds in ${dim}`);
    return { key, queue: this.ring };
  }
}

/** MoCo as a training loss: its hyperparameters and its state (the engines recognise it by `kind`). */
export interface MocoLoss {
  readonly kind: 'moco';
  readonly temperature: number;
  /** EMA rate m of the key encoder. */
  readonly momentum: number;
  readonly state: MocoState;
}

export interface MocoOptions {
  temperature: number;
  momentum: number;
  /** Queue capacity K (ignored when `state` is given: the state's queue is used). */
  queueSize: number;
  /** The state to continue (an agent's run across rounds); default a fresh one. */
  state?: MocoState;
}

/** A MoCo loss; options are checked here so that bad ones fail before any engine starts. */
export function mocoLoss(options: MocoOptions): MocoLoss {
  const { temperature, momentum } = options;
  if (!(Number.isFinite(temperature) && temperature > 0)) throw new InvalidTrainingConfigError('moco.temperature', `expected a positive number, got ${temperature}`);
  if (!(Number.isFinite(momentum) && momentum >= 0 && momentum < 1)) throw new InvalidTrainingConfigError('moco.momentum', `expected a number in [0, 1), got ${momentum}`);
  return { kind: 'moco', temperature, momentum, state: options.state ?? new MocoState(options.queueSize) };
}

/**
 * The queue capacity for `images` local images: at most half of them, so that an image's key
 * from its previous epoch has (mostly) left the queue when the image comes back; otherwise a
 * small agent's queue would hold stale copies of the very images it contrasts, as negatives.
 */
export function queueCapacityFor(requested: number, images: number): number {
  return Math.min(requested, Math.floor(images / 2));
}

function unitRows(x: tf.Tensor2D): { unit: tf.Tensor2D; norm: tf.Tensor2D } {
  const norm = tf.sqrt(tf.add(tf.sum(tf.square(x), 1, true), 1e-12)) as tf.Tensor2D;
  return { unit: tf.div(x, norm) as tf.Tensor2D, norm };
}

/**
 * The symmetrised MoCo InfoNCE and its gradient in closed form. Rows view-major: queries
 * z = [q1; q2] (online encoder, n each), keys k = [k1; k2] (key encoder), `negatives` [m, d]
 * unit rows (m may be 0). Query row r of view v has logits u_r·[keys of the other view; queue]/τ
 * with its own image's key as the positive; L is the mean over the 2n rows of
 * logsumexp - positive logit, so dL/dlogits = (softmax - onehot)/2n and dL/du = (that ·
 * candidates)/τ, projected through u = z/|z|. Keys get no gradient. Also returns view 1's unit
 * keys (to enqueue).
 */
export function mocoValueAndGradient(z: tf.Tensor2D, k: tf.Tensor2D, negatives: tf.Tensor2D | null, temperature: number): { loss: tf.Scalar; dz: tf.Tensor2D; enqueue: tf.Tensor2D } {
  return tf.tidy(() => {
    const rows = z.shape[0];
    const { unit: u, norm } = unitRows(z);
    const keys = unitRows(k).unit;
    const [u1, u2] = tf.split(u, 2, 0) as [tf.Tensor2D, tf.Tensor2D];
    const [k1, k2] = tf.split(keys, 2, 0) as [tf.Tensor2D, tf.Tensor2D];
    const positives = tf.concat([k2, k1], 0);
    const batch = tf.concat([tf.matMul(u1, k2, false, true), tf.matMul(u2, k1, false, true)], 0);
    const logits = tf.div(negatives === null ? batch : tf.concat([batch, tf.matMul(u, negatives, false, true)], 1), temperature);
    const lse = tf.logSumExp(logits, 1, true);
    const positiveLogit = tf.div(tf.sum(tf.mul(u, positives), 1, true), temperature);
    const loss = tf.mean(tf.sub(lse, positiveLogit)) as tf.Scalar;
    const g = tf.div(tf.exp(tf.sub(logits, lse)), rows);
    const n = rows / 2;
    const gBatch = negatives === null ? g : tf.slice(g, [0, 0], [rows, n]);
    const [g1, g2] = tf.split(gBatch, 2, 0) as [tf.Tensor2D, tf.Tensor2D];
    let du = tf.sub(tf.concat([tf.matMul(g1, k2), tf.matMul(g2, k1)], 0), tf.div(positives, rows));
    if (negatives !== null) du = tf.add(du, tf.matMul(tf.slice(g, [0, n], [rows, -1]) as tf.Tensor2D, negatives));
    du = tf.div(du, temperature);
    // through u = z/|z|: dz = (du - u·<du, u>) / |z|
    const dz = tf.div(tf.sub(du, tf.mul(u, tf.sum(tf.mul(du, u), 1, true))), norm) as tf.Tensor2D;
    return { loss, dz, enqueue: k1 };
  });
}

/** mocoValueAndGradient on plain arrays: queries and keys [2n, d] view-major, negatives [m, d]. */
export function mocoLossGradient(queries: Float32Array, keys: Float32Array, negatives: Float32Array, n: number, d: number, temperature: number): { loss: number; dz: Float32Array; enqueue: Float32Array } {
  const m = negatives.length / d;
  if (!Number.isInteger(m)) throw new InvalidTrainingConfigError('moco.negatives', `${negatives.length} values are not rows of ${d}`);
  // Tensors leave the tidy and are read after it: tidy walks every element of a returned typed array.
  const { loss, dz, enqueue } = tf.tidy(() =>
    mocoValueAndGradient(tf.tensor2d(queries, [2 * n, d]), tf.tensor2d(keys, [2 * n, d]), m > 0 ? tf.tensor2d(negatives, [m, d]) : null, temperature),
  );
  try {
    return { loss: (loss.dataSync() as Float32Array)[0] as number, dz: dz.dataSync() as Float32Array, enqueue: enqueue.dataSync() as Float32Array };
  } finally {
    tf.dispose([loss, dz, enqueue]);
  }
}

/**
 * The MoCo loss over the queries and keys gathered from several replicas (each view-major over
 * its own images), against the current queue; each replica's share of the gradient, and the
 * keys to enqueue once the step is applied (finishMocoStep).
 */
export function mocoOverReplicas(loss: MocoLoss, parts: { z: Float32Array; keys: Float32Array; count: number }[], dim: number): { loss: number; dz: Float32Array[]; enqueue: Float32Array; count: number } {
  const queue = loss.state.queue;
  if (queue === undefined) throw new InvalidTrainingConfigError('moco.state', 'the state is not bound to an engine');
  const { rows: queries, n } = gatherViewMajor(parts, dim, 2);
  const { rows: keys } = gatherViewMajor(parts.map((p) => ({ z: p.keys, count: p.count })), dim, 2);
  const result = mocoLossGradient(queries, keys, queue.keys(), n, dim, loss.temperature);
  return { loss: result.loss, dz: scatterViewMajor(result.dz, parts, dim, 2), enqueue: result.enqueue, count: n };
}

/** After the optimiser step: the key encoder follows the new online weights (EMA), and the batch's keys join the queue. */
export function finishMocoStep(loss: MocoLoss, params: Float32Array, enqueue: Float32Array, count: number): void {
  const { key, queue } = loss.state;
  if (key === undefined || queue === undefined) throw new InvalidTrainingConfigError('moco.state', 'the state is not bound to an engine');
  emaUpdate(key, params, loss.momentum);
  queue.enqueue(enqueue, count);
}
