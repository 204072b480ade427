// Installs the fast wasm kernels into tfjs's kernel registry, so that ordinary tfjs code
// (autodiff included) trains convolutional models on the wasm backend.
import {
  BatchMatMul,
  Conv2D,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  getKernel,
  Identity,
  registerKernel,
  unregisterKernel,
  type BatchMatMulAttrs,
  type Conv2DAttrs,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropInputAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { conv2dBackpropFilter, conv2dBackpropInput } from './conv-backprop.js';
import type { KernelInvoker, WasmBackend } from './heap.js';
import { batchMatMul } from './matmul.js';
import { nativeKernels, type NativeStatus } from './native.js';
import { nativeBatchMatMul, nativeConv2d, nativeConv2dBackpropFilter, nativeConv2dBackpropInput } from './native-kernels.js';

const BACKEND = 'wasm';
let installed: NativeStatus | undefined;

function invoker(config: KernelConfig, backend: WasmBackend): KernelInvoker {
  return (inputs, attrs) => config.kernelFunc({ inputs, backend, attrs }) as TensorInfo;
}

function requireKernel(name: string): KernelConfig {
  const config = getKernel(name, BACKEND);
  if (config === undefined) throw new Error(`tfjs-backend-wasm is missing its ${name} kernel; is it imported?`);
  return config;
}

function replaceKernel(name: string, setupFunc: KernelConfig['setupFunc'], kernelFunc: KernelFunc): void {
  if (getKernel(name, BACKEND) !== undefined) unregisterKernel(name, BACKEND);
  registerKernel({ kernelName: name, backendName: BACKEND, ...(setupFunc ? { setupFunc } : {}), kernelFunc });
}

function input(inputs: Record<string, TensorInfo | undefined>, name: string): TensorInfo {
  const info = inputs[name];
  if (info === undefined) throw new Error(`missing kernel input '${name}'`);
  return info;
}

/** The convolutions and products on XNNPACK, with our gradient kernels and transposed-operand path. */
function installWasmKernels(conv2d: KernelConfig, matMul: KernelConfig): void {
  const slowBackpropInput = requireKernel(Conv2DBackpropInput);
  replaceKernel(Conv2DBackpropFilter, undefined, ({ inputs, backend, attrs }) => {
    const wasm = backend as WasmBackend;
    return conv2dBackpropFilter(wasm, input(inputs, 'x'), input(inputs, 'dy'), attrs as unknown as Conv2DBackpropFilterAttrs, invoker(matMul, wasm));
  });

  replaceKernel(Conv2DBackpropInput, slowBackpropInput.setupFunc, (args) => {
    const wasm = args.backend as WasmBackend;
    const fast = conv2dBackpropInput(
      wasm,
      input(args.inputs, 'dy'),
      input(args.inputs, 'filter'),
      args.attrs as unknown as Conv2DBackpropInputAttrs,
      invoker(conv2d, wasm),
    );
    return fast ?? slowBackpropInput.kernelFunc(args);
  });

  replaceKernel(BatchMatMul, matMul.setupFunc, ({ inputs, backend, attrs }) => {
    const wasm = backend as WasmBackend;
    return batchMatMul(wasm, input(inputs, 'a'), input(inputs, 'b'), attrs as unknown as BatchMatMulAttrs, invoker(matMul, wasm));
  });
}

/**
 * The same four kernels on the native addon. Whatever it does not cover (other dtypes, layouts
 * or broadcasts) goes to the wasm kernels installed first.
 */
function installNativeKernels(native: NonNullable<NativeStatus['kernels']>, conv2d: KernelConfig): void {
  const wasmMatMul = requireKernel(BatchMatMul);
  const wasmBackpropInput = requireKernel(Conv2DBackpropInput);
  const wasmBackpropFilter = requireKernel(Conv2DBackpropFilter);
  replaceKernel(Conv2D, conv2d.setupFunc, (args) => {
    const attrs = args.attrs as unknown as Conv2DAttrs;
    return nativeConv2d(native, args.backend as WasmBackend, input(args.inputs, 'x'), input(args.inputs, 'filter'), attrs) ?? conv2d.kernelFunc(args);
  });
  replaceKernel(Conv2DBackpropInput, wasmBackpropInput.setupFunc, (args) => {
    const attrs = args.attrs as unknown as Conv2DBackpropInputAttrs;
    const out = nativeConv2dBackpropInput(native, args.backend as WasmBackend, input(args.inputs, 'dy'), input(args.inputs, 'filter'), attrs);
    return out ?? wasmBackpropInput.kernelFunc(args);
  });
  replaceKernel(Conv2DBackpropFilter, undefined, (args) => {
    const attrs = args.attrs as unknown as Conv2DBackpropFilterAttrs;
    const out = nativeConv2dBackpropFilter(native, args.backend as WasmBackend, input(args.inputs, 'x'), input(args.inputs, 'dy'), attrs);
    return out ?? wasmBackpropFilter.kernelFunc(args);
  });
  replaceKernel(BatchMatMul, wasmMatMul.setupFunc, (args) => {
    const attrs = args.attrs as unknown as BatchMatMulAttrs;
    return nativeBatchMatMul(native, args.backend as WasmBackend, input(args.inputs, 'a'), input(args.inputs, 'b'), attrs) ?? wasmMatMul.kernelFunc(args);
  });
}

/**
 * Replaces the wasm backend's missing or slow gradient kernels, and its convolutions and products
 * with the native addon's where it loads. Idempotent; says which kernels run.
 */
export function installFastWasmKernels(): NativeStatus {
  if (installed !== undefined) return installed;
  const conv2d = requireKernel(Conv2D);
  const matMul = requireKernel(BatchMatMul);
  installWasmKernels(conv2d, matMul);
  const status = nativeKernels();
  if (status.kernels !== null) installNativeKernels(status.kernels, conv2d);
  // tfjs clones every tensor it saves for the backward pass; the stock wasm Identity copies the
  // data (~3 full passes per BatchNorm layer). Tensors are immutable: share the memory instead.
  const copyingIdentity = requireKernel(Identity);
  replaceKernel(Identity, copyingIdentity.setupFunc, (args) => {
    const x = input(args.inputs, 'x');
    if (x.dtype === 'string') return copyingIdentity.kernelFunc(args);
    (args.backend as WasmBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  });
  installed = status;
  return status;
}
