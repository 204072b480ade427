// Convolution gradients for the wasm backend, built from its fast XNNPACK kernels plus tight
// typed-array loops on the wasm heap. The stock backend has no Conv2DBackpropFilter and a
// Conv2DBackpropInput that runs 10x slower than the forward convolution.
import { backend_util, type Conv2DBackpropFilterAttrs, type Conv2DBackpropInputAttrs, type TensorInfo } from '@tensorflow/tfjs-core';
import { KernelShapeError } from '../errors.js';
import { heapOffset, heapView, reshaped, type KernelInvoker, type WasmBackend } from './heap.js';

type Shape4 = [number, number, number, number];

function convInfoFor(
  kernel: string,
  xShape: number[],
  filterShape: number[],
  strides: number | [number, number],
  pad: Conv2DBackpropFilterAttrs['pad'],
  dimRoundingMode: Conv2DBackpropFilterAttrs['dimRoundingMode'],
  dataFormat: 'NHWC' | 'NCHW',
): backend_util.Conv2DInfo {
  if (dataFormat !== 'NHWC') throw new KernelShapeError(kernel, `dataFormat ${dataFormat}; the wasm backend runs NHWC only`);
  if (xShape.length !== 4 || filterShape.length !== 4) {
    throw new KernelShapeError(kernel, `input ${JSON.stringify(xShape)}, filter ${JSON.stringify(filterShape)}`);
  }
  return backend_util.computeConv2DInfo(xShape as Shape4, filterShape as Shape4, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
}

// Columns of the patch matrix filled per pass, and the reused per-pass source offsets.
const TILE = 256;
let sourceBuffer = new Int32Array(0);
// The patch matrix is built and multiplied in chunks of about CHUNK_VALUES values, so that the
// product's operand panels stay in cache instead of streaming a [K, N·OH·OW] matrix from memory.
// Up to ONE_CHUNK_VALUES (4 MB) it is one product with all of dy: no dy copies, no partial sums
// (1.7 ms of layer 3's 10 ms at batch 64, 16 px views).
const CHUNK_VALUES = 1 << 19;
const ONE_CHUNK_VALUES = 1 << 20;

interface Geometry {
  H: number;
  W: number;
  CI: number;
  OH: number;
  OW: number;
  KH: number;
  KW: number;
  SH: number;
  SW: number;
  DH: number;
  DW: number;
  padTop: number;
  padLeft: number;
  K: number;
}

/**
 * Columns [c0, c0+columns) of the transposed patch matrix, TILE columns at a time: first the
 * source offset of every (column, tap) of the tile, then each patch row written contiguously
 * from a small, cache-resident window of x.
 */
function fillPatches(X: Float32Array, P: Float32Array, g: Geometry, c0: number, columns: number): void {
  const { H, W, CI, OH, OW, KH, KW, SH, SW, DH, DW, padTop, padLeft } = g;
  if (sourceBuffer.length < TILE) sourceBuffer = new Int32Array(TILE);
  const source = sourceBuffer;
  let n = Math.floor(c0 / (OH * OW));
  let oh = Math.floor((c0 % (OH * OW)) / OW);
  let ow = c0 % OW;
  for (let m0 = 0; m0 < columns; m0 += TILE) {
    const width = Math.min(TILE, columns - m0);
    const n0 = n;
    const oh0 = oh;
    const ow0 = ow;
    for (let kh = 0; kh < KH; kh++) {
      for (let kw = 0; kw < KW; kw++) {
        n = n0;
        oh = oh0;
        ow = ow0;
        for (let j = 0; j < width; j++) {
          const ih = oh * SH - padTop + kh * DH;
          const iw = ow * SW - padLeft + kw * DW;
          source[j] = ih >= 0 && ih < H && iw >= 0 && iw < W ? ((n * H + ih) * W + iw) * CI : -1;
          if (++ow === OW) {
            ow = 0;
            if (++oh === OH) {
              oh = 0;
              n++;
            }
          }
        }
        // Four channels per sweep: four reads from one cache line of x, four output streams
        // (about 2x faster than one channel per sweep).
        const tapRow = (kh * KW + kw) * CI * columns + m0;
        let ci = 0;
        for (; ci + 4 <= CI; ci += 4) {
          const r0 = tapRow + ci * columns;
          const r1 = r0 + columns;
          const r2 = r1 + columns;
          const r3 = r2 + columns;
          for (let j = 0; j < width; j++) {
            const at = source[j] as number;
            if (at < 0) {
              P[r0 + j] = 0;
              P[r1 + j] = 0;
              P[r2 + j] = 0;
              P[r3 + j] = 0;
            } else {
              const s = at + ci;
              P[r0 + j] = X[s] as number;
              P[r1 + j] = X[s + 1] as number;
              P[r2 + j] = X[s + 2] as number;
              P[r3 + j] = X[s + 3] as number;
            }
          }
        }
        for (; ci < CI; ci++) {
          const row = tapRow + ci * columns;
          for (let j = 0; j < width; j++) {
            const at = source[j] as number;
            P[row + j] = at < 0 ? 0 : (X[at + ci] as number);
          }
        }
      }
    }
  }
}

// Below this many patch values per output pixel (first layers: 1 or 3 input channels), the
// whole transposed patch matrix is small; one product against all of dy avoids copying dy in chunks.
const THIN_PATCH = 32;

/**
 * dW = patches^T · dy, where patches^T [KH·KW·CI, N·OH·OW] is written tile by tile straight into
 * wasm memory, so the one big product runs in XNNPACK without any transposed operand.
 */
export function conv2dBackpropFilter(
  backend: WasmBackend,
  x: TensorInfo,
  dy: TensorInfo,
  attrs: Conv2DBackpropFilterAttrs,
  matMul: KernelInvoker,
): TensorInfo {
  const c = convInfoFor('Conv2DBackpropFilter', x.shape, attrs.filterShape, attrs.strides, attrs.pad, attrs.dimRoundingMode, attrs.dataFormat);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: CI, outHeight: OH, outWidth: OW, outChannels: CO } = c;
  const { filterHeight: KH, filterWidth: KW, strideHeight: SH, strideWidth: SW, dilationHeight: DH, dilationWidth: DW } = c;
  const padTop = c.padInfo.top;
  const padLeft = c.padInfo.left;
  const M = N * OH * OW;
  const K = KH * KW * CI;
  if (dy.shape[0] !== N || dy.shape[1] !== OH || dy.shape[2] !== OW || dy.shape[3] !== CO) {
    throw new KernelShapeError('Conv2DBackpropFilter', `dy ${JSON.stringify(dy.shape)} does not match output [${N},${OH},${OW},${CO}]`);
  }

  const g: Geometry = { H, W, CI, OH, OW, KH, KW, SH, SW, DH, DW, padTop, padLeft, K };
  // Equal chunks of whole tiles (one for the small steps agents run).
  const chunks = K <= THIN_PATCH || K * M <= ONE_CHUNK_VALUES ? 1 : Math.ceil((K * M) / CHUNK_VALUES);
  if (chunks === 1) {
    const cols = backend.makeOutput([1, K, M], 'float32');
    fillPatches(heapView(backend, x), heapView(backend, cols), g, 0, M);
    const product = matMul({ a: cols, b: reshaped(dy, [1, M, CO]) }, { transposeA: false, transposeB: false });
    backend.disposeData(cols.dataId);
    return reshaped(product, [KH, KW, CI, CO]);
  }
  const chunkColumns = Math.ceil(M / chunks / TILE) * TILE;
  const cols = backend.makeOutput([K, chunkColumns], 'float32');
  const sum = new Float32Array(K * CO);
  for (let c0 = 0; c0 < M; c0 += chunkColumns) {
    const columns = Math.min(chunkColumns, M - c0);
    // dy rows of this chunk, in a tensor of their own (XNNPACK caches packed operands by tensor id).
    const dyChunk = backend.makeOutput([columns, CO], 'float32');
    heapView(backend, dyChunk).set(heapView(backend, dy).subarray(c0 * CO, (c0 + columns) * CO));
    const X = heapView(backend, x);
    const P = heapView(backend, cols);
    fillPatches(X, P, g, c0, columns);
    const product = matMul({ a: reshaped(cols, [1, K, columns]), b: reshaped(dyChunk, [1, columns, CO]) }, { transposeA: false, transposeB: false });
    const partial = heapView(backend, product);
    for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) + (partial[i] as number);
    backend.disposeData(product.dataId);
    backend.disposeData(dyChunk.dataId);
  }
  backend.disposeData(cols.dataId);
  const out = backend.makeOutput([KH, KW, CI, CO], 'float32');
  heapView(backend, out).set(sum);
  return out;
}

interface Phase {
  rh: number;
  rw: number;
  jh: number;
  jw: number;
  m0: number;
  q0: number;
  lh: number;
  lw: number;
  pad: [number, number, number, number];
}

/** Splits a strided transposed convolution into stride² dense convolutions (polyphase form). */
function phasesOf(c: backend_util.Conv2DInfo): Phase[] | null {
  const { inHeight: H, inWidth: W, outHeight: OH, outWidth: OW, filterHeight: KH, filterWidth: KW } = c;
  const { strideHeight: SH, strideWidth: SW } = c;
  const pT = c.padInfo.top;
  const pL = c.padInfo.left;
  const phases: Phase[] = [];
  for (let rh = 0; rh < SH; rh++) {
    for (let rw = 0; rw < SW; rw++) {
      const jh = rh < KH ? Math.ceil((KH - rh) / SH) : 0;
      const jw = rw < KW ? Math.ceil((KW - rw) / SW) : 0;
      const m0 = Math.ceil((pT - rh) / SH);
      const m1 = Math.floor((H - 1 + pT - rh) / SH);
      const q0 = Math.ceil((pL - rw) / SW);
      const q1 = Math.floor((W - 1 + pL - rw) / SW);
      const lh = m1 - m0 + 1;
      const lw = q1 - q0 + 1;
      if (lh <= 0 || lw <= 0) continue;
      const top = jh - 1 - m0;
      const bottom = lh - 1 + jh - OH - top;
      const left = jw - 1 - q0;
      const right = lw - 1 + jw - OW - left;
      if (jh > 0 && jw > 0 && (top < 0 || bottom < 0 || left < 0 || right < 0)) return null;
      phases.push({ rh, rw, jh, jw, m0, q0, lh, lw, pad: [top, bottom, left, right] });
    }
  }
  return phases;
}

/**
 * dX as stride² ordinary convolutions of dy with re-ordered, flipped taps of W, interleaved
 * back into place. Same multiply count as the forward convolution, all of it in XNNPACK.
 * Returns null for layouts it does not cover (dilation, crop-needing pads); the caller falls back.
 */
export function conv2dBackpropInput(
  backend: WasmBackend,
  dy: TensorInfo,
  filter: TensorInfo,
  attrs: Conv2DBackpropInputAttrs,
  conv2d: KernelInvoker,
): TensorInfo | null {
  const c = convInfoFor('Conv2DBackpropInput', attrs.inputShape, filter.shape, attrs.strides, attrs.pad, attrs.dimRoundingMode, attrs.dataFormat);
  if (c.dilationHeight !== 1 || c.dilationWidth !== 1) return null;
  const phases = phasesOf(c);
  if (phases === null) return null;
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: CI, outChannels: CO, filterWidth: KW } = c;
  const { strideHeight: SH, strideWidth: SW } = c;
  const pT = c.padInfo.top;
  const pL = c.padInfo.left;

  // Stride 1 is one phase whose output is dX itself; otherwise phases interleave into dX.
  const dx = SH === 1 && SW === 1 ? null : backend.makeOutput([N, H, W, CI], 'float32');
  if (dx !== null && phases.some((p) => p.jh === 0 || p.jw === 0)) heapView(backend, dx).fill(0);

  for (const p of phases) {
    if (p.jh === 0 || p.jw === 0) continue;
    // W'[a, b, co, ci] = W[rh + SH·(jh-1-a), rw + SW·(jw-1-b), ci, co]
    const taps = backend.makeOutput([p.jh, p.jw, CO, CI], 'float32');
    const Wt = heapView(backend, filter);
    const T = heapView(backend, taps);
    for (let a = 0; a < p.jh; a++) {
      const kh = p.rh + SH * (p.jh - 1 - a);
      for (let b = 0; b < p.jw; b++) {
        const kw = p.rw + SW * (p.jw - 1 - b);
        const src = (kh * KW + kw) * CI * CO;
        const dst = (a * p.jw + b) * CO * CI;
        for (let ci = 0; ci < CI; ci++) {
          for (let co = 0; co < CO; co++) T[dst + co * CI + ci] = Wt[src + ci * CO + co] as number;
        }
      }
    }
    const [top, bottom, left, right] = p.pad;
    const out = conv2d(
      { x: dy, filter: taps },
      { strides: [1, 1], pad: [[0, 0], [top, bottom], [left, right], [0, 0]], dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined } as unknown as Record<string, never>,
    );
    backend.disposeData(taps.dataId);
    if (dx === null) return out;
    if (out.shape[1] !== p.lh || out.shape[2] !== p.lw) {
      throw new KernelShapeError('Conv2DBackpropInput', `phase output ${JSON.stringify(out.shape)} expected ${p.lh}x${p.lw}`);
    }
    // Pixel by pixel with the heap's own memmove: ~2x faster than an element loop in JS.
    const heap = backend.wasm.HEAPF32;
    const O = heapOffset(backend, out);
    const D = heapOffset(backend, dx);
    const dstStep = SW * CI;
    for (let n = 0; n < N; n++) {
      for (let a = 0; a < p.lh; a++) {
        const i = SH * (p.m0 + a) + p.rh - pT;
        let src = O + (n * p.lh + a) * p.lw * CI;
        let dst = D + ((n * H + i) * W + SW * p.q0 + p.rw - pL) * CI;
        for (let b = 0; b < p.lw; b++, src += CI, dst += dstStep) heap.copyWithin(dst, src, src + CI);
      }
    }
    backend.disposeData(out.dataId);
  }
  if (dx === null) throw new KernelShapeError('Conv2DBackpropInput', 'no phase produced output');
  return dx;
}
