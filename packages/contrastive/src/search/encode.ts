// Representations of images through a saved encoder: batched, over worker threads, with the
// network in inference mode (BatchNorm on its moving statistics), exactly what a stock tfjs
// loadLayersModel(...).predict of the exported model computes.
import { createHash } from 'node:crypto';
import { inferShapes, type GraphSpec } from '@fedclr/tensor';
import { REPRESENTATION } from '../encoders/index.js';
import { extractFeatures } from '../eval/features.js';
import { ntXentPairLoss } from '../train/loss.js';
import { createStepEngine } from '../train/parallel.js';
import { SearchInvalidOptionError } from './errors.js';

/** The node whose output is the representation: REPRESENTATION when the graph has it, else its output. */
export function representationNode(spec: GraphSpec): string {
  return spec.nodes.some((n) => n.name === REPRESENTATION) ? REPRESENTATION : spec.output;
}

/** Width of the representation of a graph (a vector-valued node). */
export function representationDim(spec: GraphSpec): number {
  const shape = inferShapes(spec).get(representationNode(spec)) as number[];
  if (shape.length !== 1) throw new SearchInvalidOptionError('model', `'${representationNode(spec)}' of ${spec.name} is not a vector (shape [${shape}])`);
  return shape[0] as number;
}

/**
 * sha256 of what the representation depends on: the graph and its weights. Embeddings, indexes
 * and probe heads record it, so that a query or a head is never used with another encoder.
 */
export function modelFingerprint(spec: GraphSpec, weights: Float32Array): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ name: spec.name, input: spec.input, nodes: spec.nodes, output: representationNode(spec) }));
  hash.update(new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength));
  return hash.digest('hex');
}

export interface EncodeOptions {
  /** Worker threads (0: in-process). Default 0. */
  readonly workers?: number;
  /** Images per forward pass. Default 1024. */
  readonly batchSize?: number;
}

/**
 * Representations ([count, dim], row-major) of `count` images (HWC, bytes 0..255 or floats in
 * [0, 1]) of the model's input size.
 */
export async function encodeImages(
  spec: GraphSpec,
  weights: Float32Array,
  images: Uint8Array | Float32Array,
  count: number,
  options: EncodeOptions = {},
): Promise<{ features: Float32Array; dim: number }> {
  const { height, width, channels } = spec.input;
  if (images.length !== count * height * width * channels) {
    throw new SearchInvalidOptionError('images', `${images.length} values are not ${count} images of ${height}x${width}x${channels}`);
  }
  const batchSize = options.batchSize ?? 1024;
  const engine = await createStepEngine({
    spec,
    augment: null, // inference only: no views are drawn
    loss: ntXentPairLoss(),
    optimizer: { kind: 'adam' },
    initialWeights: weights,
    workers: options.workers ?? 0,
    maxBatch: batchSize,
  });
  try {
    return await extractFeatures((batch, n) => engine.embed(batch, n, representationNode(spec)), images, count, batchSize);
  } finally {
    await engine.dispose();
  }
}
