// The optional native kernel addon (packages/tensor/native): convolutions and matrix products on
// BLIS kernels it chooses for this CPU (native/gemm.c), working in place on the wasm heap. It is
// an N-API module, safe to load in every worker thread (one scratch buffer each, serial BLIS).
// Missing or disabled, the wasm backend keeps its XNNPACK kernels.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { NativeSettingError, NativeUnavailableError } from '../errors.js';

/** Geometry of an NHWC convolution: [N, H, W, CI, OH, OW, CO, KH, KW, SH, SW, DH, DW, padTop, padLeft]. */
export type ConvGeometry = Int32Array;

export interface NativeKernels {
  conv2d(heap: Float32Array, x: number, filter: number, y: number, geometry: ConvGeometry): void;
  conv2dBackpropInput(heap: Float32Array, dy: number, filter: number, dx: number, geometry: ConvGeometry): void;
  conv2dBackpropFilter(heap: Float32Array, x: number, dy: number, dw: number, geometry: ConvGeometry): void;
  matMul(
    heap: Float32Array,
    a: number,
    b: number,
    out: number,
    batch: number,
    m: number,
    n: number,
    k: number,
    transposeA: number,
    transposeB: number,
    broadcastA: number,
    broadcastB: number,
  ): void;
  /** Which kernels run the products and why, e.g. "BLIS 0.9.0 skx kernels (AVX-512, chosen by fedclr)". */
  readonly gemm: string;
}

export interface NativeStatus {
  kernels: NativeKernels | null;
  /** What runs, or why the addon does not. */
  detail: string;
}

// dist/src/wasm/native.js -> packages/tensor/native/build/Release/
export const ADDON_PATH = fileURLToPath(new URL('../../../native/build/Release/fedclr_kernels.node', import.meta.url));
export const SETTING_VARIABLE = 'FEDCLR_NATIVE_GEMM';

let status: NativeStatus | undefined;

function load(): NativeStatus {
  if (!existsSync(ADDON_PATH)) {
    return { kernels: null, detail: `native kernels not built (${ADDON_PATH} missing; run \`npm run build:native\`, needs libblis-serial-dev)` };
  }
  try {
    const kernels = createRequire(import.meta.url)(ADDON_PATH) as NativeKernels;
    return { kernels, detail: `native kernels on ${kernels.gemm}` };
  } catch (err) {
    const reason = err instanceof Error ? (err.message.split('\n')[0] ?? err.name) : String(err);
    return { kernels: null, detail: `native kernels failed to load: ${reason}` };
  }
}

/**
 * The addon, loaded once per thread, or null with the reason. FEDCLR_NATIVE_GEMM: unset, native
 * when it loads; 0, never; 1, required (an error if it does not load: a benchmark must not
 * silently measure the slower kernels).
 */
export function nativeKernels(): NativeStatus {
  if (status !== undefined) return status;
  const setting = process.env[SETTING_VARIABLE]?.trim();
  if (setting !== undefined && setting !== '' && setting !== '0' && setting !== '1') throw new NativeSettingError(setting);
  if (setting === '0') status = { kernels: null, detail: `native kernels disabled by ${SETTING_VARIABLE}=0` };
  else {
    const loaded = load();
    if (setting === '1' && loaded.kernels === null) throw new NativeUnavailableError(loaded.detail);
    status = loaded;
  }
  return status;
}
