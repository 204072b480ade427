// A seeded, stratified train/test split of a labeled dataset: the test set of `fedclr eval
// --data DIR` and `fedclr simulate --data DIR` when no separate test folder is given.
import { SplitInvalidError } from './errors.js';
import type { Rng } from './rng.js';

export interface TrainTestSplit {
  /** Ascending example indices. */
  readonly train: number[];
  readonly test: number[];
}

/**
 * Per class, round(n x testFraction) examples to the test set (at least one of every class with
 * two or more, so every class is scored; a class of one stays in train, where the probe can learn
 * it), the rest to train. A pure function of the labels and the Rng stream.
 */
export function stratifiedSplit(labels: ArrayLike<number>, testFraction: number, rng: Rng): TrainTestSplit {
  if (!Number.isFinite(testFraction) || testFraction <= 0 || testFraction >= 1) throw new SplitInvalidError(`the test fraction must be in (0, 1), got ${String(testFraction)}`);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i] as number;
    if (!Number.isInteger(label) || label < 0) throw new SplitInvalidError(`label ${String(label)} at index ${i} is not an integer >= 0`);
    const members = byClass.get(label);
    if (members === undefined) byClass.set(label, [i]);
    else members.push(i);
  }
  const train: number[] = [];
  const test: number[] = [];
  for (const label of [...byClass.keys()].sort((a, b) => a - b)) {
    const members = rng.shuffle([...(byClass.get(label) as number[])]);
    const n = members.length < 2 ? 0 : Math.min(members.length - 1, Math.max(1, Math.round(members.length * testFraction)));
    test.push(...members.slice(0, n));
    train.push(...members.slice(n));
  }
  if (train.length === 0 || test.length === 0) throw new SplitInvalidError(`${labels.length} examples leave the ${train.length === 0 ? 'train' : 'test'} set empty; give more images (two or more in a class)`);
  return { train: train.sort((a, b) => a - b), test: test.sort((a, b) => a - b) };
}
