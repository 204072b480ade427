// Matrix products on the wasm backend without its slow transposed-operand path: a transposed
// operand is first laid out plainly (blocked copy on the heap), then XNNPACK runs the product.
import { util, type BatchMatMulAttrs, type TensorInfo } from '@tensorflow/tfjs-core';
import { heapView, type KernelInvoker, type WasmBackend } from './heap.js';

const BLOCK = 32;

/** Transposes the last two axes of a float32 tensor into fresh wasm memory. */
export function transposeLastTwo(backend: WasmBackend, x: TensorInfo): TensorInfo {
  const rank = x.shape.length;
  const rows = x.shape[rank - 2] as number;
  const cols = x.shape[rank - 1] as number;
  const batch = util.sizeFromShape(x.shape.slice(0, -2));
  const out = backend.makeOutput([...x.shape.slice(0, -2), cols, rows], 'float32');
  const src = heapView(backend, x);
  const dst = heapView(backend, out);
  for (let b = 0; b < batch; b++) {
    const base = b * rows * cols;
    for (let r0 = 0; r0 < rows; r0 += BLOCK) {
      const r1 = Math.min(rows, r0 + BLOCK);
      for (let c0 = 0; c0 < cols; c0 += BLOCK) {
        const c1 = Math.min(cols, c0 + BLOCK);
        for (let r = r0; r < r1; r++) {
          let s = base + r * cols + c0;
          let d = base + c0 * rows + r;
          for (let c = c0; c < c1; c++, s++, d += rows) dst[d] = src[s] as number;
        }
      }
    }
  }
  return out;
}

export function batchMatMul(
  backend: WasmBackend,
  a: TensorInfo,
  b: TensorInfo,
  attrs: BatchMatMulAttrs,
  original: KernelInvoker,
): TensorInfo {
  if ((!attrs.transposeA && !attrs.transposeB) || a.dtype !== 'float32' || b.dtype !== 'float32') {
    return original({ a, b }, attrs as unknown as Record<string, never>);
  }
  const plainA = attrs.transposeA ? transposeLastTwo(backend, a) : a;
  const plainB = attrs.transposeB ? transposeLastTwo(backend, b) : b;
  const out = original({ a: plainA, b: plainB }, { transposeA: false, transposeB: false });
  if (plainA !== a) backend.disposeData(plainA.dataId);
  if (plainB !== b) backend.disposeData(plainB.dataId);
  return out;
}
