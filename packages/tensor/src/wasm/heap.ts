// Direct access to the wasm backend's heap, so that custom kernels can read and write tensor
// memory in place (no dataSync copies) and call the backend's own fast XNNPACK kernels.
import { getKernel, util, type DataType, type KernelFunc, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs-core';

/** The parts of tfjs-backend-wasm's BackendWasm that the fast kernels rely on. */
export interface WasmBackend {
  wasm: { HEAPF32: Float32Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  incRef(dataId: object): void;
}

function memoryOffset(backend: WasmBackend, info: TensorInfo): number {
  const entry = backend.dataIdMap.get(info.dataId);
  if (entry === undefined) throw new Error('tensor is not on the wasm backend');
  return entry.memoryOffset;
}

/** Where a tensor's memory starts on the heap, in floats (stable: the heap grows, it never moves data). */
export function heapOffset(backend: WasmBackend, info: TensorInfo): number {
  return memoryOffset(backend, info) >> 2;
}

/** A live Float32Array view of a tensor's memory. Re-take it after any allocation: the heap may grow. */
export function heapView(backend: WasmBackend, info: TensorInfo): Float32Array {
  return new Float32Array(backend.wasm.HEAPF32.buffer, memoryOffset(backend, info), util.sizeFromShape(info.shape));
}

/** A tensor info sharing `info`'s memory with another shape (same element count). */
export function reshaped(info: TensorInfo, shape: number[]): TensorInfo {
  return { dataId: info.dataId, shape, dtype: info.dtype };
}

export type KernelInvoker = (inputs: Record<string, TensorInfo>, attrs: NamedAttrMap) => TensorInfo;

/** The wasm backend's own implementation of a kernel, captured before we replace it. */
export function originalKernel(name: string, backend: WasmBackend): KernelInvoker {
  const config = getKernel(name, 'wasm');
  if (config === undefined) throw new Error(`wasm backend has no kernel ${name}`);
  const fn: KernelFunc = config.kernelFunc;
  return (inputs, attrs) => fn({ inputs, backend, attrs }) as TensorInfo;
}
