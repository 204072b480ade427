// A model as a small graph of named nodes. The same spec drives fast training (our own executor,
// with fused BatchNorm+ReLU gradients) and export to a standard tfjs layers model.
import * as tf from '@tensorflow/tfjs-core';
import { ManifestMismatchError } from '../errors.js';
import { batchNormInfer, batchNormTrain, globalAveragePool, type BatchStats } from './ops.js';

export type NodeSpec =
  | { op: 'conv'; name: string; input: string; filters: number; kernel: number; stride: number; bias?: boolean }
  | { op: 'bn'; name: string; input: string; relu?: boolean }
  | { op: 'relu'; name: string; input: string }
  | { op: 'add'; name: string; inputs: [string, string]; relu?: boolean }
  | { op: 'gap'; name: string; input: string }
  | { op: 'dense'; name: string; input: string; units: number; bias?: boolean; relu?: boolean };

export interface GraphSpec {
  /** Architecture id, recorded in manifests and model files. */
  name: string;
  input: { height: number; width: number; channels: number };
  nodes: NodeSpec[];
  output: string;
  /**
   * The node a saved tfjs layers model outputs, when not `output`: a contrastive model trains
   * through a projection head (`output`) but is used through its representation. Saved models
   * end there; the weights of the nodes after it are kept beside the model for fedclr alone.
   */
  exportOutput?: string;
  /** BatchNorm settings (Keras semantics: moving = momentum·moving + (1-momentum)·batch). */
  batchNorm?: { momentum: number; epsilon: number };
}

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32';
  trainable: boolean;
}

export interface Weight extends WeightSpec {
  variable: tf.Variable;
}

const INPUT = 'input';

/** Output shape (without batch) of every node, checking that the graph is well formed. */
export function inferShapes(spec: GraphSpec): Map<string, number[]> {
  const shapes = new Map<string, number[]>([[INPUT, [spec.input.height, spec.input.width, spec.input.channels]]]);
  const get = (name: string, by: string): number[] => {
    const shape = shapes.get(name);
    if (shape === undefined) throw new ManifestMismatchError(`node '${by}' reads '${name}', which is not defined before it`);
    return shape;
  };
  for (const node of spec.nodes) {
    if (shapes.has(node.name)) throw new ManifestMismatchError(`node name '${node.name}' is used twice`);
    switch (node.op) {
      case 'conv': {
        const [h, w] = get(node.input, node.name) as [number, number, number];
        shapes.set(node.name, [Math.ceil(h / node.stride), Math.ceil(w / node.stride), node.filters]);
        break;
      }
      case 'bn':
      case 'relu':
        shapes.set(node.name, get(node.input, node.name));
        break;
      case 'add': {
        const a = get(node.inputs[0], node.name);
        const b = get(node.inputs[1], node.name);
        if (a.join() !== b.join()) throw new ManifestMismatchError(`add '${node.name}' joins shapes [${a}] and [${b}]`);
        shapes.set(node.name, a);
        break;
      }
      case 'gap': {
        const shape = get(node.input, node.name);
        shapes.set(node.name, [shape[shape.length - 1] as number]);
        break;
      }
      case 'dense': {
        const shape = get(node.input, node.name);
        if (shape.length !== 1) throw new ManifestMismatchError(`dense '${node.name}' needs a vector input, got [${shape}]`);
        shapes.set(node.name, [node.units]);
        break;
      }
    }
  }
  get(spec.output, 'output');
  return shapes;
}

/** The inputs a node reads. */
function inputsOf(node: NodeSpec): string[] {
  return node.op === 'add' ? [...node.inputs] : [node.input];
}

/**
 * The graph a saved model exposes: the nodes `exportOutput` depends on (in spec order), ending
 * there. The spec itself when it has no exportOutput. Keeps the name: it is the same model.
 */
export function exportedSpec(spec: GraphSpec): GraphSpec {
  const { exportOutput: target, ...rest } = spec;
  if (target === undefined || target === spec.output) return rest;
  const byName = new Map(spec.nodes.map((n) => [n.name, n]));
  if (!byName.has(target)) throw new ManifestMismatchError(`exportOutput '${target}' is not a node of ${spec.name}`);
  const needed = new Set<string>();
  const stack = [target];
  while (stack.length > 0) {
    const name = stack.pop() as string;
    const node = byName.get(name);
    if (node === undefined || needed.has(name)) continue;
    needed.add(name);
    stack.push(...inputsOf(node));
  }
  return { ...rest, nodes: spec.nodes.filter((n) => needed.has(n.name)), output: target };
}

/** The ordered weight list of a graph: this order is the flat-vector and manifest order. */
export function weightSpecs(spec: GraphSpec): WeightSpec[] {
  const shapes = inferShapes(spec);
  const channelsOf = (name: string): number => {
    const shape = shapes.get(name) as number[];
    return shape[shape.length - 1] as number;
  };
  const out: WeightSpec[] = [];
  const add = (name: string, shape: number[], trainable: boolean): void => {
    out.push({ name, shape, dtype: 'float32', trainable });
  };
  for (const node of spec.nodes) {
    if (node.op === 'conv') {
      add(`${node.name}/kernel`, [node.kernel, node.kernel, channelsOf(node.input), node.filters], true);
      if (node.bias) add(`${node.name}/bias`, [node.filters], true);
    } else if (node.op === 'bn') {
      const c = channelsOf(node.input);
      add(`${node.name}/gamma`, [c], true);
      add(`${node.name}/beta`, [c], true);
      add(`${node.name}/moving_mean`, [c], false);
      add(`${node.name}/moving_variance`, [c], false);
    } else if (node.op === 'dense') {
      add(`${node.name}/kernel`, [channelsOf(node.input), node.units], true);
      if (node.bias !== false) add(`${node.name}/bias`, [node.units], true);
    }
  }
  return out;
}

function initialValue(spec: WeightSpec, seed: number): tf.Tensor {
  const leaf = spec.name.slice(spec.name.lastIndexOf('/') + 1);
  if (leaf === 'kernel') {
    // He-normal: fan-in is every dimension but the last.
    const fanIn = spec.shape.slice(0, -1).reduce((a, b) => a * b, 1);
    // tfjs treats a seed of 0 as "no seed" (Math.random): never pass it one.
    return tf.truncatedNormal(spec.shape, 0, Math.sqrt(2 / fanIn), 'float32', seed + 1);
  }
  if (leaf === 'gamma' || leaf === 'moving_variance') return tf.ones(spec.shape);
  return tf.zeros(spec.shape);
}

let networkCounter = 0;

/** Parameters and state of a graph, and a forward pass for training or inference. */
export class Network {
  readonly spec: GraphSpec;
  readonly weights: readonly Weight[];
  private readonly byName: Map<string, tf.Variable>;
  private readonly momentum: number;
  private readonly epsilon: number;

  constructor(spec: GraphSpec, seed = 0) {
    this.spec = spec;
    const id = networkCounter++;
    this.weights = weightSpecs(spec).map((w, i) => ({
      ...w,
      variable: tf.tidy(() => tf.variable(initialValue(w, seed * 7919 + i), w.trainable, `${spec.name}#${id}/${w.name}`)),
    }));
    this.byName = new Map(this.weights.map((w) => [w.name, w.variable]));
    this.momentum = spec.batchNorm?.momentum ?? 0.99;
    this.epsilon = spec.batchNorm?.epsilon ?? 1e-3;
  }

  trainableVariables(): tf.Variable[] {
    return this.weights.filter((w) => w.trainable).map((w) => w.variable);
  }

  param(name: string): tf.Variable {
    const v = this.byName.get(name);
    if (v === undefined) throw new ManifestMismatchError(`no weight named '${name}' in ${this.spec.name}`);
    return v;
  }

  /**
   * Forward pass. In training mode BatchNorm uses batch statistics and updates its moving
   * averages in place (outside the gradient tape), unless `updateStats` is false (views whose
   * statistics should not describe the model, e.g. small local crops).
   */
  apply(x: tf.Tensor4D, training: boolean, output: string = this.spec.output, options: { updateStats?: boolean } = {}): tf.Tensor {
    // Any spatial size works (convolutions and the global pool do not care): training may run on
    // smaller views than the images the model is evaluated on. The channels must match.
    const { channels } = this.spec.input;
    if (x.rank !== 4 || x.shape[3] !== channels || x.shape[1] < 1 || x.shape[2] < 1) {
      throw new ManifestMismatchError(`${this.spec.name} expects input [n,height,width,${channels}], got [${x.shape}]`);
    }
    const pendingStats: { node: string; stats: BatchStats }[] = [];
    const out = tf.tidy(() => {
      const values = new Map<string, tf.Tensor>([[INPUT, x]]);
      const read = (name: string): tf.Tensor => values.get(name) as tf.Tensor;
      for (const node of this.spec.nodes) {
        values.set(node.name, this.run(node, read, training, pendingStats));
        if (node.name === output) return read(output);
      }
      if (output !== INPUT) throw new ManifestMismatchError(`${this.spec.name} has no node '${output}'`);
      return read(output);
    });
    const update = options.updateStats ?? true;
    for (const { node, stats } of pendingStats) {
      if (update) this.updateMovingStats(node, stats);
      tf.dispose([stats.mean, stats.variance]);
    }
    return out;
  }

  private run(node: NodeSpec, read: (name: string) => tf.Tensor, training: boolean, pending: { node: string; stats: BatchStats }[]): tf.Tensor {
    switch (node.op) {
      case 'conv': {
        const y = tf.conv2d(read(node.input) as tf.Tensor4D, this.param(`${node.name}/kernel`) as tf.Tensor4D, node.stride, 'same');
        return node.bias ? tf.add(y, this.param(`${node.name}/bias`)) : y;
      }
      case 'bn': {
        const gamma = this.param(`${node.name}/gamma`) as tf.Tensor1D;
        const beta = this.param(`${node.name}/beta`) as tf.Tensor1D;
        if (training) {
          return batchNormTrain(read(node.input), gamma, beta, this.epsilon, node.relu === true, (stats) => pending.push({ node: node.name, stats }));
        }
        return batchNormInfer(
          read(node.input),
          gamma,
          beta,
          this.param(`${node.name}/moving_mean`) as tf.Tensor1D,
          this.param(`${node.name}/moving_variance`) as tf.Tensor1D,
          this.epsilon,
          node.relu === true,
        );
      }
      case 'relu':
        return tf.relu(read(node.input));
      case 'add': {
        const sum = tf.add(read(node.inputs[0]), read(node.inputs[1]));
        return node.relu ? tf.relu(sum) : sum;
      }
      case 'gap':
        return globalAveragePool(read(node.input) as tf.Tensor4D);
      case 'dense': {
        let y = tf.matMul(read(node.input) as tf.Tensor2D, this.param(`${node.name}/kernel`) as tf.Tensor2D);
        if (node.bias !== false) y = tf.add(y, this.param(`${node.name}/bias`));
        return node.relu ? tf.relu(y) : y;
      }
    }
  }

  private updateMovingStats(node: string, stats: BatchStats): void {
    const m = this.momentum;
    const movingMean = this.param(`${node}/moving_mean`);
    const movingVariance = this.param(`${node}/moving_variance`);
    tf.tidy(() => {
      movingMean.assign(tf.add(tf.mul(movingMean, m), tf.mul(stats.mean, 1 - m)));
      movingVariance.assign(tf.add(tf.mul(movingVariance, m), tf.mul(stats.variance, 1 - m)));
    });
  }

  dispose(): void {
    for (const w of this.weights) w.variable.dispose();
  }
}
