// The optional native kernel addon (packages/tensor/native): convolutions and matrix products on
// the host's OpenBLAS, working in place on the wasm heap. It is an N-API module, safe to load in
// every worker thread (one scratch buffer and one BLAS thread each). Missing or disabled, the
// wasm backend keeps its XNNPACK kernels.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';
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
  /** OpenBLAS's own description: version, kernel family, threading. */
  readonly blas: string;
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

const AVX512 = ['avx512f', 'avx512dq', 'avx512bw', 'avx512vl'];

/**
 * OpenBLAS 0.3.21 (Debian 12) does not recognise AMD Zen 4 and runs its AVX2 (Haswell) kernels
 * there; its AVX-512 (SkylakeX) ones are ~20% faster for a whole training step (batch 64, 16 px,
 * 32/64/512: 1447-1554 against 1230-1240 img/s). The core type an AVX-512 AMD CPU should run,
 * from /proc/cpuinfo's text; undefined where OpenBLAS's own choice stands.
 */
export function preferredCoreType(cpuinfo: string): string | undefined {
  const vendor = /^vendor_id\s*:\s*(\S+)/m.exec(cpuinfo)?.[1];
  const flags = new Set((/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? '').trim().split(/\s+/));
  return vendor === 'AuthenticAMD' && AVX512.every((f) => flags.has(f)) ? 'SkylakeX' : undefined;
}

function cpuinfo(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return ''; // not Linux: OpenBLAS's own detection stands
  }
}

const preferred = preferredCoreType(cpuinfo());
// OpenBLAS reads OPENBLAS_CORETYPE once, when the library loads, from the real environment, which
// only the main thread's process.env writes to: so this runs when the main thread imports the
// package, before any worker loads the addon. An OPENBLAS_CORETYPE already set is kept.
if (isMainThread && process.env.OPENBLAS_CORETYPE === undefined && preferred !== undefined) process.env.OPENBLAS_CORETYPE = preferred;

/** A hint when the environment pins OpenBLAS below what this CPU runs best. */
function coreTypeHint(): string {
  const set = process.env.OPENBLAS_CORETYPE;
  if (preferred === undefined || set === undefined || set.toLowerCase() === preferred.toLowerCase()) return '';
  return ` (OPENBLAS_CORETYPE=${set} is set in the environment; this CPU has AVX-512: OPENBLAS_CORETYPE=${preferred} trains ~20% faster)`;
}

function load(): NativeStatus {
  if (!existsSync(ADDON_PATH)) {
    return { kernels: null, detail: `native kernels not built (${ADDON_PATH} missing; run \`npm run build:native\`, needs libopenblas-dev)` };
  }
  try {
    const kernels = createRequire(import.meta.url)(ADDON_PATH) as NativeKernels;
    return { kernels, detail: `native kernels on ${kernels.blas.trim()}${coreTypeHint()}` };
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
