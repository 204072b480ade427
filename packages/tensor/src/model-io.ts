// Save and load models in the standard tfjs layers format (model.json + one weights file), which
// tfjs-node and browsers load with tf.loadLayersModel. Our own reader maps the file back onto a
// graph spec by weight name and refuses anything that does not match exactly.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ManifestMismatchError, ModelFileError } from './errors.js';
import { Network, type GraphSpec } from './nn/graph.js';
import { assertSameManifest, loadFlatWeights, manifestOfSpec, segmentsOf, type WeightManifest } from './weights.js';

export const MODEL_FILE = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';

/** What fedclr records inside model.json (userDefinedMetadata.fedclr). */
export interface FedclrModelMetadata {
  spec: GraphSpec;
  /** Free-form provenance, e.g. the round that produced the model. */
  info?: Record<string, string | number | boolean>;
}

/** The same graph as a tfjs-layers functional model (weights uninitialised). */
export function toLayersModel(spec: GraphSpec): tfl.LayersModel {
  const momentum = spec.batchNorm?.momentum ?? 0.99;
  const epsilon = spec.batchNorm?.epsilon ?? 1e-3;
  const input = tfl.input({ shape: [spec.input.height, spec.input.width, spec.input.channels], name: 'input' });
  const values = new Map<string, tfl.SymbolicTensor>([['input', input]]);
  const read = (name: string): tfl.SymbolicTensor => values.get(name) as tfl.SymbolicTensor;
  const relu = (x: tfl.SymbolicTensor, name: string): tfl.SymbolicTensor => tfl.layers.reLU({ name: `${name}_relu` }).apply(x) as tfl.SymbolicTensor;
  for (const node of spec.nodes) {
    let out: tfl.SymbolicTensor;
    switch (node.op) {
      case 'conv':
        out = tfl.layers
          .conv2d({ name: node.name, filters: node.filters, kernelSize: node.kernel, strides: node.stride, padding: 'same', useBias: node.bias === true })
          .apply(read(node.input)) as tfl.SymbolicTensor;
        break;
      case 'bn':
        out = tfl.layers.batchNormalization({ name: node.name, axis: -1, momentum, epsilon }).apply(read(node.input)) as tfl.SymbolicTensor;
        if (node.relu) out = relu(out, node.name);
        break;
      case 'relu':
        out = tfl.layers.reLU({ name: node.name }).apply(read(node.input)) as tfl.SymbolicTensor;
        break;
      case 'add':
        out = tfl.layers.add({ name: node.name }).apply([read(node.inputs[0]), read(node.inputs[1])]) as tfl.SymbolicTensor;
        if (node.relu) out = relu(out, node.name);
        break;
      case 'gap':
        out = tfl.layers.globalAveragePooling2d({ name: node.name }).apply(read(node.input)) as tfl.SymbolicTensor;
        break;
      case 'dense':
        out = tfl.layers
          .dense({ name: node.name, units: node.units, useBias: node.bias !== false, activation: node.relu ? 'relu' : 'linear' })
          .apply(read(node.input)) as tfl.SymbolicTensor;
        break;
    }
    values.set(node.name, out);
  }
  return tfl.model({ inputs: input, outputs: read(spec.output), name: spec.name.replace(/[^A-Za-z0-9_.-]/g, '_') });
}

/** The content of a model.json in the tfjs layers format, as saveModel writes it. */
export interface LayersModelJson {
  format: 'layers-model';
  generatedBy: string;
  convertedBy: null;
  modelTopology: object;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  userDefinedMetadata: { fedclr: FedclrModelMetadata };
}

/** model.json and the bytes of its one weights file, in memory. */
export interface LayersModelArtifacts {
  modelJson: LayersModelJson;
  weightData: Uint8Array;
}

/**
 * A flat weight vector of `spec` as tfjs layers model files, without touching the disk.
 * `weightsPath` is the weights file as model.json names it (relative to model.json's location).
 */
export async function layersModelArtifacts(
  spec: GraphSpec,
  flat: Float32Array,
  info?: FedclrModelMetadata['info'],
  weightsPath = `./${WEIGHTS_FILE}`,
): Promise<LayersModelArtifacts> {
  const network = new Network(spec);
  const model = toLayersModel(spec);
  try {
    loadFlatWeights(network, flat);
    const byName = new Map(network.weights.map((w) => [w.name, w.variable]));
    for (const w of model.weights) {
      const source = byName.get(w.originalName);
      if (source === undefined) throw new ManifestMismatchError(`layers model weight '${w.originalName}' has no counterpart in ${spec.name}`);
      w.write(source.clone());
    }
    const fedclr: FedclrModelMetadata = { spec, ...(info ? { info } : {}) };
    model.setUserDefinedMetadata({ fedclr } as unknown as Record<string, never>);
    let captured: tf.io.ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        captured = artifacts;
        return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
      }),
    );
    const artifacts = captured as tf.io.ModelArtifacts; // model.save always calls its handler
    return {
      modelJson: {
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tfl.version_layers}`,
        convertedBy: null,
        modelTopology: artifacts.modelTopology as object,
        weightsManifest: [{ paths: [weightsPath], weights: artifacts.weightSpecs ?? [] }],
        userDefinedMetadata: { fedclr },
      },
      weightData: new Uint8Array(tf.io.concatenateArrayBuffers(artifacts.weightData as ArrayBuffer | ArrayBuffer[])),
    };
  } finally {
    network.dispose();
    model.dispose();
  }
}

/** Writes a flat weight vector of `spec` as model.json + weights.bin in `dir` (atomically, via a temp dir). */
export async function saveModel(dir: string, spec: GraphSpec, flat: Float32Array, info?: FedclrModelMetadata['info']): Promise<void> {
  const { modelJson, weightData } = await layersModelArtifacts(spec, flat, info);
  const temp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  await mkdir(temp, { recursive: true });
  await writeFile(join(temp, WEIGHTS_FILE), weightData);
  await writeFile(join(temp, MODEL_FILE), JSON.stringify(modelJson));
  await rm(dir, { recursive: true, force: true });
  await rename(temp, dir);
}

interface ModelJson {
  format?: string;
  modelTopology?: unknown;
  weightsManifest?: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  userDefinedMetadata?: { fedclr?: FedclrModelMetadata };
}

async function readModelJson(dir: string): Promise<ModelJson> {
  const path = join(dir, MODEL_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ModelFileError(dir, `no ${MODEL_FILE} (${(err as Error).message})`);
  }
  try {
    return JSON.parse(text) as ModelJson;
  } catch (err) {
    throw new ModelFileError(dir, `${MODEL_FILE} is not valid JSON (${(err as Error).message})`);
  }
}

export interface LoadedModel {
  spec: GraphSpec;
  manifest: WeightManifest;
  weights: Float32Array;
  info?: FedclrModelMetadata['info'];
}

/**
 * Reads a model saved by saveModel back into a flat vector. `expectedSpec`, when given, must be
 * the architecture recorded in the file (same name and weights), or it is an error.
 */
export async function loadModel(dir: string, expectedSpec?: GraphSpec): Promise<LoadedModel> {
  const json = await readModelJson(dir);
  if (json.format !== 'layers-model' || json.modelTopology === undefined) throw new ModelFileError(dir, 'not a tfjs layers model');
  const meta = json.userDefinedMetadata?.fedclr;
  if (meta?.spec === undefined) throw new ModelFileError(dir, 'model.json carries no fedclr architecture (userDefinedMetadata.fedclr.spec)');
  const spec = meta.spec;
  const manifest = manifestOfSpec(spec);
  if (expectedSpec !== undefined) assertSameManifest(manifest, manifestOfSpec(expectedSpec));
  const group = json.weightsManifest?.[0];
  if (group === undefined || group.paths.length !== 1) throw new ModelFileError(dir, 'expected one weights group with one file');
  let bytes: Buffer;
  try {
    bytes = await readFile(join(dir, group.paths[0] as string));
  } catch (err) {
    throw new ModelFileError(dir, `weights file missing (${(err as Error).message})`);
  }
  const entries = new Map(group.weights.map((w) => [w.name, w]));
  let offset = 0;
  const located = new Map<string, number>();
  for (const w of group.weights) {
    if (w.dtype !== 'float32') throw new ModelFileError(dir, `weight '${w.name}' is ${w.dtype}; fedclr models are float32`);
    located.set(w.name, offset);
    offset += w.shape.reduce((a, b) => a * b, 1) * 4;
  }
  if (offset !== bytes.length) throw new ModelFileError(dir, `weights file has ${bytes.length} bytes, the manifest describes ${offset}`);
  const flat = new Float32Array(segmentsOf(manifest).reduce((a, s) => a + s.size, 0));
  const source = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  for (const seg of segmentsOf(manifest)) {
    const entry = entries.get(seg.spec.name);
    if (entry === undefined) throw new ManifestMismatchError(`the file has no weight '${seg.spec.name}'`);
    if (entry.shape.join('x') !== seg.spec.shape.join('x')) {
      throw new ManifestMismatchError(`weight '${seg.spec.name}' has shape [${entry.shape}] in the file, [${seg.spec.shape}] in the architecture`);
    }
    const at = (located.get(seg.spec.name) as number) / 4;
    flat.set(source.subarray(at, at + seg.size), seg.offset);
  }
  if (entries.size !== manifest.tensors.length) {
    const extra = [...entries.keys()].filter((k) => !manifest.tensors.some((t) => t.name === k));
    throw new ManifestMismatchError(`the file has weights the architecture lacks: ${extra.join(', ')}`);
  }
  return { spec, manifest, weights: flat, ...(meta.info ? { info: meta.info } : {}) };
}
