import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@fedclr/tensor';
await initBackend({ prefer: 'wasm' });
function bench(name: string, f: () => tf.Tensor, macs: number) {
  for (let i = 0; i < 5; i++) f().dispose();
  const t = performance.now(); const n = 40;
  for (let i = 0; i < n; i++) { const y = f(); y.dataSync(); y.dispose(); }
  const ms = (performance.now() - t) / n;
  console.log(name.padEnd(40), ms.toFixed(3), 'ms', (macs / ms / 1e6).toFixed(1), 'GMAC/s');
}
for (const [m, k, n] of [[576, 1024, 256], [288, 4096, 64], [9, 16384, 32], [1024, 576, 256], [64, 256, 256]] as const) {
  const a = tf.randomNormal([m, k]); const b = tf.randomNormal([k, n]);
  bench(`mm ${m}x${k}x${n} const`, () => tf.matMul(a, b), m * k * n);
  bench(`mm ${m}x${k}x${n} fresh`, () => tf.tidy(() => tf.matMul(a, tf.add(b, 0))), m * k * n);
  const a4 = tf.reshape(a, [1, 1, m, k]) as tf.Tensor4D;
  bench(`conv1x1 ${m}x${k}x${n} fresh`, () => tf.tidy(() => tf.conv2d(a4, tf.reshape(tf.add(b, 0), [1, 1, k, n]) as tf.Tensor4D, 1, 'valid')), m * k * n);
}
