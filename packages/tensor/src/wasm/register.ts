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
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropInputAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { conv2dBackpropFilter, conv2dBackpropInput } from './conv-backprop.js';
import type { KernelInvoker, WasmBackend } from './heap.js';
import { batchMatMul } from './matmul.js';

const BACKEND = 'wasm';
let installed = false;

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

/** Replaces the wasm backend's missing or slow gradient kernels. Idempotent. */
export function installFastWasmKernels(): void {
  if (installed) return;
  const conv2d = requireKernel(Conv2D);
  const matMul = requireKernel(BatchMatMul);
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
  // tfjs clones every tensor it saves for the backward pass; the stock wasm Identity copies the
  // data (~3 full passes per BatchNorm layer). Tensors are immutable: share the memory instead.
  const copyingIdentity = requireKernel(Identity);
  replaceKernel(Identity, copyingIdentity.setupFunc, (args) => {
    const x = input(args.inputs, 'x');
    if (x.dtype === 'string') return copyingIdentity.kernelFunc(args);
    (args.backend as WasmBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  });
  installed = true;
}
