/**
 * Does a model trained on small views represent images better when they are shown at the views'
 * scale? Random crops of 40-100% of the area resized to 16 px show an object at ~0.68x its size in
 * a full 28 px image, so the encoder is evaluated on images resized (the augmentation's own
 * bilinear crop-and-resize, whole box) to each --sizes side, and probed on a split:
 *
 *   node scripts/dist/eval-resolution.js --model runs/fmnist/model --sizes 28,22,19,16 --split validation
 *
 * Prints one JSON line per size. An experiment, not a product path: the model's spec is copied
 * with another input side (its layers are convolutions under a global pool, so the weights fit).
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, loadExportedModel, type GraphSpec } from '@fedclr/tensor';
import { cropAndResizeBoxes, encodeImages, evaluateRepresentation } from '@fedclr/contrastive';
import { fashionMnistProbeSplits, type LabeledImageDataset } from '@fedclr/data';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    sizes: { type: 'string', default: '28,22,19,16' },
    split: { type: 'string', default: 'validation' },
    workers: { type: 'string', default: '2' },
  },
});
if (values.model === undefined) throw new Error('give --model DIR (a model written by fedclr train)');
if (values.split !== 'validation' && values.split !== 'test') throw new Error(`--split must be validation or test, got ${values.split}`);
const sizes = values.sizes.split(',').map(Number);
if (!sizes.every((s) => Number.isInteger(s) && s >= 8 && s <= 64)) throw new Error(`--sizes must be integers in 8..64, got ${values.sizes}`);

await initBackend();
const loaded = await loadExportedModel(values.model);
const [fit, score] = await fashionMnistProbeSplits(values.split, 0); // eval's --split, seed 0
for (const side of sizes) {
  const spec: GraphSpec = { ...loaded.spec, input: { ...loaded.spec.input, height: side, width: side } };
  const options = { workers: Number(values.workers) };
  const a = await encodeImages(spec, loaded.weights, resized(fit, side), fit.count, options);
  const b = await encodeImages(spec, loaded.weights, resized(score, side), score.count, options);
  const result = await evaluateRepresentation(
    { features: a.features, labels: fit.labels, dim: a.dim },
    { features: b.features, labels: score.labels, dim: b.dim },
    { knn: { k: 20 }, numClasses: 10 },
  );
  console.log(JSON.stringify({ side, split: values.split, linearProbe: result.linearProbe, knn: result.knn }));
}

/** The images at side x side, through the augmentation's crop-and-resize of the whole image, in 0..1 as the encoder takes them. */
function resized(data: LabeledImageDataset, side: number): Float32Array {
  if (side === data.height) return Float32Array.from(data.images, (v) => v / 255);
  const out = new Float32Array(data.count * side * side * data.channels);
  const chunk = 4096;
  for (let start = 0; start < data.count; start += chunk) {
    const n = Math.min(chunk, data.count - start);
    const pixels = data.height * data.width * data.channels;
    const values = tf.tidy(() => {
      const x = tf.div(tf.tensor4d(data.images.subarray(start * pixels, (start + n) * pixels), [n, data.height, data.width, data.channels], 'float32'), 255) as tf.Tensor4D;
      const boxes = new Float32Array(4 * n);
      for (let i = 0; i < n; i++) boxes.set([0, 0, 1, 1], 4 * i);
      return cropAndResizeBoxes(x, boxes, [side, side]);
    });
    out.set(values.dataSync(), start * side * side * data.channels);
    values.dispose();
  }
  return out;
}
