// Config validation, presets, determinism and identities of the random pipelines.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import {
  augmentTwoViews,
  createAugmentPipeline,
  createPresetPipeline,
  createSeededRandom,
  defaultBlurKernelSize,
  measureAugmentCost,
  resolveAugmentConfig,
  sampleCropBox,
  type AugmentConfig,
} from '../src/augment/index.js';

before(async () => {
  await tf.setBackend('cpu');
});

function values(t: tf.Tensor): number[] {
  return Array.from(t.dataSync());
}

function randomImages(shape: [number, number, number, number], seed: number): tf.Tensor4D {
  return tf.randomUniform(shape, 0, 1, 'float32', seed) as tf.Tensor4D;
}

function assertConfigError(config: unknown, pathFragment: string): void {
  assert.throws(
    () => createAugmentPipeline(config as AugmentConfig),
    (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.equal((err as Error & { code?: string }).code, 'FEDCLR_CONTRASTIVE_INVALID_AUGMENT_CONFIG', err.message);
      assert.ok(err.message.includes(pathFragment), `"${err.message}" should name ${pathFragment}`);
      return true;
    },
  );
}

describe('config validation', () => {
  it('rejects bad ranges, probabilities, kernel sizes and unknown keys with the offending path', () => {
    assertConfigError({ crop: { scale: [0.5, 0.2] } }, 'crop.scale');
    assertConfigError({ crop: { scale: [0, 1] } }, 'crop.scale');
    assertConfigError({ crop: { scale: [0.5, 1.2] } }, 'crop.scale');
    assertConfigError({ crop: { ratio: [-1, 2] } }, 'crop.ratio');
    assertConfigError({ crop: { ratio: [1] } }, 'crop.ratio');
    assertConfigError({ crop: { size: [28, 0] } }, 'crop.size');
    assertConfigError({ flip: { p: 1.5 } }, 'flip.p');
    assertConfigError({ colorJitter: { brightness: -0.1 } }, 'colorJitter.brightness');
    assertConfigError({ colorJitter: { hue: 0.6 } }, 'colorJitter.hue');
    assertConfigError({ colorJitter: { randomOrder: 1 } }, 'colorJitter.randomOrder');
    assertConfigError({ grayscale: { p: Number.NaN } }, 'grayscale.p');
    assertConfigError({ blur: { kernelSize: 4 } }, 'blur.kernelSize');
    assertConfigError({ blur: { sigma: [2, 1] } }, 'blur.sigma');
    assertConfigError({ noise: { std: [-1, 0] } }, 'noise.std');
    assertConfigError({ clamp: 'yes' }, 'clamp');
    assertConfigError({ flip: { prob: 0.5 } }, 'flip.prob');
    assertConfigError({ jitter: {} }, 'jitter');
    assertConfigError({ crop: 'yes' }, 'crop');
    assert.throws(() => createPresetPipeline('gray28', { strength: -1 }), /strength/);
  });

  it('fills defaults and freezes the resolved config', () => {
    const r = resolveAugmentConfig({ crop: {}, flip: {}, colorJitter: { brightness: 0.4 }, grayscale: {}, blur: {}, noise: {} });
    assert.deepEqual(r.crop, { scale: [0.08, 1], ratio: [3 / 4, 4 / 3], size: null });
    assert.deepEqual(r.flip, { p: 0.5 });
    assert.deepEqual(r.colorJitter, { p: 0.8, brightness: 0.4, contrast: 0, saturation: 0, hue: 0, randomOrder: false });
    assert.deepEqual(r.grayscale, { p: 0.2 });
    assert.deepEqual(r.blur, { p: 0.5, sigma: [0.1, 2], kernelSize: null });
    assert.deepEqual(r.noise, { p: 0.5, std: [0.01, 0.05] });
    assert.equal(r.clamp, true);
    assert.ok(Object.isFrozen(r) && Object.isFrozen(r.crop));
    const off = resolveAugmentConfig({ crop: false });
    assert.equal(off.crop, null);
    assert.equal(defaultBlurKernelSize(28, 28), 3);
    assert.equal(defaultBlurKernelSize(224, 224), 23);
  });

  it('presets follow their recipes', () => {
    const simclr = createPresetPipeline('simclr-rgb').config;
    assert.deepEqual(simclr.crop?.scale, [0.08, 1]);
    assert.equal(simclr.flip?.p, 0.5);
    assert.deepEqual(simclr.colorJitter, { p: 0.8, brightness: 0.8, contrast: 0.8, saturation: 0.8, hue: 0.2, randomOrder: true });
    assert.equal(simclr.grayscale?.p, 0.2);
    assert.equal(simclr.blur?.p, 0.5);
    const cifar = createPresetPipeline('simclr-rgb', { strength: 0.5, blur: false }).config;
    assert.equal(cifar.colorJitter?.hue, 0.1);
    assert.equal(cifar.blur, null);
    const g = createPresetPipeline('gray28').config;
    assert.deepEqual(g.crop?.scale, [0.2, 1]);
    assert.equal(g.colorJitter?.brightness, 0.4);
    assert.equal(g.colorJitter?.contrast, 0.4);
    assert.equal(g.blur, null);
    assert.equal(g.noise, null);
    assert.ok(createPresetPipeline('gray28', { blur: true, noise: true }).config.blur !== null);
  });
});

describe('sampleCropBox', () => {
  it('draws boxes inside the image with area and aspect in range, and falls back to a centre crop', () => {
    const rng = createSeededRandom(5);
    for (let i = 0; i < 200; i++) {
      const [y1, x1, y2, x2] = sampleCropBox(rng, 28, 40, [0.2, 0.9], [0.5, 2]);
      assert.ok(y1 >= 0 && x1 >= 0 && y2 <= 1 + 1e-12 && x2 <= 1 + 1e-12 && y2 > y1 && x2 > x1);
      const area = (y2 - y1) * (x2 - x1);
      const aspect = ((x2 - x1) * 40) / ((y2 - y1) * 28);
      assert.ok(area >= 0.2 - 1e-9 && area <= 0.9 + 1e-9, `area ${area}`);
      assert.ok(aspect >= 0.5 - 1e-9 && aspect <= 2 + 1e-9, `aspect ${aspect}`);
    }
    // A full-area crop of aspect 2 cannot fit a square: centre crop of aspect 2, full width.
    assert.deepEqual(sampleCropBox(rng, 10, 10, [1, 1], [2, 2]), [0.25, 0, 0.75, 1]);
  });
});

describe('pipelines', () => {
  it('is deterministic under a seed, differs across seeds, and stays in [0, 1]', () => {
    for (const [pipeline, shape] of [
      [createPresetPipeline('simclr-rgb'), [4, 16, 16, 3]],
      [createPresetPipeline('gray28', { blur: true, noise: true }), [6, 28, 28, 1]],
    ] as const) {
      const x = randomImages([...shape], 1);
      const a = pipeline.apply(x, createSeededRandom(7));
      const b = pipeline.apply(x, createSeededRandom(7));
      const c = pipeline.apply(x, createSeededRandom(8));
      assert.deepEqual(a.shape, shape);
      assert.deepEqual(values(a), values(b), `${pipeline.name} same seed`);
      assert.notDeepEqual(values(a), values(c), `${pipeline.name} other seed`);
      assert.ok(values(a).every((v) => v >= 0 && v <= 1));
      assert.deepEqual(values(x), values(randomImages([...shape], 1)), 'input untouched');
      tf.dispose([x, a, b, c]);
    }
  });

  it('full-scale crop of aspect 1, zero jitter, and an empty config are the identity', () => {
    const x = randomImages([3, 8, 8, 3], 2);
    for (const config of [
      { crop: { scale: [1, 1], ratio: [1, 1] } },
      { colorJitter: { p: 1, brightness: 0, contrast: 0, saturation: 0, hue: 0 } },
      { colorJitter: { p: 0, brightness: 0.8, contrast: 0.8, saturation: 0.8, hue: 0.2 } },
      { flip: { p: 0 }, grayscale: { p: 0 }, blur: { p: 0 }, noise: { p: 0 } },
      {},
    ] as AugmentConfig[]) {
      const out = createAugmentPipeline(config).apply(x, createSeededRandom(3));
      assert.deepEqual(values(out), values(x), JSON.stringify(config));
      assert.notEqual(out, x, 'always a new tensor');
      out.dispose();
    }
    x.dispose();
  });

  it('flip p=1 twice is the identity; grayscale p=1 gives equal channels; output size is honoured', () => {
    const x = randomImages([2, 5, 6, 3], 3);
    const flip = createAugmentPipeline({ flip: { p: 1 } });
    const once = flip.apply(x, createSeededRandom(1));
    const twice = flip.apply(once, createSeededRandom(1));
    assert.deepEqual(values(twice), values(x));
    assert.notDeepEqual(values(once), values(x));
    const gray = createAugmentPipeline({ grayscale: { p: 1 } }).apply(x, createSeededRandom(1));
    const v = values(gray);
    for (let i = 0; i < v.length; i += 3) assert.ok(v[i] === v[i + 1] && v[i] === v[i + 2]);
    const resized = createAugmentPipeline({ crop: { scale: [0.5, 1], size: [4, 3] } }).apply(x, createSeededRandom(1));
    assert.deepEqual(resized.shape, [2, 4, 3, 3]);
    tf.dispose([x, once, twice, gray, resized]);
  });

  it('blur of a constant image stays constant; noise has about the requested std', () => {
    const flat = tf.fill([4, 12, 12, 3], 0.6) as tf.Tensor4D;
    const blurred = createAugmentPipeline({ blur: { p: 1, sigma: [0.5, 2], kernelSize: 5 } }).apply(flat, createSeededRandom(4));
    values(blurred).forEach((val) => assert.ok(Math.abs(val - 0.6) < 1e-6));
    const noisy = createAugmentPipeline({ noise: { p: 1, std: [0.05, 0.05] }, clamp: false }).apply(flat, createSeededRandom(4));
    const nv = values(noisy);
    const mean = nv.reduce((s, a) => s + a, 0) / nv.length;
    const sd = Math.sqrt(nv.reduce((s, a) => s + (a - mean) ** 2, 0) / nv.length);
    assert.ok(Math.abs(sd - 0.05) < 0.003, `sd ${sd}`);
    tf.dispose([flat, blurred, noisy]);
  });

  it('runs RGB recipes on one-channel input (saturation, hue, grayscale are no-ops) and rejects 2 channels', () => {
    const g = randomImages([3, 10, 10, 1], 5);
    const out = createPresetPipeline('simclr-rgb').apply(g, createSeededRandom(1));
    assert.deepEqual(out.shape, [3, 10, 10, 1]);
    const two = randomImages([1, 4, 4, 2], 6);
    assert.throws(
      () => createAugmentPipeline({ grayscale: { p: 1 } }).apply(two, createSeededRandom(1)),
      (err: unknown) => (err as { code?: string }).code === 'FEDCLR_CONTRASTIVE_SHAPE',
    );
    tf.dispose([g, out, two]);
  });

  it('two views differ, are reproducible, and nothing leaks', () => {
    const x = randomImages([4, 12, 12, 3], 6);
    const pipeline = createPresetPipeline('simclr-rgb');
    const [a, b] = augmentTwoViews(pipeline, x, createSeededRandom(11));
    const [c, d] = augmentTwoViews(pipeline, x, createSeededRandom(11));
    assert.notDeepEqual(values(a), values(b));
    assert.deepEqual(values(a), values(c));
    assert.deepEqual(values(b), values(d));
    tf.dispose([a, b, c, d]);
    const before = tf.memory().numTensors;
    for (const p of [pipeline, createPresetPipeline('gray28', { blur: true, noise: true })]) {
      for (let seed = 0; seed < 3; seed++) tf.dispose(augmentTwoViews(p, x, createSeededRandom(seed)));
    }
    assert.equal(tf.memory().numTensors, before, 'pipelines leaked tensors');
    x.dispose();
  });

  it('measureAugmentCost returns a positive time and leaks nothing', async () => {
    const x = randomImages([8, 28, 28, 1], 7);
    const before = tf.memory().numTensors;
    const ms = await measureAugmentCost(createPresetPipeline('gray28'), x, { iterations: 2, warmup: 1 });
    assert.ok(Number.isFinite(ms) && ms > 0);
    assert.equal(tf.memory().numTensors, before);
    x.dispose();
  });
});
