// The native BLIS kernels: products and dilated convolutions against the cpu backend, the addon's
// own refusal of bad arguments, its choice of kernels, no leaks, and the wasm-only path still correct.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { initBackend } from '../src/index.js';
import { ADDON_PATH, nativeKernels } from '../src/wasm/native.js';
import { uniformArray } from './seeded.js';

const built = existsSync(ADDON_PATH) && process.env.FEDCLR_NATIVE_GEMM !== '0';
const skip = built ? false : 'the native addon is not built here (npm run build:native) or is disabled';

function maxRelativeError(actual: Float32Array, expected: Float32Array): number {
  assert.equal(actual.length, expected.length);
  let diff = 0;
  let scale = 1e-12;
  for (let i = 0; i < actual.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] as number) - (expected[i] as number)));
    scale = Math.max(scale, Math.abs(expected[i] as number));
  }
  return diff / scale;
}

function onBoth(run: () => tf.Tensor): { wasm: Float32Array; cpu: Float32Array } {
  const result = (backend: string): Float32Array => {
    tf.setBackend(backend);
    return tf.tidy(() => run().dataSync() as Float32Array);
  };
  const cpu = result('cpu');
  const wasm = result('wasm');
  return { wasm, cpu };
}

const tensor = (shape: number[], seed: number): tf.Tensor => tf.tensor(uniformArray(shape.reduce((a, b) => a * b, 1), seed).map((v) => v - 0.5), shape);

describe('native kernels', { skip }, () => {
  before(async () => {
    const choice = await initBackend({ prefer: 'wasm' });
    assert.match(choice.kernels ?? '', /^native kernels on BLIS \S+ \w+ kernels \(/);
  });

  const products: { name: string; a: number[]; b: number[]; ta: boolean; tb: boolean }[] = [
    { name: 'plain', a: [1, 70, 33], b: [1, 33, 41], ta: false, tb: false },
    { name: 'transposed a', a: [2, 33, 70], b: [2, 33, 41], ta: true, tb: false },
    { name: 'transposed b', a: [2, 70, 33], b: [2, 41, 33], ta: false, tb: true },
    { name: 'both transposed', a: [3, 33, 70], b: [3, 41, 33], ta: true, tb: true },
    { name: 'a broadcast over b', a: [1, 9, 13], b: [4, 13, 7], ta: false, tb: false },
    { name: 'b broadcast over a, rank 4', a: [2, 3, 9, 13], b: [1, 1, 7, 13], ta: false, tb: true },
    { name: 'a vector-like product', a: [1, 1, 256], b: [1, 256, 128], ta: false, tb: false },
  ];
  for (const p of products) {
    it(`matMul, ${p.name}, matches the cpu backend`, () => {
      const { wasm, cpu } = onBoth(() => tf.matMul(tensor(p.a, 1), tensor(p.b, 2), p.ta, p.tb));
      assert.ok(maxRelativeError(wasm, cpu) <= 1e-5);
    });
  }

  // BLIS aborts the process on strides it rejects: empty and unit dimensions, under every transpose.
  it('matMul handles empty and unit dimensions under every transpose, against a plain loop', () => {
    const native = nativeKernels().kernels;
    assert.ok(native !== null);
    const heap = Float32Array.from({ length: 300 }, (_, i) => (i % 7) - 3);
    for (const m of [0, 1, 3]) for (const n of [0, 1, 3]) for (const k of [0, 1, 3]) for (const ta of [0, 1]) for (const tb of [0, 1]) {
      const out = heap.slice();
      native.matMul(out, 0, 100, 200, 1, m, n, k, ta, tb, 0, 0);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let sum = 0;
          for (let q = 0; q < k; q++) sum += (heap[ta ? q * m + i : i * k + q] as number) * (heap[100 + (tb ? j * k + q : q * n + j)] as number);
          assert.equal(out[200 + i * n + j], sum, `m ${m} n ${n} k ${k} transposes ${ta}${tb}`);
        }
      }
    }
  });

  it('dilated and strided forward convolutions match the cpu backend', () => {
    for (const [dilation, stride, pad] of [[2, 1, 'same'], [3, 1, 'valid'], [1, 2, 'valid']] as const) {
      const { wasm, cpu } = onBoth(() => tf.conv2d(tensor([2, 11, 9, 5], 3) as tf.Tensor4D, tensor([3, 3, 5, 7], 4) as tf.Tensor4D, stride, pad, 'NHWC', dilation));
      assert.ok(maxRelativeError(wasm, cpu) <= 1e-5, `dilation ${dilation} stride ${stride} ${pad}`);
    }
  });

  it('leaves no tensor behind across gradient steps', () => {
    tf.setBackend('wasm');
    const x = tensor([4, 8, 8, 3], 5);
    const w = tf.variable(tensor([3, 3, 3, 8], 6));
    const step = (): void => {
      tf.tidy(() => {
        const g = tf.grad((f: tf.Tensor) => tf.sum(tf.matMul(tf.reshape(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 2, 'same'), [4, -1]), tf.ones([128, 3]))));
        w.assign(tf.sub(w, tf.mul(0.01, g(w))));
      });
    };
    step();
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) step();
    assert.equal(tf.memory().numTensors, tensors);
    x.dispose();
    w.dispose();
  });

  it('the addon refuses offsets outside the heap and malformed geometry with FEDCLR_NATIVE_ARGUMENTS', () => {
    const native = nativeKernels().kernels;
    assert.ok(native !== null);
    const heap = new Float32Array(1000);
    const geometry = Int32Array.from([1, 4, 4, 2, 4, 4, 3, 3, 3, 1, 1, 1, 1, 1, 1]); // x 32, w 54, y 48 values
    native.conv2d(heap, 0, 100, 200, geometry);
    const refused = { code: 'FEDCLR_NATIVE_ARGUMENTS' };
    assert.throws(() => native.conv2d(heap, 0, 100, 960, geometry), refused);
    assert.throws(() => native.conv2dBackpropFilter(heap, 990, 0, 200, geometry), refused);
    assert.throws(() => native.conv2dBackpropInput(heap, -1, 100, 200, geometry), refused);
    assert.throws(() => native.conv2d(heap, 0, 100, 200, Int32Array.from([1, 4, 4, 2, 4, 4, 3, 3, 3, 0, 1, 1, 1, 1, 1])), refused);
    assert.throws(() => native.conv2d(heap, 0, 100, 200, Int32Array.from([1, 4, 4])), refused);
    assert.throws(() => native.conv2d(new Float64Array(10) as unknown as Float32Array, 0, 0, 0, geometry), refused);
    assert.throws(() => native.matMul(heap, 0, 500, 900, 2, 10, 10, 10, 0, 0, 0, 0), refused);
    native.matMul(heap, 0, 500, 800, 2, 10, 10, 10, 0, 0, 0, 1);
  });
});

describe('the wasm-only kernels', () => {
  it('pass the convolution gradient checks with FEDCLR_NATIVE_GEMM=0', () => {
    const file = fileURLToPath(new URL('./conv-gradients.test.js', import.meta.url));
    // Run as a plain script: under this runner's NODE_TEST_CONTEXT a nested runner reports only to it.
    const { NODE_TEST_CONTEXT: _runner, ...env } = process.env;
    const run = spawnSync(process.execPath, ['--test-reporter=tap', file], {
      env: { ...env, FEDCLR_NATIVE_GEMM: '0', FEDCLR_LOG_LEVEL: 'warn' },
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stdout.slice(-2000) + run.stderr.slice(-2000));
    assert.match(run.stdout, /native kernels disabled by FEDCLR_NATIVE_GEMM=0/);
    assert.match(run.stdout, /# fail 0/);
  });
});

// Each case loads the addon in a fresh process: the choice is made once per process.
function loadIn(env: Record<string, string | undefined>): { status: number | null; out: string } {
  const native = new URL('../src/wasm/native.js', import.meta.url).href;
  const script = `const { nativeKernels } = await import(${JSON.stringify(native)});
    try { console.log(nativeKernels().detail); } catch (err) { console.log(err.code + ': ' + err.message); }`;
  const { NODE_TEST_CONTEXT: _runner, ...inherited } = process.env;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...inherited, ...env }, encoding: 'utf8' });
  return { status: run.status, out: run.stdout + run.stderr };
}

const flags = ((): Set<string> => {
  try {
    return new Set((/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').trim().split(/\s+/));
  } catch {
    return new Set();
  }
})();
const avx512 = ['avx512f', 'avx512dq', 'avx512bw', 'avx512vl'].every((f) => flags.has(f));

describe('the kernels the addon chooses', { skip }, () => {
  it('runs the AVX-512 kernels on a CPU that has them, whatever OpenBLAS is told', { skip: avx512 ? false : 'this CPU has no AVX-512' }, () => {
    const run = loadIn({ BLIS_ARCH_TYPE: undefined, OPENBLAS_CORETYPE: 'Haswell' });
    assert.equal(run.status, 0, run.out);
    assert.match(run.out, /native kernels on BLIS \S+ skx kernels \(AVX-512, chosen by fedclr\)/);
  });

  it('keeps a BLIS_ARCH_TYPE set in the environment, and says so', () => {
    const run = loadIn({ BLIS_ARCH_TYPE: '25' });
    assert.equal(run.status, 0, run.out);
    assert.match(run.out, /native kernels on BLIS \S+ generic kernels \(BLIS_ARCH_TYPE\)/);
  });

  it('refuses a BLIS_ARCH_TYPE this BLIS cannot run, instead of letting BLIS abort the process', () => {
    for (const value of ['99', '2', 'skx', '-1']) {
      const fallback = loadIn({ BLIS_ARCH_TYPE: value });
      assert.equal(fallback.status, 0, `${value}: ${fallback.out}`);
      assert.match(fallback.out, /native kernels failed to load: BLIS_ARCH_TYPE names no kernel set of this BLIS build/, value);
    }
    const required = loadIn({ BLIS_ARCH_TYPE: '99', FEDCLR_NATIVE_GEMM: '1' });
    assert.match(required.out, /FEDCLR_TENSOR_NATIVE_UNAVAILABLE: .*BLIS_ARCH_TYPE names no kernel set/);
  });
});
