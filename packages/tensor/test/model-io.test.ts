// Models saved by fedclr load in stock tfjs-layers (as tfjs-node and browsers load them) and
// give the same outputs; our reader round-trips them and refuses damaged or foreign files.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Network, exportedSpec, flattenWeights, initBackend, loadExportedModel, loadFlatWeights, loadModel, manifestOfSpec, saveModel, segmentsOf, type GraphSpec } from '../src/index.js';
import { uniformArray } from './seeded.js';

const spec: GraphSpec = {
  name: 'io-test',
  input: { height: 8, width: 8, channels: 3 },
  nodes: [
    { op: 'conv', name: 'c1', input: 'input', filters: 6, kernel: 3, stride: 1 },
    { op: 'bn', name: 'b1', input: 'c1', relu: true },
    { op: 'conv', name: 'c2', input: 'b1', filters: 6, kernel: 3, stride: 2 },
    { op: 'bn', name: 'b2', input: 'c2' },
    { op: 'conv', name: 'p', input: 'b1', filters: 6, kernel: 1, stride: 2, bias: true },
    { op: 'add', name: 'sum', inputs: ['b2', 'p'], relu: true },
    { op: 'gap', name: 'representation', input: 'sum' },
    { op: 'dense', name: 'hidden', input: 'representation', units: 5, relu: true },
    { op: 'dense', name: 'projection', input: 'hidden', units: 4 },
  ],
  output: 'projection',
};

/** Reads model.json + weights the way tfjs-node's file:// handler does. */
function fileHandler(dir: string): tf.io.IOHandler {
  return {
    load: async () => {
      const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as {
        modelTopology: object;
        weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
      };
      const group = json.weightsManifest[0]!;
      const bin = await readFile(join(dir, group.paths[0]!));
      return { modelTopology: json.modelTopology, weightSpecs: group.weights, weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length) };
    },
  };
}

function input(seed: number): tf.Tensor4D {
  return tf.tensor4d(uniformArray(2 * 8 * 8 * 3, seed), [2, 8, 8, 3]);
}

describe('tfjs layers model files', () => {
  let dir: string;
  before(async () => {
    await initBackend({ prefer: 'wasm' });
    dir = await mkdtemp(join(tmpdir(), 'fedclr-model-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('stock tfjs-layers loads the saved model and predicts what our network computes', async () => {
    const net = new Network(spec, 4);
    const x = input(1);
    tf.dispose(net.apply(x, true)); // non-trivial BatchNorm statistics
    const flat = flattenWeights(net);
    await saveModel(join(dir, 'm1'), spec, flat, { round: 3 });
    const model = await tfl.loadLayersModel(fileHandler(join(dir, 'm1')));
    const expected = net.apply(x, false).dataSync() as Float32Array;
    const actual = (model.predict(x) as tf.Tensor).dataSync() as Float32Array;
    assert.equal(actual.length, expected.length);
    for (let i = 0; i < actual.length; i++) assert.ok(Math.abs((actual[i] as number) - (expected[i] as number)) < 1e-4, `output ${i}`);
    model.dispose();
    net.dispose();
    x.dispose();
  });

  it('loadModel returns the same flat weights, architecture and info', async () => {
    const net = new Network(spec, 7);
    const flat = flattenWeights(net);
    await saveModel(join(dir, 'm2'), spec, flat, { round: 9 });
    const loaded = await loadModel(join(dir, 'm2'), spec);
    assert.deepEqual(loaded.weights, flat);
    assert.equal(loaded.spec.name, 'io-test');
    assert.deepEqual(loaded.info, { round: 9 });
    const other = new Network(spec, 8);
    loadFlatWeights(other, loaded.weights, loaded.manifest);
    assert.deepEqual(flattenWeights(other), flat);
    net.dispose();
    other.dispose();
  });

  it('refuses a truncated weights file, a missing model.json, and another architecture', async () => {
    const net = new Network(spec, 1);
    await saveModel(join(dir, 'm3'), spec, flattenWeights(net));
    net.dispose();
    const bin = await readFile(join(dir, 'm3', 'weights.bin'));
    await writeFile(join(dir, 'm3', 'weights.bin'), bin.subarray(0, bin.length - 8));
    await assert.rejects(loadModel(join(dir, 'm3')), { code: 'FEDCLR_TENSOR_MODEL_FILE', message: /bytes/ });
    await assert.rejects(loadModel(join(dir, 'nothing-here')), { code: 'FEDCLR_TENSOR_MODEL_FILE' });
    const net2 = new Network(spec, 1);
    await saveModel(join(dir, 'm4'), spec, flattenWeights(net2));
    net2.dispose();
    const wider: GraphSpec = { ...spec, name: 'io-test-wide', nodes: spec.nodes.map((n) => (n.name === 'c1' ? { ...n, filters: 8 } : n)) };
    await assert.rejects(loadModel(join(dir, 'm4'), wider), { code: 'FEDCLR_TENSOR_MANIFEST_MISMATCH' });
  });

  it('with exportOutput, stock tfjs gets the representation; head.bin keeps the rest for fedclr', async () => {
    const encoderSpec: GraphSpec = { ...spec, exportOutput: 'representation' };
    const net = new Network(encoderSpec, 5);
    const x = input(2);
    tf.dispose(net.apply(x, true));
    const flat = flattenWeights(net);
    await saveModel(join(dir, 'enc'), encoderSpec, flat);
    const json = JSON.parse(await readFile(join(dir, 'enc', 'model.json'), 'utf8')) as { modelTopology: object; weightsManifest: { weights: { name: string }[] }[] };
    assert.doesNotMatch(JSON.stringify(json.modelTopology), /"projection"|"hidden"/, 'the head is not in the layers topology');
    assert.ok(json.weightsManifest[0]!.weights.every((w) => !w.name.startsWith('hidden/') && !w.name.startsWith('projection/')));

    const model = await tfl.loadLayersModel(fileHandler(join(dir, 'enc')));
    const out = model.predict(x) as tf.Tensor;
    assert.deepEqual(out.shape, [2, 6], 'the representation: 6 channels of the last block');
    const expected = net.apply(x, false, 'representation').dataSync() as Float32Array;
    const actual = out.dataSync() as Float32Array;
    for (let i = 0; i < actual.length; i++) assert.ok(Math.abs((actual[i] as number) - (expected[i] as number)) < 1e-4, `output ${i}`);
    tf.dispose([out, x]);
    model.dispose();

    // fedclr reads the whole graph back (head.bin too): what resuming training needs.
    const whole = await loadModel(join(dir, 'enc'), encoderSpec);
    assert.deepEqual(whole.weights, flat);
    // ...and the exported part alone, without head.bin.
    await rm(join(dir, 'enc', 'head.bin'));
    const exported = await loadExportedModel(join(dir, 'enc'));
    assert.equal(exported.spec.output, 'representation');
    assert.deepEqual(exported.spec.nodes.map((n) => n.name), exportedSpec(encoderSpec).nodes.map((n) => n.name));
    const encoderNames = new Set(manifestOfSpec(exported.spec).tensors.map((t) => t.name));
    const encoderPart = segmentsOf(manifestOfSpec(encoderSpec)).filter((seg) => encoderNames.has(seg.spec.name));
    assert.deepEqual(exported.weights, Float32Array.from(encoderPart.flatMap((seg) => [...flat.subarray(seg.offset, seg.offset + seg.size)])));
    await assert.rejects(loadModel(join(dir, 'enc')), { code: 'FEDCLR_TENSOR_MODEL_FILE', message: /head\.bin missing/ });
    net.dispose();
  });

  it('refuses to save a vector of the wrong length and leaves no partial directory', async () => {
    await assert.rejects(saveModel(join(dir, 'm5'), spec, new Float32Array(10)), { code: 'FEDCLR_TENSOR_WEIGHT_LENGTH' });
    await assert.rejects(readFile(join(dir, 'm5', 'model.json')));
  });
});
