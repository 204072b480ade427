import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRng, SeededRng } from '../src/index.js';
import type { Rng, RngState } from '../src/index.js';
import { splitmix64Mix } from '../src/rng.js';

function moments(xs: readonly number[]): { mean: number; variance: number; skew: number; kurtosis: number } {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  let m2 = 0;
  let m3 = 0;
  let m4 = 0;
  for (const x of xs) {
    const d = x - mean;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  m2 /= n;
  m3 /= n;
  m4 /= n;
  return { mean, variance: m2, skew: m3 / m2 ** 1.5, kurtosis: m4 / (m2 * m2) };
}

function draws(n: number, f: () => number): number[] {
  return Array.from({ length: n }, f);
}

function pearson(a: readonly number[], b: readonly number[]): number {
  const ma = moments(a);
  const mb = moments(b);
  let cov = 0;
  for (let i = 0; i < a.length; i++) cov += ((a[i] as number) - ma.mean) * ((b[i] as number) - mb.mean);
  return cov / a.length / Math.sqrt(ma.variance * mb.variance);
}

const N = 100_000;

describe('SeededRng core', () => {
  it('matches the xoshiro128** reference output for state {1,2,3,4}', () => {
    // Reference values from Vigna's xoshiro128starstar.c, compiled and run with s = {1, 2, 3, 4}.
    const rng = SeededRng.fromState({ version: 1, key: [1, 2, 3, 4], s: [1, 2, 3, 4], spare: null });
    const out = Array.from({ length: 6 }, () => rng.nextUint32());
    assert.deepEqual(out, [11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
  });

  it('uses the reference SplitMix64 mixer', () => {
    // splitmix64 seeded with 0: outputs are mix(k * golden) for k = 1, 2, 3.
    const golden = 0x9e3779b97f4a7c15n;
    const mask = (1n << 64n) - 1n;
    assert.equal(splitmix64Mix(golden), 16294208416658607535n);
    assert.equal(splitmix64Mix((2n * golden) & mask), 7960286522194355700n);
    assert.equal(splitmix64Mix((3n * golden) & mask), 487617019471545679n);
  });

  it('is deterministic per seed and distinct across seeds', () => {
    const seq = (seed: number | string): number[] => {
      const rng = createRng(seed);
      return Array.from({ length: 8 }, () => rng.nextUint32());
    };
    assert.deepEqual(seq(42), seq(42));
    assert.deepEqual(seq('fedclr'), seq('fedclr'));
    assert.deepEqual(seq(0), seq(-0));
    const all = [seq(0), seq(1), seq(2), seq('1'), seq(''), seq(1.5), seq(2 ** 40)].map((s) => s.join(','));
    assert.equal(new Set(all).size, all.length, 'every seed gives its own stream');
  });

  it('rejects non-finite and non-number/string seeds', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      assert.throws(() => createRng(bad), { code: 'FEDCLR_DATA_RNG_INVALID_SEED' });
    }
    assert.throws(() => createRng({} as unknown as number), { code: 'FEDCLR_DATA_RNG_INVALID_SEED' });
  });

  it('next() is uniform on [0, 1)', () => {
    const rng = createRng(1);
    const xs = draws(N, () => rng.next());
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    const m = moments(xs);
    assert.ok(Math.abs(m.mean - 0.5) < 0.005, `mean ${m.mean}`);
    assert.ok(Math.abs(m.variance - 1 / 12) < 0.002, `variance ${m.variance}`);
  });

  it('int() is unbiased over small and large ranges and validates its bounds', () => {
    const rng = createRng(2);
    const buckets = new Array<number>(7).fill(0);
    for (let i = 0; i < 70_000; i++) {
      const v = rng.int(7);
      buckets[v] = (buckets[v] as number) + 1;
    }
    // Chi-square with 6 degrees of freedom; 22.5 is the 0.999 quantile.
    const chi2 = buckets.reduce((s, c) => s + (c - 10_000) ** 2 / 10_000, 0);
    assert.ok(chi2 < 22.5, `chi2 ${chi2} buckets ${buckets.join(',')}`);
    for (let i = 0; i < 1000; i++) {
      const v = rng.int(-3, 3);
      assert.ok(Number.isInteger(v) && v >= -3 && v < 3);
    }
    const big = rng.int(0, 2 ** 40);
    assert.ok(Number.isInteger(big) && big >= 0 && big < 2 ** 40);
    assert.equal(rng.int(5, 6), 5);
    for (const [a, b] of [[0, 0], [3, 2], [0.5, 2], [0, 2 ** 60]] as const) {
      assert.throws(() => rng.int(a, b), { code: 'FEDCLR_DATA_RNG_INVALID_ARGUMENT' });
    }
  });

  it('uniform() scales to [min, max)', () => {
    const rng = createRng(3);
    const xs = draws(10_000, () => rng.uniform(-2, 6));
    assert.ok(xs.every((x) => x >= -2 && x < 6));
    assert.ok(Math.abs(moments(xs).mean - 2) < 0.1);
    assert.throws(() => rng.uniform(1, 0), { code: 'FEDCLR_DATA_RNG_INVALID_ARGUMENT' });
  });
});

describe('SeededRng distributions', () => {
  it('normal() has the moments of N(mean, std^2)', () => {
    const rng = createRng(4);
    const m = moments(draws(N, () => rng.normal()));
    assert.ok(Math.abs(m.mean) < 0.015, `mean ${m.mean}`);
    assert.ok(Math.abs(m.variance - 1) < 0.02, `variance ${m.variance}`);
    assert.ok(Math.abs(m.skew) < 0.05, `skew ${m.skew}`);
    assert.ok(Math.abs(m.kurtosis - 3) < 0.1, `kurtosis ${m.kurtosis}`);
    const shifted = moments(draws(20_000, () => rng.normal(5, 2)));
    assert.ok(Math.abs(shifted.mean - 5) < 0.06 && Math.abs(shifted.variance - 4) < 0.2);
    assert.throws(() => rng.normal(0, -1), { code: 'FEDCLR_DATA_RNG_INVALID_ARGUMENT' });
  });

  it('gamma() has mean shape*scale and variance shape*scale^2, for shape below and above 1', () => {
    const rng = createRng(5);
    for (const [shape, scale] of [[0.3, 1], [1, 2], [4.5, 0.5]] as const) {
      const xs = draws(50_000, () => rng.gamma(shape, scale));
      assert.ok(xs.every((x) => x >= 0 && Number.isFinite(x)));
      const m = moments(xs);
      const mean = shape * scale;
      const variance = shape * scale * scale;
      assert.ok(Math.abs(m.mean - mean) / mean < 0.03, `shape ${shape}: mean ${m.mean} vs ${mean}`);
      assert.ok(Math.abs(m.variance - variance) / variance < 0.08, `shape ${shape}: var ${m.variance} vs ${variance}`);
    }
    assert.throws(() => rng.gamma(0), { code: 'FEDCLR_DATA_RNG_INVALID_ARGUMENT' });
    assert.throws(() => rng.gamma(1, 0), { code: 'FEDCLR_DATA_RNG_INVALID_ARGUMENT' });
  });

  it('dirichlet() sums to 1, has mean alpha/sum(alpha), and survives tiny alpha', () => {
    const rng = createRng(6);
    const alpha = [0.5, 1, 2.5];
    const sums = [0, 0, 0];
    const trials = 20_000;
    for (let t = 0; t < trials; t++) {
      const p = rng.dirichlet(alpha);
      assert.equal(p.length, 3);
      assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-12);
      p.forEach((v, i) => (sums[i] = (sums[i] as number) + v));
    }
    sums.forEach((s, i) => assert.ok(Math.abs(s / trials - (alpha[i] as number) / 4) < 0.01, `component ${i}`));
    // With alpha = 0.001 every raw Gamma draw underflows to 0; log-space normalization keeps it sane.
    for (let t = 0; t < 100; t++) {
      const p = rng.dirichlet(new Array<number>(50).fill(0.001));
      assert.ok(p.every((v) => Number.isFinite(v) && v >= 0));
      assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-12);
    }
    assert.deepEqual(rng.dirichlet([3]), [1]);
    assert.throws(() => rng.dirichlet([]), { code: 'FEDCLR_DATA_RNG_INVALID_ARGUMENT' });
    assert.throws(() => rng.dirichlet([1, 0]), { code: 'FEDCLR_DATA_RNG_INVALID_ARGUMENT' });
  });

  it('shuffle() permutes arrays and typed arrays in place, uniformly', () => {
    const rng = createRng(7);
    const arr = Array.from({ length: 100 }, (_, i) => i);
    assert.equal(rng.shuffle(arr), arr);
    assert.deepEqual([...arr].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
    assert.notDeepEqual(arr, Array.from({ length: 100 }, (_, i) => i));
    const typed = rng.shuffle(Int32Array.from({ length: 50 }, (_, i) => i));
    assert.deepEqual(Array.from(typed).sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
    // Where element 0 lands should be uniform over 5 positions.
    const landing = new Array<number>(5).fill(0);
    for (let t = 0; t < 25_000; t++) {
      const pos = rng.shuffle([0, 1, 2, 3, 4]).indexOf(0);
      landing[pos] = (landing[pos] as number) + 1;
    }
    const chi2 = landing.reduce((s, c) => s + (c - 5000) ** 2 / 5000, 0);
    assert.ok(chi2 < 18.5, `chi2 ${chi2}`); // 4 dof, 0.999 quantile
    assert.deepEqual(rng.shuffle([]), []);
  });

  it('sampleIndices()/sample() draw distinct items; both internal branches agree', () => {
    const rng = createRng(8);
    const s = rng.sampleIndices(1000, 30);
    assert.equal(new Set(s).size, 30);
    assert.ok(s.every((i) => Number.isInteger(i) && i >= 0 && i < 1000));
    assert.deepEqual(rng.sampleIndices(5, 0), []);
    assert.deepEqual([...rng.sampleIndices(6, 6)].sort(), [0, 1, 2, 3, 4, 5]);
    // Partial Fisher-Yates: a shorter draw is a prefix of a longer one from the same state.
    // k = 10 of 100 takes the Map branch, k = 50 the dense branch.
    const a = createRng('prefix').sampleIndices(100, 10);
    const b = createRng('prefix').sampleIndices(100, 50);
    assert.deepEqual(a, b.slice(0, 10));
    const letters = rng.sample(['a', 'b', 'c', 'd'], 2);
    assert.equal(new Set(letters).size, 2);
    assert.throws(() => rng.sampleIndices(3, 4), { code: 'FEDCLR_DATA_RNG_INVALID_ARGUMENT' });
    assert.throws(() => rng.sampleIndices(3, -1), { code: 'FEDCLR_DATA_RNG_INVALID_ARGUMENT' });
  });
});

describe('SeededRng fork and state', () => {
  it('fork(label) is deterministic and does not depend on or advance the parent', () => {
    const parent = createRng('root');
    const before = parent.state();
    const child1 = parent.fork('client:1');
    assert.deepEqual(parent.state(), before, 'forking does not advance the parent');
    const first = draws(5, () => child1.nextUint32());
    for (let i = 0; i < 100; i++) parent.next();
    const child1Again = parent.fork('client:1');
    assert.deepEqual(draws(5, () => child1Again.nextUint32()), first, 'same label, same stream');
    const nested1 = createRng('root').fork('client:1').fork('round:7');
    const nested2 = createRng('root').fork('client:1').fork('round:7');
    assert.equal(nested1.nextUint32(), nested2.nextUint32());
  });

  it('forks with different labels, and the parent itself, are uncorrelated streams', () => {
    const root = createRng(99);
    const streams: Rng[] = [root, root.fork('a'), root.fork('b'), root.fork(1), root.fork('1'), root.fork('a').fork('a')];
    const samples = streams.map((r) => draws(20_000, () => r.next()));
    for (let i = 0; i < samples.length; i++) {
      for (let j = i + 1; j < samples.length; j++) {
        const r = pearson(samples[i] as number[], samples[j] as number[]);
        assert.ok(Math.abs(r) < 0.03, `streams ${i} and ${j} correlate: ${r}`);
      }
    }
  });

  it('state() round-trips through JSON, including the cached normal', () => {
    const rng = createRng('checkpoint');
    rng.normal(); // leaves a spare normal cached
    const saved = JSON.parse(JSON.stringify(rng.state())) as RngState;
    assert.notEqual(saved.spare, null);
    const restored = SeededRng.fromState(saved);
    assert.deepEqual(draws(10, () => restored.normal()), draws(10, () => rng.normal()));
    assert.equal(restored.fork('x').nextUint32(), rng.fork('x').nextUint32(), 'the key survives too');
  });

  it('fromState() rejects malformed states', () => {
    const good = createRng(1).state();
    const bad: unknown[] = [
      null,
      { ...good, version: 2 },
      { ...good, s: [0, 0, 0, 0] },
      { ...good, s: [1, 2, 3] },
      { ...good, key: [1, 2, 3, 2 ** 32] },
      { ...good, spare: NaN },
    ];
    for (const state of bad) {
      assert.throws(() => SeededRng.fromState(state as RngState), {
        code: 'FEDCLR_DATA_RNG_INVALID_STATE',
      });
    }
  });
});
