// Contrastive losses: each takes embeddings (and labels where needed) and returns a scalar
// loss tensor, differentiable with tfjs autodiff and free of leaked intermediate tensors.
export { ntXentLoss, infoNceLoss, type NtXentOptions, type InfoNceOptions } from './ntxent.js';
export { supConLoss, type SupConOptions, type SupConContrastMode } from './supcon.js';
export { tripletLoss, type TripletOptions, type TripletMiner } from './triplet.js';
export { marginContrastiveLoss, type MarginContrastiveOptions } from './margin.js';
export { l2Normalize, pairwiseDistances, safeSqrt, type LabelsLike } from './common.js';
