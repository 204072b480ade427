export * from './losses/index.js';
export * from './augment/index.js';
export * from './encoders/index.js';
export * from './train/index.js';
export * from './eval/index.js';
export * from './errors.js';
export * from './recipe.js';
export * from './recipe-loss.js';
