// A coordinator checkpoint's tfjs export (what `fedclr coordinator` writes to
// checkpoints/round-N/tfjs) is the encoder: stock tfjs-layers loads it with one output, the
// representation's width, predicting what our network's representation is; head.bin beside it
// gives fedclr the whole trained graph back.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { architectureId, protocolManifest } from '@fedclr/agent';
import { convnetS, initialState, representationDim, withProjectionHead } from '@fedclr/contrastive';
import { Network, exportedSpec, initBackend, loadFlatWeights, loadModel } from '@fedclr/tensor';
import { createTfjsExporter } from '../src/tfjs-exporter.js';

describe('tfjs checkpoint exporter', () => {
  let dir: string;
  before(async () => {
    await initBackend({ prefer: 'wasm' });
    dir = mkdtempSync(join(tmpdir(), 'fedclr-export-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("exports the encoder: loadLayersModel's output is the representation's width and values", async () => {
    const spec = withProjectionHead(convnetS({ height: 12, width: 12, channels: 1, widths: [4, 8, 24] }), 24, { out: 16 });
    const weights = initialState(spec, 2).params.map((w, i) => w + 0.02 * Math.cos(i)); // BatchNorm statistics off 0/1
    await createTfjsExporter(spec).write(
      { roundId: 3, completedRounds: 3, architecture: architectureId(spec), manifest: protocolManifest(spec), weights, modelVersion: 'v3' },
      dir,
    );
    const tfjsDir = join(dir, 'tfjs');
    assert.deepEqual(readdirSync(tfjsDir).sort(), ['head.bin', 'model.json', 'weights.bin']);
    const json = JSON.parse(readFileSync(join(tfjsDir, 'model.json'), 'utf8')) as { modelTopology: object; weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[] };
    const group = json.weightsManifest[0] as { paths: string[]; weights: tf.io.WeightsManifestEntry[] };
    const bin = readFileSync(join(tfjsDir, group.paths[0] as string));
    const model = await tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: group.weights, weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length) }));
    assert.deepEqual(model.outputs.map((o) => o.shape), [[null, representationDim(exportedSpec(spec))]]);
    assert.equal(representationDim(exportedSpec(spec)), 24);

    const x = tf.randomUniform([3, 12, 12, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
    const net = new Network(spec);
    loadFlatWeights(net, weights);
    const expected = net.apply(x, false, 'representation').dataSync();
    const actual = (model.predict(x) as tf.Tensor).dataSync();
    for (let i = 0; i < expected.length; i++) assert.ok(Math.abs((actual[i] as number) - (expected[i] as number)) < 1e-4, `value ${i}`);
    assert.deepEqual((await loadModel(tfjsDir, spec)).weights, weights, 'head.bin restores the projection head');
    tf.dispose(x);
    net.dispose();
    model.dispose();
  });
});
