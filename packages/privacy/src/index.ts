// @fedclr/privacy: Rényi DP accounting of the sampled Gaussian mechanism, pure and dependency-free
// apart from the error catalog. See README.md.
export * from './errors.js';
export { MAX_ORDER } from './validate.js';
export { logAdd, logSub, logErfc } from './logmath.js';
