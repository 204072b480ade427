export { initBackend, currentBackend, type BackendChoice, type BackendName } from './backend.js';
export { installFastWasmKernels } from './wasm/register.js';
export { getLogger, setLogger, type Logger } from './log.js';
export * from './errors.js';
