// Embeddings files (.npz), exact and HNSW cosine search, and the file + index pair on disk:
// round trips, damage detection, recall of the approximate index against exact search.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Network, flattenWeights, initBackend, loadFlatWeights } from '@fedclr/tensor';
import {
  ExactIndex,
  HnswIndex,
  convnetS,
  decodeEmbeddings,
  encodeEmbeddings,
  encodeImages,
  gaussianBlobs,
  modelFingerprint,
  openEmbeddings,
  recallAtK,
  saveEmbeddings,
  withProjectionHead,
  type Embeddings,
  type Neighbours,
} from '../src/index.js';
import { uniformArray } from './seeded.js';

function embeddings(count: number, dim: number, seed = 1): Embeddings {
  const { features } = gaussianBlobs({ count, dim, classes: 10, seed, spread: 2 });
  return {
    vectors: features,
    paths: Array.from({ length: count }, (_, i) => `class-${i % 10}/img-${i}.png`),
    meta: { format: 'fedclr-embeddings/1', count, dim, model: { architecture: 'test', input: { height: 4, width: 4, channels: 1 }, fingerprint: 'f'.repeat(64) }, source: '/data' },
  };
}

/** The k best rows by cosine, the slow obvious way (float64, sort). */
function naiveTopK(vectors: Float32Array, dim: number, query: Float32Array, k: number): number[] {
  const norm = (v: ArrayLike<number>, at: number): number => Math.sqrt(Array.from({ length: dim }, (_, j) => (v[at + j] as number) ** 2).reduce((a, b) => a + b, 0));
  const qn = norm(query, 0);
  const scored = Array.from({ length: vectors.length / dim }, (_, r) => {
    let s = 0;
    for (let j = 0; j < dim; j++) s += (vectors[r * dim + j] as number) * (query[j] as number);
    return { r, s: s / (norm(vectors, r * dim) * qn) };
  });
  return scored.sort((a, b) => b.s - a.s || a.r - b.r).slice(0, k).map((x) => x.r);
}

describe('embeddings file (.npz)', () => {
  it('round-trips vectors, unicode paths and meta', () => {
    const e = embeddings(50, 8);
    const odd = { ...e, paths: e.paths.map((p, i) => (i === 3 ? 'été/😀 photo.jpg' : p)) };
    const back = decodeEmbeddings(encodeEmbeddings(odd), 'mem');
    assert.deepEqual(back.vectors, e.vectors);
    assert.deepEqual(back.paths, odd.paths);
    assert.deepEqual(back.meta, e.meta);
  });

  it('refuses a damaged, truncated or foreign file with FEDCLR_SEARCH_EMBEDDINGS_FILE', () => {
    const bytes = encodeEmbeddings(embeddings(20, 4));
    const flipped = bytes.slice();
    flipped[200] = (flipped[200] as number) ^ 0xff; // inside embeddings.npy's data
    assert.throws(() => decodeEmbeddings(flipped, 'x.npz'), { code: 'FEDCLR_SEARCH_EMBEDDINGS_FILE', message: /embeddings\.npy fails its CRC-32 check/ });
    assert.throws(() => decodeEmbeddings(bytes.subarray(0, bytes.length - 30), 'x.npz'), { code: 'FEDCLR_SEARCH_EMBEDDINGS_FILE' });
    assert.throws(() => decodeEmbeddings(new TextEncoder().encode('{"not": "a zip"}'.repeat(4)), 'x.npz'), { code: 'FEDCLR_SEARCH_EMBEDDINGS_FILE', message: /not a ZIP/ });
  });
});

describe('exact cosine search', () => {
  it('returns the same top-k as a naive float64 sort, most similar first', () => {
    const e = embeddings(300, 16);
    const index = new ExactIndex(e.vectors, 300, 16);
    for (const seed of [1, 2, 3]) {
      const q = Float32Array.from(uniformArray(16, seed), (v) => v * 4 - 2);
      const got = index.search(q, 7);
      assert.deepEqual(Array.from(got.ids), naiveTopK(e.vectors, 16, q, 7));
      for (let i = 1; i < 7; i++) assert.ok((got.scores[i - 1] as number) >= (got.scores[i] as number));
    }
  });

  it('clips k to the set, and refuses a query of the wrong width or with NaN', () => {
    const index = new ExactIndex(new Float32Array([1, 0, 0, 1, 1, 1]), 3, 2);
    const r = index.search(new Float32Array([1, 0.1]), 10);
    assert.deepEqual(Array.from(r.ids), [0, 2, 1]);
    assert.ok(Math.abs((r.scores[0] as number) - 1 / Math.sqrt(1.01)) < 1e-6);
    assert.throws(() => index.search(new Float32Array(3), 1), { code: 'FEDCLR_SEARCH_DIMENSION_MISMATCH' });
    assert.throws(() => index.search(new Float32Array([NaN, 1]), 1), { code: 'FEDCLR_SEARCH_INVALID_OPTION' });
  });
});

describe('HNSW (hnswlib-node)', () => {
  const e = embeddings(4000, 32, 7);
  const queries = gaussianBlobs({ count: 200, dim: 32, classes: 10, seed: 99, spread: 2 }).features;
  const answers = (index: { search(q: Float32Array, k: number): Neighbours }): Neighbours[] =>
    Array.from({ length: 200 }, (_, i) => index.search(queries.subarray(i * 32, (i + 1) * 32), 10));

  it('finds >= 95% of the exact top-10 on clustered data, deterministically for a seed', () => {
    const exact = answers(new ExactIndex(e.vectors, 4000, 32));
    const a = HnswIndex.build(e.vectors, 4000, 32, { seed: 3 });
    const b = HnswIndex.build(e.vectors, 4000, 32, { seed: 3 });
    const first = answers(a);
    assert.ok(recallAtK(first, exact, 10) >= 0.95, `recall@10 ${recallAtK(first, exact, 10)}`);
    assert.deepEqual(answers(b), first);
    // Scores are cosine similarities: those of the exact neighbours it found agree.
    const { ids, scores } = first[0] as Neighbours;
    const truth = exact[0] as Neighbours;
    const at = Array.from(truth.ids).indexOf(ids[0] as number);
    assert.ok(at >= 0 && Math.abs((scores[0] as number) - (truth.scores[at] as number)) < 1e-5);
  });
});

describe('saveEmbeddings / openEmbeddings', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedclr-search-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the .npz and its HNSW index, and opens them as an index that answers like exact search', async () => {
    const e = embeddings(3000, 16, 4);
    const path = join(dir, 'a.npz');
    const meta = await saveEmbeddings(path, e, { ann: 'on' });
    assert.equal(meta.ann?.file, 'a.npz.hnsw');
    assert.ok((meta.ann?.recallAt10 ?? 0) >= 0.95, `build-time recall ${meta.ann?.recallAt10}`);
    assert.deepEqual((await readdir(dir)).sort(), ['a.npz', 'a.npz.hnsw']);
    const { embeddings: back, index } = await openEmbeddings(path);
    assert.equal(index.kind, 'hnsw');
    assert.deepEqual(back.paths, e.paths);
    const { index: exact } = await openEmbeddings(path, { exact: true });
    assert.equal(exact.kind, 'exact');
    const q = e.vectors.subarray(5 * 16, 6 * 16);
    assert.equal(index.search(q, 1).ids[0], 5);
    assert.equal(exact.search(q, 1).ids[0], 5);
  });

  it('refuses a damaged or missing index file with FEDCLR_SEARCH_ANN_INDEX; --exact still works', async () => {
    const path = join(dir, 'b.npz');
    await saveEmbeddings(path, embeddings(500, 8), { ann: 'on' });
    const index = await readFile(`${path}.hnsw`);
    index[index.length - 5] = (index[index.length - 5] as number) ^ 1;
    await writeFile(`${path}.hnsw`, index);
    await assert.rejects(openEmbeddings(path), { code: 'FEDCLR_SEARCH_ANN_INDEX', message: /sha256/ });
    await rm(`${path}.hnsw`);
    await assert.rejects(openEmbeddings(path), { code: 'FEDCLR_SEARCH_ANN_INDEX', message: /missing/ });
    assert.equal((await openEmbeddings(path, { exact: true })).index.kind, 'exact');
  });

  it('without an index (small set, auto) removes a stale one; a failed write leaves nothing behind', async () => {
    const path = join(dir, 'c.npz');
    await saveEmbeddings(path, embeddings(600, 8), { ann: 'on' });
    const meta = await saveEmbeddings(path, embeddings(600, 8), { ann: 'auto' });
    assert.equal(meta.ann, undefined);
    assert.ok(!(await readdir(dir)).includes('c.npz.hnsw'));
    const before = (await readdir(dir)).sort();
    await assert.rejects(saveEmbeddings(join(dir, 'no-such-folder', 'd.npz'), embeddings(30, 4), { ann: 'on' }));
    assert.deepEqual((await readdir(dir)).sort(), before);
  });
});

describe('encodeImages', () => {
  it('computes the representation of the network in inference mode, with or without workers', async () => {
    await initBackend({ prefer: 'wasm' });
    const spec = withProjectionHead(convnetS({ height: 8, width: 8, channels: 1, widths: [4, 8, 16] }), 16);
    const net = new Network(spec, 3);
    const weights = flattenWeights(net).map((w, i) => w + 0.01 * Math.sin(i)); // moving statistics off 0/1
    const images = Uint8Array.from(uniformArray(5 * 64, 9), (v) => Math.floor(v * 256));
    const local = await encodeImages(spec, weights, images, 5, { workers: 0, batchSize: 2 });
    const parallel = await encodeImages(spec, weights, images, 5, { workers: 2 });
    assert.equal(local.dim, 16);
    const other = new Network(spec);
    loadFlatWeights(other, weights);
    const x = tf.tensor4d(Float32Array.from(images, (v) => v / 255), [5, 8, 8, 1]);
    const expected = other.apply(x, false, 'representation').dataSync();
    for (let i = 0; i < expected.length; i++) {
      assert.ok(Math.abs((local.features[i] as number) - (expected[i] as number)) < 1e-5, `local ${i}`);
      assert.ok(Math.abs((parallel.features[i] as number) - (expected[i] as number)) < 1e-5, `parallel ${i}`);
    }
    assert.notEqual(modelFingerprint(spec, weights), modelFingerprint(spec, flattenWeights(net)));
    x.dispose();
    net.dispose();
    other.dispose();
  });
});
