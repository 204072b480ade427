// tfjs kernel functions that run convolutions and matrix products through the native addon, in
// place on the wasm heap. Each returns null for what it does not cover (other dtypes or layouts,
// empty shapes, broadcasts other than a batch of one); the caller then runs the wasm kernel.
import {
  backend_util,
  util,
  type BatchMatMulAttrs,
  type Conv2DAttrs,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropInputAttrs,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { heapOffset, type WasmBackend } from './heap.js';
import type { ConvGeometry, NativeKernels } from './native.js';

type Shape4 = [number, number, number, number];

function geometry(
  xShape: number[],
  filterShape: number[],
  strides: number | [number, number],
  dilations: number | [number, number],
  pad: Conv2DAttrs['pad'],
  dimRoundingMode: Conv2DAttrs['dimRoundingMode'],
  dataFormat: string,
): { info: backend_util.Conv2DInfo; geometry: ConvGeometry } | null {
  if (dataFormat !== 'NHWC' || xShape.length !== 4 || filterShape.length !== 4) return null;
  const c = backend_util.computeConv2DInfo(xShape as Shape4, filterShape as Shape4, strides, dilations, pad, dimRoundingMode, false, 'channelsLast');
  const fields = [c.batchSize, c.inHeight, c.inWidth, c.inChannels, c.outHeight, c.outWidth, c.outChannels];
  const taps = [c.filterHeight, c.filterWidth, c.strideHeight, c.strideWidth, c.dilationHeight, c.dilationWidth];
  const values = [...fields, ...taps, c.padInfo.top, c.padInfo.left];
  if (values.slice(0, 13).some((v) => v <= 0) || c.padInfo.top < 0 || c.padInfo.left < 0) return null;
  return { info: c, geometry: Int32Array.from(values) };
}

export function nativeConv2d(native: NativeKernels, backend: WasmBackend, x: TensorInfo, filter: TensorInfo, attrs: Conv2DAttrs): TensorInfo | null {
  if (x.dtype !== 'float32' || filter.dtype !== 'float32') return null;
  const g = geometry(x.shape, filter.shape, attrs.strides, attrs.dilations, attrs.pad, attrs.dimRoundingMode, attrs.dataFormat);
  if (g === null || filter.shape[2] !== g.info.inChannels) return null;
  const out = backend.makeOutput([...g.info.outShape], 'float32');
  native.conv2d(backend.wasm.HEAPF32, heapOffset(backend, x), heapOffset(backend, filter), heapOffset(backend, out), g.geometry);
  return out;
}

export function nativeConv2dBackpropInput(
  native: NativeKernels,
  backend: WasmBackend,
  dy: TensorInfo,
  filter: TensorInfo,
  attrs: Conv2DBackpropInputAttrs,
): TensorInfo | null {
  if (dy.dtype !== 'float32' || filter.dtype !== 'float32') return null;
  const g = geometry(attrs.inputShape, filter.shape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, attrs.dataFormat);
  if (g === null || !util.arraysEqual(dy.shape, g.info.outShape)) return null;
  const out = backend.makeOutput([...attrs.inputShape], 'float32');
  native.conv2dBackpropInput(backend.wasm.HEAPF32, heapOffset(backend, dy), heapOffset(backend, filter), heapOffset(backend, out), g.geometry);
  return out;
}

export function nativeConv2dBackpropFilter(
  native: NativeKernels,
  backend: WasmBackend,
  x: TensorInfo,
  dy: TensorInfo,
  attrs: Conv2DBackpropFilterAttrs,
): TensorInfo | null {
  if (x.dtype !== 'float32' || dy.dtype !== 'float32') return null;
  const g = geometry(x.shape, attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, attrs.dataFormat);
  if (g === null || !util.arraysEqual(dy.shape, g.info.outShape)) return null;
  const out = backend.makeOutput([...attrs.filterShape], 'float32');
  native.conv2dBackpropFilter(backend.wasm.HEAPF32, heapOffset(backend, x), heapOffset(backend, dy), heapOffset(backend, out), g.geometry);
  return out;
}

/** Batch shape of the product: equal batches, or one side a single matrix broadcast to the other. */
function productBatch(outerA: number[], outerB: number[]): number[] | null {
  const batchA = util.sizeFromShape(outerA);
  const batchB = util.sizeFromShape(outerB);
  if (batchA === batchB) return util.arraysEqual(outerA, outerB) ? outerA : null;
  if (batchA !== 1 && batchB !== 1) return null;
  return backend_util.assertAndGetBroadcastShape(outerA, outerB);
}

export function nativeBatchMatMul(native: NativeKernels, backend: WasmBackend, a: TensorInfo, b: TensorInfo, attrs: BatchMatMulAttrs): TensorInfo | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) return null;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = (attrs.transposeA ? a.shape[ra - 1] : a.shape[ra - 2]) as number;
  const k = (attrs.transposeA ? a.shape[ra - 2] : a.shape[ra - 1]) as number;
  const kb = (attrs.transposeB ? b.shape[rb - 1] : b.shape[rb - 2]) as number;
  const n = (attrs.transposeB ? b.shape[rb - 2] : b.shape[rb - 1]) as number;
  if (k !== kb || m === 0 || n === 0 || k === 0) return null;
  const outer = productBatch(a.shape.slice(0, -2), b.shape.slice(0, -2));
  if (outer === null) return null;
  const batch = util.sizeFromShape(outer);
  const broadcastA = util.sizeFromShape(a.shape.slice(0, -2)) === 1 && batch > 1 ? 1 : 0;
  const broadcastB = util.sizeFromShape(b.shape.slice(0, -2)) === 1 && batch > 1 ? 1 : 0;
  const out = backend.makeOutput([...outer, m, n], 'float32');
  native.matMul(
    backend.wasm.HEAPF32,
    heapOffset(backend, a),
    heapOffset(backend, b),
    heapOffset(backend, out),
    batch,
    m,
    n,
    k,
    attrs.transposeA ? 1 : 0,
    attrs.transposeB ? 1 : 0,
    broadcastA,
    broadcastB,
  );
  return out;
}
