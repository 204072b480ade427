// Save and load models in the standard tfjs layers format (model.json + one weights file), which
// tfjs-node and browsers load with tf.loadLayersModel. The layers model is the graph's exported
// part (GraphSpec.exportOutput: a contrastive model's representation, not its projection head);
// the weights it leaves out go to head.bin beside it, which only fedclr reads. Our own reader
// maps the files back onto a graph spec by weight name and refuses anything that does not match.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ManifestMismatchError, ModelFileError } from './errors.js';
import { Network, exportedSpec, weightSpecs, type GraphSpec } from './nn/graph.js';
import { assertSameManifest, loadFlatWeights, manifestOfSpec, segmentsOf, type WeightManifest } from './weights.js';

export const MODEL_FILE = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';
/** Weights of the nodes after the exported output (a projection head): fedclr reads them, stock tfjs never does. */
export const HEAD_WEIGHTS_FILE = 'head.bin';

/** One weights file and the tensors it holds, in order (a tfjs weightsManifest entry). */
export interface WeightsGroup {
  paths: string[];
  weights: tf.io.WeightsManifestEntry[];
}

/** What fedclr records inside model.json (userDefinedMetadata.fedclr). */
export interface FedclrModelMetadata {
  /** The whole trained graph, head included; the layers model is exportedSpec(spec). */
  spec: GraphSpec;
  /** Free-form provenance, e.g. the round that produced the model. */
  info?: Record<string, string | number | boolean>;
  /**
   * The weights of spec's nodes that the layers model leaves out (those after spec.exportOutput),
   * in their own file beside model.json. Extra weights in weightsManifest would make stock tfjs
   * refuse the model, so they live here; fedclr reads them back to resume training.
   */
  head?: WeightsGroup;
}

/**
 * The exported part of a graph (exportedSpec: up to exportOutput) as a tfjs-layers functional
 * model (weights uninitialised).
 */
export function toLayersModel(full: GraphSpec): tfl.LayersModel {
  const spec = exportedSpec(full);
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
  weightsManifest: WeightsGroup[];
  userDefinedMetadata: { fedclr: FedclrModelMetadata };
}

/** model.json and the bytes of its one weights file, in memory. */
export interface LayersModelArtifacts {
  modelJson: LayersModelJson;
  weightData: Uint8Array;
  /** The weights the layers model leaves out (see FedclrModelMetadata.head); absent when it has them all. */
  head?: { weights: tf.io.WeightsManifestEntry[]; data: Uint8Array };
}

/** The flat weights of spec's tensors that exportedSpec(spec) lacks, and their manifest entries. */
function headWeights(spec: GraphSpec, flat: Float32Array): LayersModelArtifacts['head'] {
  const exported = new Set(weightSpecs(exportedSpec(spec)).map((w) => w.name));
  const rest = segmentsOf(manifestOfSpec(spec)).filter((seg) => !exported.has(seg.spec.name));
  if (rest.length === 0) return undefined;
  const values = new Float32Array(rest.reduce((a, seg) => a + seg.size, 0));
  let at = 0;
  for (const seg of rest) {
    values.set(flat.subarray(seg.offset, seg.offset + seg.size), at);
    at += seg.size;
  }
  return { weights: rest.map((seg) => ({ name: seg.spec.name, shape: [...seg.spec.shape], dtype: 'float32' })), data: new Uint8Array(values.buffer) };
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
    const head = headWeights(spec, flat);
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
      ...(head !== undefined ? { head } : {}),
    };
  } finally {
    network.dispose();
    model.dispose();
  }
}

/**
 * Writes a flat weight vector of `spec` as model.json + weights.bin in `dir` (atomically, via a
 * temp dir), and head.bin when the layers model leaves some of spec's weights out.
 */
export async function saveModel(dir: string, spec: GraphSpec, flat: Float32Array, info?: FedclrModelMetadata['info']): Promise<void> {
  const { modelJson, weightData, head } = await layersModelArtifacts(spec, flat, info);
  if (head !== undefined) modelJson.userDefinedMetadata.fedclr.head = { paths: [`./${HEAD_WEIGHTS_FILE}`], weights: head.weights };
  const temp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  await mkdir(temp, { recursive: true });
  await writeFile(join(temp, WEIGHTS_FILE), weightData);
  if (head !== undefined) await writeFile(join(temp, HEAD_WEIGHTS_FILE), head.data);
  await writeFile(join(temp, MODEL_FILE), JSON.stringify(modelJson));
  await rm(dir, { recursive: true, force: true });
  await rename(temp, dir);
}

interface ModelJson {
  format?: string;
  modelTopology?: unknown;
  weightsManifest?: WeightsGroup[];
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

/** model.json's fedclr metadata and its layers weights group, checked. */
async function readFedclrModel(dir: string): Promise<{ meta: FedclrModelMetadata; group: WeightsGroup }> {
  const json = await readModelJson(dir);
  if (json.format !== 'layers-model' || json.modelTopology === undefined) throw new ModelFileError(dir, 'not a tfjs layers model');
  const meta = json.userDefinedMetadata?.fedclr;
  if (meta?.spec === undefined) throw new ModelFileError(dir, 'model.json carries no fedclr architecture (userDefinedMetadata.fedclr.spec)');
  const group = json.weightsManifest?.[0];
  if (group === undefined || json.weightsManifest?.length !== 1) throw new ModelFileError(dir, 'expected one weights group');
  return { meta, group };
}

/** The tensors of one weights group, by name, read from its file and checked against its manifest. */
async function readGroup(dir: string, group: WeightsGroup, into: Map<string, { shape: number[]; values: Float32Array }>): Promise<void> {
  if (!Array.isArray(group.paths) || group.paths.length !== 1 || !Array.isArray(group.weights)) throw new ModelFileError(dir, 'expected each weights group to name one file');
  const path = group.paths[0] as string;
  let bytes: Buffer;
  try {
    bytes = await readFile(join(dir, path));
  } catch (err) {
    throw new ModelFileError(dir, `weights file ${path} missing (${(err as Error).message})`);
  }
  let offset = 0;
  const located: { entry: tf.io.WeightsManifestEntry; at: number }[] = [];
  for (const w of group.weights) {
    if (w.dtype !== 'float32') throw new ModelFileError(dir, `weight '${w.name}' is ${w.dtype}; fedclr models are float32`);
    located.push({ entry: w, at: offset / 4 });
    offset += w.shape.reduce((a, b) => a * b, 1) * 4;
  }
  if (offset !== bytes.length) throw new ModelFileError(dir, `weights file ${path} has ${bytes.length} bytes, the manifest describes ${offset}`);
  const source = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  for (const { entry, at } of located) {
    into.set(entry.name, { shape: entry.shape, values: source.subarray(at, at + entry.shape.reduce((a, b) => a * b, 1)) });
  }
}

/** The flat vector of `spec` from weights groups that must hold exactly its tensors. */
async function readFlat(dir: string, spec: GraphSpec, groups: WeightsGroup[]): Promise<{ manifest: WeightManifest; flat: Float32Array }> {
  const manifest = manifestOfSpec(spec);
  const tensors = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const group of groups) await readGroup(dir, group, tensors);
  const flat = new Float32Array(segmentsOf(manifest).reduce((a, s) => a + s.size, 0));
  for (const seg of segmentsOf(manifest)) {
    const tensor = tensors.get(seg.spec.name);
    if (tensor === undefined) throw new ManifestMismatchError(`the file has no weight '${seg.spec.name}'`);
    if (tensor.shape.join('x') !== seg.spec.shape.join('x')) {
      throw new ManifestMismatchError(`weight '${seg.spec.name}' has shape [${tensor.shape}] in the file, [${seg.spec.shape}] in the architecture`);
    }
    flat.set(tensor.values, seg.offset);
  }
  if (tensors.size !== manifest.tensors.length) {
    const extra = [...tensors.keys()].filter((k) => !manifest.tensors.some((t) => t.name === k));
    throw new ManifestMismatchError(`the file has weights the architecture lacks: ${extra.join(', ')}`);
  }
  return { manifest, flat };
}

export interface LoadedModel {
  spec: GraphSpec;
  manifest: WeightManifest;
  weights: Float32Array;
  info?: FedclrModelMetadata['info'];
}

/**
 * Reads a model saved by saveModel back into a flat vector of its whole graph (head included).
 * `expectedSpec`, when given, must be the architecture recorded in the file (same name and
 * weights), or it is an error.
 */
export async function loadModel(dir: string, expectedSpec?: GraphSpec): Promise<LoadedModel> {
  const { meta, group } = await readFedclrModel(dir);
  const spec = meta.spec;
  if (expectedSpec !== undefined) assertSameManifest(manifestOfSpec(spec), manifestOfSpec(expectedSpec));
  const { manifest, flat } = await readFlat(dir, spec, meta.head === undefined ? [group] : [group, meta.head]);
  return { spec, manifest, weights: flat, ...(meta.info ? { info: meta.info } : {}) };
}

/**
 * Reads only what stock tfjs reads: the exported graph (exportedSpec of the recorded one, e.g. the
 * encoder without its projection head) and its weights from weights.bin. head.bin is not needed.
 */
export async function loadExportedModel(dir: string): Promise<LoadedModel> {
  const { meta, group } = await readFedclrModel(dir);
  const spec = exportedSpec(meta.spec);
  const { manifest, flat } = await readFlat(dir, spec, [group]);
  return { spec, manifest, weights: flat, ...(meta.info ? { info: meta.info } : {}) };
}
