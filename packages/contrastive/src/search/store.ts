// An embeddings file and its approximate index on disk: written so that a reader never sees a
// half-written pair (the .npz, renamed into place last, names the index file's sha256), and
// opened as a SimilarityIndex (HNSW when the file has one, exact otherwise or when asked).
import { createHash } from 'node:crypto';
import { readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createRng } from '@fedclr/data';
import { writeFileAtomic } from './atomic.js';
import { encodeEmbeddings, readEmbeddingsFile, type AnnMeta, type Embeddings, type EmbeddingsMeta } from './embeddings-file.js';
import { AnnIndexError, SearchInvalidOptionError } from './errors.js';
import { ExactIndex, recallAtK, type Neighbours, type SimilarityIndex } from './exact.js';
import { HNSW_LIBRARY, HnswIndex, type HnswOptions } from './hnsw.js';

/** 'auto' builds an HNSW index from ANN_AUTO_THRESHOLD embeddings up; below it exact search is fast enough. */
export type AnnMode = 'auto' | 'on' | 'off';
export const ANN_AUTO_THRESHOLD = 10_000;
/** Indexed vectors queried at build time to measure the index's recall@10 against exact search. */
export const RECALL_SAMPLE = 200;

export interface SaveEmbeddingsOptions {
  readonly ann?: AnnMode;
  readonly hnsw?: HnswOptions;
  /** Told before the (synchronous, possibly long) index build starts. */
  readonly onIndexBuild?: (count: number) => void;
}

/** The suffix of the index file beside an embeddings file. */
export const ANN_SUFFIX = '.hnsw';

/**
 * Mean recall@k of `index` against exact search for `queries` of the indexed rows (seeded), each
 * query's own row left out of both answers.
 */
export function sampledRecall(index: SimilarityIndex, exact: ExactIndex, vectors: Float32Array, queries: number, k = 10, seed = 0): number {
  const rows = createRng(seed).sampleIndices(exact.count, Math.min(queries, exact.count));
  const drop = (n: Neighbours, self: number): Neighbours => {
    const keep = Array.from(n.ids.keys()).filter((i) => n.ids[i] !== self).slice(0, k);
    return { ids: Int32Array.from(keep, (i) => n.ids[i] as number), scores: Float32Array.from(keep, (i) => n.scores[i] as number) };
  };
  const dim = exact.dim;
  const approximate: Neighbours[] = [];
  const truth: Neighbours[] = [];
  for (const r of rows) {
    const q = vectors.subarray(r * dim, (r + 1) * dim);
    approximate.push(drop(index.search(q, k + 1), r));
    truth.push(drop(exact.search(q, k + 1), r));
  }
  return recallAtK(approximate, truth, k);
}

async function sha256File(path: string): Promise<{ sha256: string; bytes: number }> {
  const bytes = await readFile(path);
  return { sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length };
}

/** Builds the HNSW index of `e`, writes it to a temp file beside `path`, and measures its recall. */
async function buildAnn(path: string, e: Embeddings, options: SaveEmbeddingsOptions): Promise<{ meta: AnnMeta; temp: string }> {
  const { count, dim } = e.meta;
  options.onIndexBuild?.(count);
  const index = HnswIndex.build(e.vectors, count, dim, options.hnsw);
  const recall = sampledRecall(index, new ExactIndex(e.vectors, count, dim), e.vectors, RECALL_SAMPLE);
  const temp = `${path}${ANN_SUFFIX}.tmp-${process.pid}`;
  try {
    index.save(temp);
    const { sha256, bytes } = await sha256File(temp);
    const file = `${basename(path)}${ANN_SUFFIX}`;
    const meta: AnnMeta = {
      library: HNSW_LIBRARY,
      space: 'cosine',
      file,
      bytes,
      sha256,
      m: index.m,
      efConstruction: index.efConstruction,
      ef: index.ef,
      seed: index.seed,
      recallAt10: recall,
      recallQueries: Math.min(RECALL_SAMPLE, count),
    };
    return { meta, temp };
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/**
 * Writes embeddings to `path` (.npz) and, by `ann`, their HNSW index to `<path>.hnsw`. Either the
 * new pair is in place or, on any failure, nothing new is (a stale index file is removed).
 */
export async function saveEmbeddings(path: string, e: Embeddings, options: SaveEmbeddingsOptions = {}): Promise<EmbeddingsMeta> {
  const mode = options.ann ?? 'auto';
  if (mode !== 'auto' && mode !== 'on' && mode !== 'off') throw new SearchInvalidOptionError('ann', `expected auto, on or off, got ${String(mode)}`);
  const wantAnn = mode === 'on' || (mode === 'auto' && e.meta.count >= ANN_AUTO_THRESHOLD);
  const { ann: _, ...plain } = e.meta;
  const built = wantAnn ? await buildAnn(path, e, options) : undefined;
  const meta: EmbeddingsMeta = built === undefined ? plain : { ...plain, ann: built.meta };
  try {
    const bytes = encodeEmbeddings({ ...e, meta });
    // The index first: an old .npz next to a new index is caught by its sha256; the .npz is the commit.
    if (built !== undefined) await rename(built.temp, join(dirname(path), built.meta.file));
    await writeFileAtomic(path, bytes);
  } catch (err) {
    if (built !== undefined) await rm(built.temp, { force: true });
    throw err;
  }
  if (built === undefined) await rm(`${path}${ANN_SUFFIX}`, { force: true });
  return meta;
}

export interface OpenOptions {
  /** Exact search even when the file has an approximate index. */
  readonly exact?: boolean;
  /** HNSW search-time candidate list (default: the one the index was measured with). */
  readonly ef?: number;
}

/** Loads the HNSW index that `meta.ann` names, after checking its size and sha256. */
async function openAnn(path: string, meta: EmbeddingsMeta, ann: AnnMeta, ef: number | undefined): Promise<HnswIndex> {
  const file = join(dirname(path), ann.file);
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (err) {
    throw new AnnIndexError(file, `it is missing (${(err as Error).message})`);
  }
  if (size !== ann.bytes) throw new AnnIndexError(file, `it has ${size} bytes, ${basename(path)} expects ${ann.bytes}`);
  // hnswlib trusts its file's header; a damaged file must never reach it.
  if ((await sha256File(file)).sha256 !== ann.sha256) throw new AnnIndexError(file, `its sha256 is not the one ${basename(path)} records (damaged, or from another embed)`);
  return HnswIndex.load(file, meta.count, meta.dim, { m: ann.m, efConstruction: ann.efConstruction, seed: ann.seed, ef: ef ?? ann.ef });
}

/** An embeddings file and an index over it. */
export async function openEmbeddings(path: string, options: OpenOptions = {}): Promise<{ embeddings: Embeddings; index: SimilarityIndex }> {
  const embeddings = await readEmbeddingsFile(path);
  const { meta } = embeddings;
  const index =
    meta.ann !== undefined && options.exact !== true
      ? await openAnn(path, meta, meta.ann, options.ef)
      : new ExactIndex(embeddings.vectors, meta.count, meta.dim);
  return { embeddings, index };
}
