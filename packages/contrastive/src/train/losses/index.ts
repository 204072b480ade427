// The trainer's losses beyond NT-Xent (train/loss.ts): each a PairLoss with a closed-form gradient.
export { marginPairLoss, type MarginPairLossOptions } from './margin.js';
export { supConPairLoss, type SupConPairLossOptions } from './supcon.js';
export { tripletPairLoss, TRIPLET_MININGS, type TripletMining, type TripletPairLossOptions } from './triplet.js';
