// The deterministic image ops and the random source.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import {
  addGaussianNoise,
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  createSeededRandom,
  cropAndResizeBoxes,
  fillStandardNormal,
  flipHorizontal,
  gaussianBlurPerImage,
  gaussianKernel1d,
  grayscaleWhere,
  LUMA_WEIGHTS,
  shuffled,
} from '../src/augment/index.js';

before(async () => {
  await tf.setBackend('cpu');
});

function values(t: tf.Tensor): number[] {
  return Array.from(t.dataSync());
}

/** Uniform [0, 1) batch from a seeded tfjs generator. */
function randomImages(shape: [number, number, number, number], seed: number): tf.Tensor4D {
  return tf.randomUniform(shape, 0, 1, 'float32', seed) as tf.Tensor4D;
}

/** Runs fn (which returns tensors to dispose) and asserts no tensor outlives it. */
function noLeak(fn: () => tf.Tensor | tf.Tensor[], what: string): void {
  const before = tf.memory().numTensors;
  tf.dispose(fn());
  assert.equal(tf.memory().numTensors, before, `${what} leaked tensors`);
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  const va = a.dataSync();
  const vb = b.dataSync();
  assert.equal(va.length, vb.length);
  let m = 0;
  for (let i = 0; i < va.length; i++) m = Math.max(m, Math.abs((va[i] as number) - (vb[i] as number)));
  return m;
}

function pixel(t: tf.Tensor4D, n: number, y: number, x: number, c: number): number {
  const [, h, w, ch] = t.shape;
  return t.dataSync()[((n * h + y) * w + x) * ch + c] as number;
}

describe('random source', () => {
  it('is deterministic per seed, in [0, 1), and seeds differ', () => {
    const a = createSeededRandom(42);
    const b = createSeededRandom(42);
    const c = createSeededRandom(43);
    const xs = Array.from({ length: 1000 }, () => a.next());
    assert.deepEqual(xs, Array.from({ length: 1000 }, () => b.next()));
    assert.ok(xs.every((v) => v >= 0 && v < 1));
    assert.notDeepEqual(xs.slice(0, 10), Array.from({ length: 10 }, () => c.next()));
    const mean = xs.reduce((s, v) => s + v, 0) / xs.length;
    assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
  });

  it('draws standard normals and permutations', () => {
    const z = fillStandardNormal(createSeededRandom(1), new Float32Array(20001));
    const mean = z.reduce((s, v) => s + v, 0) / z.length;
    const sd = Math.sqrt(z.reduce((s, v) => s + (v - mean) ** 2, 0) / z.length);
    assert.ok(Math.abs(mean) < 0.03 && Math.abs(sd - 1) < 0.03, `mean ${mean} sd ${sd}`);
    const p = shuffled(createSeededRandom(2), [1, 2, 3, 4, 5]);
    assert.deepEqual(p.slice().sort(), [1, 2, 3, 4, 5]);
  });
});

describe('cropAndResizeBoxes / flipHorizontal', () => {
  it('full box at the input size is exactly the identity; a flipped full box is exactly a flip', () => {
    const x = randomImages([3, 5, 7, 2], 1);
    const same = cropAndResizeBoxes(x, [0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1], [5, 7]);
    assert.deepEqual(values(same), values(x));
    const mirrored = cropAndResizeBoxes(x, [0, 1, 1, 0, 0, 0, 1, 1, 0, 1, 1, 0], [5, 7]);
    const reversed = tf.reverse(x, 2);
    assert.deepEqual(values(tf.slice(mirrored, [0], [1])), values(tf.slice(reversed, [0], [1])));
    assert.deepEqual(values(tf.slice(mirrored, [1], [1])), values(tf.slice(x, [1], [1])));
    tf.dispose([x, same, mirrored, reversed]);
  });

  it('samples a sub-box bilinearly and never blackens the far edge', () => {
    // Ramp image: pixel value = column index j, W = 5 (normalised x = j / 4).
    // Box x in [0.25, 0.75] -> pixel columns 1..3; a 3-wide crop samples exactly 1, 2, 3.
    const ramp = tf.tensor4d([0, 1, 2, 3, 4, 0, 1, 2, 3, 4], [1, 2, 5, 1]);
    const crop = cropAndResizeBoxes(ramp, [0, 0.25, 1, 0.75], [2, 3]);
    assert.deepEqual(values(crop), [1, 2, 3, 1, 2, 3]);
    // A box touching the right border, resized to a non-integer step: the last sample is the
    // border pixel (4, up to the 1e-5 margin), not the kernel's extrapolation value 0.
    const edge = cropAndResizeBoxes(ramp, [0, 0.3, 1, 1], [2, 7]);
    const lastColumn = pixel(edge, 0, 0, 6, 0);
    assert.ok(Math.abs(lastColumn - 4) < 1e-3, `last column ${lastColumn}`);
    tf.dispose([ramp, crop, edge]);
  });

  it('flip twice is the identity; flags choose images; no leaks', () => {
    const x = randomImages([4, 6, 5, 3], 2);
    const flags = [true, false, true, false];
    const once = flipHorizontal(x, flags);
    const twice = flipHorizontal(once, flags);
    assert.deepEqual(values(twice), values(x));
    assert.equal(pixel(once, 0, 2, 0, 1), pixel(x, 0, 2, 4, 1));
    assert.equal(pixel(once, 1, 2, 0, 1), pixel(x, 1, 2, 0, 1));
    noLeak(() => flipHorizontal(x, flags), 'flip');
    noLeak(() => cropAndResizeBoxes(x, new Float32Array(16).fill(0.5).map((v, i) => (i % 4 < 2 ? 0.1 : 0.9)), [3, 3]), 'crop');
    assert.throws(() => cropAndResizeBoxes(x, [0, 0, 1, 1.5, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1], [6, 5]), /outside \[0, 1\]/);
    tf.dispose([x, once, twice]);
  });
});

/** Hue shift of one RGB pixel by d turns, the textbook way (colorsys / torchvision sectors). */
function hueShiftReference(r: number, g: number, b: number, d: number): [number, number, number] {
  const max = Math.max(r, g, b);
  const c = max - Math.min(r, g, b);
  const v = max;
  const s = max > 0 ? c / max : 0;
  let h = 0;
  if (c > 0) {
    if (max === r) h = ((((g - b) / c) % 6) + 6) % 6;
    else if (max === g) h = (b - r) / c + 2;
    else h = (r - g) / c + 4;
    h /= 6;
  }
  h = (((h + d) % 1) + 1) % 1;
  const i = Math.floor(h * 6);
  const f = h * 6 - i;
  const p = v * (1 - s);
  const q = v * (1 - s * f);
  const t = v * (1 - s * (1 - f));
  const sectors: [number, number, number][] = [
    [v, t, p],
    [q, v, p],
    [p, v, t],
    [p, q, v],
    [t, p, v],
    [v, p, q],
  ];
  return sectors[i % 6] as [number, number, number];
}

describe('colour ops', () => {
  it('identity factors are exactly the identity', () => {
    const rgb = randomImages([3, 4, 4, 3], 3);
    const gray = randomImages([3, 4, 4, 1], 4);
    const ones = [1, 1, 1];
    for (const [name, out, input] of [
      ['brightness rgb', adjustBrightness(rgb, ones), rgb],
      ['brightness gray', adjustBrightness(gray, ones), gray],
      ['contrast rgb', adjustContrast(rgb, ones), rgb],
      ['contrast gray', adjustContrast(gray, ones), gray],
      ['saturation', adjustSaturation(rgb, ones), rgb],
      ['hue', adjustHue(rgb, [0, 0, 0]), rgb],
      ['grayscale off', grayscaleWhere(rgb, [false, false, false]), rgb],
    ] as const) {
      assert.deepEqual(values(out), values(input), name);
      out.dispose();
    }
    tf.dispose([rgb, gray]);
  });

  it('brightness scales and clamps; contrast 0 flattens to the mean luminance', () => {
    const x = randomImages([2, 3, 3, 3], 5);
    const b = adjustBrightness(x, [0, 2]);
    const vb = values(b);
    const vx = values(x);
    for (let i = 0; i < 27; i++) assert.equal(vb[i], 0);
    for (let i = 27; i < 54; i++) assert.ok(Math.abs((vb[i] as number) - Math.min(1, 2 * (vx[i] as number))) < 1e-6);
    const c = adjustContrast(x, [0, 1]);
    // Image 0 becomes the constant mean of its BT.601 luminance, in every channel.
    let luma = 0;
    for (let p = 0; p < 9; p++) LUMA_WEIGHTS.forEach((wgt, ch) => (luma += wgt * (vx[p * 3 + ch] as number)));
    luma /= 9;
    values(tf.slice(c, [0], [1])).forEach((v) => assert.ok(Math.abs(v - luma) < 1e-6, `${v} vs ${luma}`));
    tf.dispose([x, b, c]);
  });

  it('saturation 0 and grayscale give equal channels equal to the luminance', () => {
    const x = randomImages([2, 3, 4, 3], 6);
    const s0 = adjustSaturation(x, [0, 0]);
    const g = grayscaleWhere(x, [true, true]);
    const vx = values(x);
    for (const out of [s0, g]) {
      const v = values(out);
      for (let p = 0; p < v.length; p += 3) {
        const luma = LUMA_WEIGHTS.reduce((s, wgt, ch) => s + wgt * (vx[p + ch] as number), 0);
        assert.ok(Math.abs((v[p] as number) - luma) < 1e-6);
        assert.equal(v[p], v[p + 1]);
        assert.equal(v[p], v[p + 2]);
      }
    }
    tf.dispose([x, s0, g]);
  });

  it('hue matches a per-pixel HSV reference, ties and grays included', () => {
    // Random pixels, half of them quantised to quarters so that channel ties are frequent.
    const rng = createSeededRandom(12);
    const n = 4;
    const pixels = 50;
    const data = Array.from({ length: n * pixels * 3 }, (_, i) => (i < (n * pixels * 3) / 2 ? Math.round(rng.next() * 4) / 4 : rng.next()));
    const deltas = [0.07, -0.31, 0.5, -0.5];
    const x = tf.tensor4d(data, [n, 1, pixels, 3]);
    const outT = adjustHue(x, deltas);
    const out = values(outT);
    for (let img = 0; img < n; img++) {
      for (let p = 0; p < pixels; p++) {
        const o = (img * pixels + p) * 3;
        const [r, g, b] = [data[o], data[o + 1], data[o + 2]] as [number, number, number];
        const want = hueShiftReference(Math.fround(r), Math.fround(g), Math.fround(b), deltas[img] as number);
        want.forEach((w, ch) => assert.ok(Math.abs((out[o + ch] as number) - w) < 1e-5, `img ${img} px ${p} ch ${ch}: ${out[o + ch]} vs ${w}`));
      }
    }
    tf.dispose([x, outT]);
  });

  it('hue rotates pure colours, keeps V and S, and +d then -d is the identity', () => {
    // Pure red, green, blue pixels; a third of a turn maps R -> G -> B -> R.
    const prim = tf.tensor4d([1, 0, 0, 0, 1, 0, 0, 0, 0.5], [1, 1, 3, 3]);
    const rotated = adjustHue(prim, [1 / 3]);
    const expected = [0, 1, 0, 0, 0, 1, 0.5, 0, 0];
    values(rotated).forEach((v, i) => assert.ok(Math.abs(v - (expected[i] as number)) < 1e-5, `${i}: ${v}`));
    const x = randomImages([3, 4, 4, 3], 7);
    const there = adjustHue(x, [0.1, -0.25, 0.5]);
    const back = adjustHue(there, [-0.1, 0.25, -0.5]);
    assert.ok(maxAbsDiff(back, x) < 1e-5);
    const vMax = (t: tf.Tensor) => tf.tidy(() => values(tf.max(t, 3)));
    const xMax = vMax(x);
    vMax(there).forEach((v, i) => assert.ok(Math.abs(v - (xMax[i] as number)) < 1e-5));
    noLeak(() => adjustHue(x, [0.1, 0.2, 0.3]), 'hue');
    noLeak(() => adjustContrast(x, [0.5, 1.5, 1]), 'contrast');
    noLeak(() => adjustSaturation(x, [0.5, 1.5, 1]), 'saturation');
    noLeak(() => grayscaleWhere(x, [true, false, true]), 'grayscale');
    assert.throws(() => adjustHue(tf.zeros([1, 2, 2, 1]) as tf.Tensor4D, [0.1]), /3 \(RGB\) channels/);
    tf.dispose([prim, rotated, x, there, back]);
  });
});

describe('gaussianBlurPerImage', () => {
  it('keeps a constant image constant (reflect padding) and sigma 0 is the identity', () => {
    const flat = tf.fill([3, 6, 5, 2], 0.37) as tf.Tensor4D;
    const blurred = gaussianBlurPerImage(flat, [0.5, 1.5, 3], 5);
    values(blurred).forEach((v) => assert.ok(Math.abs(v - 0.37) < 1e-6));
    const x = randomImages([2, 6, 6, 3], 8);
    const same = gaussianBlurPerImage(x, [0, 0], 5);
    assert.ok(maxAbsDiff(same, x) < 1e-7);
    tf.dispose([flat, blurred, x, same]);
  });

  it('applies each image its own kernel: an impulse becomes the outer product of the taps', () => {
    // 7x7 images with an impulse in the centre, radius 2: out[3 + dy][3 + dx] = g[dy] g[dx].
    const impulse = new Float32Array(2 * 49);
    impulse[24] = 1;
    impulse[49 + 24] = 1;
    const x = tf.tensor4d(impulse, [2, 7, 7, 1]);
    const sigmas = [0.8, 1.6];
    const out = gaussianBlurPerImage(x, sigmas, 5);
    sigmas.forEach((sigma, n) => {
      const g = gaussianKernel1d(sigma, 2);
      for (let dy = -2; dy <= 2; dy++)
        for (let dx = -2; dx <= 2; dx++) {
          const want = (g[dy + 2] as number) * (g[dx + 2] as number);
          assert.ok(Math.abs(pixel(out, n, 3 + dy, 3 + dx, 0) - want) < 1e-6, `n=${n} dy=${dy} dx=${dx}`);
        }
    });
    noLeak(() => gaussianBlurPerImage(x, sigmas, 3), 'blur');
    assert.throws(() => gaussianBlurPerImage(x, sigmas, 4), /odd integer/);
    tf.dispose([x, out]);
  });
});

describe('addGaussianNoise', () => {
  it('adds noise of the requested std per image; std 0 leaves the image unchanged', () => {
    const x = tf.fill([2, 32, 32, 3], 0.5) as tf.Tensor4D;
    const z = fillStandardNormal(createSeededRandom(9), new Float32Array(x.size));
    const out = addGaussianNoise(x, z, [0.1, 0]);
    const v = values(out);
    const half = v.length / 2;
    const first = v.slice(0, half);
    const mean = first.reduce((s, a) => s + a, 0) / half;
    const sd = Math.sqrt(first.reduce((s, a) => s + (a - mean) ** 2, 0) / half);
    assert.ok(Math.abs(mean - 0.5) < 0.01 && Math.abs(sd - 0.1) < 0.005, `mean ${mean} sd ${sd}`);
    assert.ok(v.slice(half).every((a) => a === 0.5));
    noLeak(() => addGaussianNoise(x, z, [0.1, 0.2]), 'noise');
    tf.dispose([x, out]);
  });
});

describe('cpu-specific kernels', () => {
  it('give the same numbers as plain broadcasting (checked on a cpu clone under another name)', async () => {
    // The ops replace broadcasting by matMuls only when the backend is named 'cpu'; a copy of
    // the cpu backend under another name runs the plain broadcasting code on the same kernels.
    if (tf.findBackend('cpu-broadcast') === null) {
      tf.registerBackend('cpu-broadcast', () => new MathBackendCPU());
      tf.copyRegisteredKernels('cpu', 'cpu-broadcast');
    }
    const run = (): number[][] => {
      const x = randomImages([3, 5, 4, 3], 21);
      const g = randomImages([3, 5, 4, 1], 22);
      const outs = [
        adjustBrightness(x, [0.5, 1, 1.7]),
        adjustContrast(x, [0.2, 1, 1.9]),
        adjustContrast(g, [0.2, 1, 1.9]),
        adjustSaturation(x, [0, 0.6, 1.8]),
        adjustHue(x, [0.3, 0, -0.45]),
        grayscaleWhere(x, [true, false, true]),
      ];
      const data = outs.map(values);
      tf.dispose([x, g, ...outs]);
      return data;
    };
    const viaMatMul = run();
    await tf.setBackend('cpu-broadcast');
    try {
      const viaBroadcast = run();
      viaMatMul.forEach((v, i) => {
        const diff = Math.max(...v.map((a, j) => Math.abs(a - (viaBroadcast[i]?.[j] ?? Number.NaN))));
        assert.ok(diff < 1e-6, `op ${i}: max diff ${diff}`);
      });
    } finally {
      await tf.setBackend('cpu');
    }
  });
});
