// Each fast wasm gradient kernel must agree with the cpu backend's own kernels.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { initBackend } from '../src/index.js';

/** Deterministic normal samples (mulberry32 + Box-Muller): test inputs must not depend on a backend's RNG. */
function randn(count: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const uniform = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return out;
}

function relativeError(actual: Float32Array, expected: Float32Array): number {
  assert.equal(actual.length, expected.length);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < actual.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs((actual[i] as number) - (expected[i] as number)));
    maxRef = Math.max(maxRef, Math.abs(expected[i] as number));
  }
  return maxDiff / Math.max(maxRef, 1e-12);
}

interface Case {
  batch: number;
  size: [number, number];
  inC: number;
  outC: number;
  kernel: number;
  stride: number;
  pad: 'same' | 'valid';
}

function convGradients(backend: string, c: Case, seed: number): { y: Float32Array; dx: Float32Array; dw: Float32Array } {
  tf.setBackend(backend);
  return tf.tidy(() => {
    const [h, w] = c.size;
    const x = tf.tensor4d(randn(c.batch * h * w * c.inC, seed), [c.batch, h, w, c.inC]);
    const filter = tf.tensor4d(randn(c.kernel * c.kernel * c.inC * c.outC, seed + 1), [c.kernel, c.kernel, c.inC, c.outC]);
    const y = tf.conv2d(x, filter, c.stride, c.pad);
    const dy = tf.tensor(randn(y.size, seed + 2), y.shape);
    const grad = tf.grads((xi: tf.Tensor, fi: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(xi as tf.Tensor4D, fi as tf.Tensor4D, c.stride, c.pad), dy)));
    const [dx, dw] = grad([x, filter]);
    return { y: y.dataSync() as Float32Array, dx: (dx as tf.Tensor).dataSync() as Float32Array, dw: (dw as tf.Tensor).dataSync() as Float32Array };
  });
}

const cases: Case[] = [];
for (const stride of [1, 2]) {
  for (const pad of ['same', 'valid'] as const) {
    for (const size of [[8, 8], [7, 7], [9, 6]] as [number, number][]) {
      for (const [inC, outC] of [[1, 8], [3, 5], [32, 16], [33, 40]] as [number, number][]) {
        cases.push({ batch: inC === 1 ? 1 : 3, size, inC, outC, kernel: 3, stride, pad });
      }
    }
  }
}
cases.push({ batch: 4, size: [28, 28], inC: 1, outC: 32, kernel: 3, stride: 1, pad: 'same' });
cases.push({ batch: 2, size: [14, 14], inC: 64, outC: 128, kernel: 3, stride: 2, pad: 'same' });
cases.push({ batch: 2, size: [10, 10], inC: 16, outC: 32, kernel: 1, stride: 2, pad: 'valid' });
cases.push({ batch: 2, size: [11, 11], inC: 8, outC: 8, kernel: 1, stride: 2, pad: 'same' });
// Pointwise: the native kernels' single-product path.
cases.push({ batch: 2, size: [5, 6], inC: 16, outC: 32, kernel: 1, stride: 1, pad: 'valid' });
cases.push({ batch: 2, size: [12, 12], inC: 3, outC: 16, kernel: 7, stride: 2, pad: 'same' });
cases.push({ batch: 2, size: [9, 9], inC: 4, outC: 6, kernel: 5, stride: 3, pad: 'valid' });
// A patch matrix over CHUNK_VALUES (360 x 3267 values): dW summed over two chunks, the last one ragged.
cases.push({ batch: 3, size: [33, 33], inC: 40, outC: 24, kernel: 3, stride: 1, pad: 'same' });

// Runs on whichever kernels this process has (the native ones when built); native-kernels.test
// runs this file again with FEDCLR_NATIVE_GEMM=0 for the XNNPACK ones.
describe(`wasm convolutions and their gradients match the cpu backend (${process.env.FEDCLR_NATIVE_GEMM === '0' ? 'wasm kernels' : 'kernels as installed'})`, () => {
  before(async () => {
    const choice = await initBackend({ prefer: 'wasm' });
    console.log(`# conv-gradients: ${choice.kernels ?? 'no kernel detail'}`);
  });

  cases.forEach((c, index) => {
    const name = `batch ${c.batch}, ${c.size.join('x')}x${c.inC} -> ${c.outC}, k${c.kernel} s${c.stride} ${c.pad}`;
    it(name, () => {
      const expected = convGradients('cpu', c, 100 + index * 7);
      const actual = convGradients('wasm', c, 100 + index * 7);
      tf.setBackend('wasm');
      const yError = relativeError(actual.y, expected.y);
      assert.ok(yError <= 1e-4, `y relative error ${yError}`);
      const dxError = relativeError(actual.dx, expected.dx);
      const dwError = relativeError(actual.dw, expected.dw);
      assert.ok(dxError <= 1e-4, `dX relative error ${dxError}`);
      assert.ok(dwError <= 1e-4, `dW relative error ${dwError}`);
    });
  });
});

describe('wasm matMul with transposed operands matches the cpu backend', () => {
  for (const [transposeA, transposeB] of [[true, false], [false, true], [true, true]] as const) {
    it(`transposeA=${transposeA} transposeB=${transposeB}, batched and not`, () => {
      for (const batch of [1, 3]) {
        const a = randn(batch * 37 * 45, 7);
        const b = randn(batch * 45 * 29, 8);
        const aShape = transposeA ? [batch, 45, 37] : [batch, 37, 45];
        const bShape = transposeB ? [batch, 29, 45] : [batch, 45, 29];
        const run = (backend: string): Float32Array => {
          tf.setBackend(backend);
          return tf.tidy(() => tf.matMul(tf.tensor3d(a, aShape as [number, number, number]), tf.tensor3d(b, bShape as [number, number, number]), transposeA, transposeB).dataSync() as Float32Array);
        };
        const expected = run('cpu');
        const actual = run('wasm');
        assert.ok(relativeError(actual, expected) <= 1e-5, `batch ${batch}`);
      }
    });
  }
});
