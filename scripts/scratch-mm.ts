import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@fedclr/tensor';
await initBackend({ prefer: 'wasm' });
function bench(name: string, f: () => tf.Tensor, macs: number) {
  for (let i = 0; i < 5; i++) f().dispose();
  const t = performance.now(); const n = 30;
  for (let i = 0; i < n; i++) { const y = f(); y.dataSync(); y.dispose(); }
  const ms = (performance.now() - t) / n;
  console.log(name, ms.toFixed(3), 'ms', (macs / ms / 1e6).toFixed(1), 'GMAC/s');
}
const a = tf.randomNormal([1024, 576]); const b = tf.randomNormal([576, 256]);
bench('mm 1024x576x256 const b', () => tf.matMul(a, b), 1024 * 576 * 256);
bench('mm 1024x576x256 fresh b', () => tf.tidy(() => tf.matMul(a, tf.add(b, 0))), 1024 * 576 * 256);
const a2 = tf.randomNormal([576, 1024]); const b2 = tf.randomNormal([1024, 256]);
bench('mm 576x1024x256 fresh b', () => tf.tidy(() => tf.matMul(a2, tf.add(b2, 0))), 1024 * 576 * 256);
const x = tf.randomNormal([64, 8, 8, 64]); const w = tf.randomNormal([3, 3, 64, 256]);
bench('conv3 fwd', () => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same'), 64 * 16 * 256 * 576);
const x1 = tf.randomNormal([64, 4, 4, 256]); const w1 = tf.randomNormal([2, 2, 256, 64]);
bench('4x4 conv 2x2 256->64', () => tf.conv2d(x1 as tf.Tensor4D, w1 as tf.Tensor4D, 1, 'same'), 64 * 16 * 64 * 1024);
const x2 = tf.randomNormal([64, 16, 16, 32]); const w2 = tf.randomNormal([3, 3, 32, 64]);
bench('conv2 fwd', () => tf.conv2d(x2 as tf.Tensor4D, w2 as tf.Tensor4D, 2, 'same'), 64 * 64 * 64 * 288);
const dy = tf.randomNormal([64*16*16, 32]); const p = tf.randomNormal([9, 64*16*16]);
bench('conv1 bpf mm 9x16384x32 fresh', () => tf.tidy(() => tf.matMul(p, tf.add(dy, 0))), 9 * 16384 * 32);
