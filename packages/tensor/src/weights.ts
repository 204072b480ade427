// All of a model's weights (trainable and BatchNorm statistics) as one Float32Array, described
// by a manifest. The flat vector is what agents train, mask and ship; the manifest is how both
// sides agree on what each number means.
import * as tf from '@tensorflow/tfjs-core';
import { ManifestMismatchError, WeightLengthError } from './errors.js';
import { weightSpecs, type GraphSpec, type Network, type WeightSpec } from './nn/graph.js';

export interface WeightManifest {
  /** Architecture id (GraphSpec.name). */
  architecture: string;
  tensors: WeightSpec[];
}

export interface Segment {
  spec: WeightSpec;
  offset: number;
  size: number;
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function manifestOf(network: Network): WeightManifest {
  return manifestOfSpec(network.spec);
}

/** The manifest a graph spec implies, without building the network. */
export function manifestOfSpec(spec: GraphSpec): WeightManifest {
  return { architecture: spec.name, tensors: weightSpecs(spec) };
}

export function segmentsOf(manifest: WeightManifest): Segment[] {
  let offset = 0;
  return manifest.tensors.map((spec) => {
    const size = sizeOf(spec.shape);
    const segment = { spec, offset, size };
    offset += size;
    return segment;
  });
}

export function totalSize(manifest: WeightManifest): number {
  return manifest.tensors.reduce((sum, t) => sum + sizeOf(t.shape), 0);
}

/** Throws naming the first difference; never reinterprets one shape as another. */
export function assertSameManifest(actual: WeightManifest, expected: WeightManifest): void {
  if (actual.architecture !== expected.architecture) {
    throw new ManifestMismatchError(`architecture '${actual.architecture}' is not '${expected.architecture}'`);
  }
  if (actual.tensors.length !== expected.tensors.length) {
    throw new ManifestMismatchError(`${actual.tensors.length} tensors where ${expected.tensors.length} are expected`);
  }
  actual.tensors.forEach((a, i) => {
    const e = expected.tensors[i] as WeightSpec;
    if (a.name !== e.name) throw new ManifestMismatchError(`tensor #${i} is '${a.name}', expected '${e.name}'`);
    if (a.shape.join('x') !== e.shape.join('x')) {
      throw new ManifestMismatchError(`tensor '${a.name}' has shape [${a.shape}], expected [${e.shape}]`);
    }
    if (a.dtype !== e.dtype) throw new ManifestMismatchError(`tensor '${a.name}' has dtype ${a.dtype}, expected ${e.dtype}`);
  });
}

/** Copies every weight of the network, in manifest order, into one vector. */
export function flattenWeights(network: Network, out?: Float32Array): Float32Array {
  const manifest = manifestOf(network);
  const flat = out ?? new Float32Array(totalSize(manifest));
  if (flat.length !== totalSize(manifest)) throw new WeightLengthError(flat.length, totalSize(manifest));
  let offset = 0;
  for (const w of network.weights) {
    const values = w.variable.dataSync() as Float32Array;
    flat.set(values, offset);
    offset += values.length;
  }
  return flat;
}

/** Writes a flat vector (checked against the network's manifest) into the network's variables. */
export function loadFlatWeights(network: Network, flat: Float32Array, manifest?: WeightManifest): void {
  const own = manifestOf(network);
  if (manifest !== undefined) assertSameManifest(manifest, own);
  const expected = totalSize(own);
  if (flat.length !== expected) throw new WeightLengthError(flat.length, expected);
  let offset = 0;
  for (const w of network.weights) {
    const size = sizeOf(w.shape);
    const values = flat.subarray(offset, offset + size);
    tf.tidy(() => w.variable.assign(tf.tensor(values, w.shape, 'float32')));
    offset += size;
  }
}
