// fedclr's embeddings file: one NumPy .npz archive (np.load reads it) of three arrays,
//
//   embeddings.npy  float32 [N, D]   row i is the representation of image i (raw, not normalised)
//   paths.npy       unicode [N]      image i's path relative to the folder embedded (or its id)
//   meta.npy        unicode []       JSON: format, count, dim, the model (architecture, input,
//                                    weights fingerprint), the source, and the ANN index if any
//
//   z = np.load('emb.npz'); X = z['embeddings']; paths = z['paths']; meta = json.loads(z['meta'][()])
//
// Members are stored uncompressed, so the matrix is plain little-endian float32 bytes.
import { readFile } from 'node:fs/promises';
import { decodeNpy, encodeFloat32Npy, encodeUnicodeNpy, type NpyArray } from './npy.js';
import { readZip, writeZip } from './zip.js';
import { EmbeddingsFileError } from './errors.js';

export const EMBEDDINGS_FORMAT = 'fedclr-embeddings/1';

/** The model whose representation the embeddings are. */
export interface EmbeddingModel {
  readonly architecture: string;
  readonly input: { readonly height: number; readonly width: number; readonly channels: number };
  /** sha256 of the encoder's spec and weights (modelFingerprint): a query must use the same model. */
  readonly fingerprint: string;
}

/** The approximate index beside the file (`<file>.hnsw`), as embed built it. */
export interface AnnMeta {
  readonly library: string;
  readonly space: 'cosine';
  /** File name, relative to the embeddings file's folder. */
  readonly file: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly m: number;
  readonly efConstruction: number;
  /** The search-time candidate list size (hnswlib's ef) that the recall below was measured with. */
  readonly ef: number;
  readonly seed: number;
  /** Mean recall@10 against exact search, measured at build time on a sample of the indexed vectors. */
  readonly recallAt10: number;
  readonly recallQueries: number;
}

export interface EmbeddingsMeta {
  readonly format: typeof EMBEDDINGS_FORMAT;
  readonly count: number;
  readonly dim: number;
  readonly model: EmbeddingModel;
  /** What was embedded: a folder's absolute path, or a dataset split such as fashion-mnist/train. */
  readonly source: string;
  readonly ann?: AnnMeta;
}

export interface Embeddings {
  /** Row-major [count, dim]. */
  readonly vectors: Float32Array;
  readonly paths: readonly string[];
  readonly meta: EmbeddingsMeta;
}

function check(e: Embeddings, where: string): void {
  const { count, dim } = e.meta;
  if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(dim) || dim < 1) throw new EmbeddingsFileError(where, `count ${count} and dim ${dim} must be positive integers`);
  if (e.vectors.length !== count * dim) throw new EmbeddingsFileError(where, `${e.vectors.length} values are not count x dim = ${count} x ${dim}`);
  if (e.paths.length !== count) throw new EmbeddingsFileError(where, `${e.paths.length} paths for ${count} embeddings`);
}

/** The .npz bytes of a set of embeddings. */
export function encodeEmbeddings(e: Embeddings): Uint8Array {
  check(e, '(writing)');
  return writeZip([
    { name: 'embeddings.npy', data: encodeFloat32Npy(e.vectors, [e.meta.count, e.meta.dim]) },
    { name: 'paths.npy', data: encodeUnicodeNpy(e.paths) },
    { name: 'meta.npy', data: encodeUnicodeNpy([JSON.stringify(e.meta)], []) },
  ]);
}

function member(arrays: Map<string, NpyArray>, name: string, where: string): NpyArray {
  const a = arrays.get(name);
  if (a === undefined) throw new EmbeddingsFileError(where, `no ${name} in the archive (not a fedclr embeddings file?)`);
  return a;
}

function parseMeta(text: string, where: string): EmbeddingsMeta {
  let meta: EmbeddingsMeta;
  try {
    meta = JSON.parse(text) as EmbeddingsMeta;
  } catch (err) {
    throw new EmbeddingsFileError(where, `meta.npy is not JSON (${(err as Error).message})`);
  }
  if (meta?.format !== EMBEDDINGS_FORMAT) throw new EmbeddingsFileError(where, `meta.format is ${JSON.stringify(meta?.format)}, expected ${EMBEDDINGS_FORMAT}`);
  if (typeof meta.model?.fingerprint !== 'string' || typeof meta.model.architecture !== 'string') throw new EmbeddingsFileError(where, 'meta.model lacks its architecture or fingerprint');
  return meta;
}

/** Embeddings from .npz bytes, every array checked against meta. */
export function decodeEmbeddings(bytes: Uint8Array, where: string): Embeddings {
  const arrays = new Map(readZip(bytes, where).map((m) => [m.name, decodeNpy(m.data, `${where}: ${m.name}`)]));
  const metaArray = member(arrays, 'meta.npy', where);
  if (metaArray.dtype !== 'unicode' || metaArray.data.length !== 1) throw new EmbeddingsFileError(where, 'meta.npy must be one string');
  const meta = parseMeta(metaArray.data[0] as string, where);
  const matrix = member(arrays, 'embeddings.npy', where);
  const paths = member(arrays, 'paths.npy', where);
  if (matrix.dtype !== '<f4' || matrix.shape.length !== 2) throw new EmbeddingsFileError(where, `embeddings.npy must be a 2-D float32 array, got ${matrix.dtype} [${matrix.shape}]`);
  if (matrix.shape[0] !== meta.count || matrix.shape[1] !== meta.dim) throw new EmbeddingsFileError(where, `embeddings.npy is [${matrix.shape}], meta says [${meta.count}, ${meta.dim}]`);
  if (paths.dtype !== 'unicode') throw new EmbeddingsFileError(where, `paths.npy must hold strings, got ${paths.dtype}`);
  const e: Embeddings = { vectors: matrix.data, paths: paths.data, meta };
  check(e, where);
  return e;
}

/** Reads and checks an embeddings file. */
export async function readEmbeddingsFile(path: string): Promise<Embeddings> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new EmbeddingsFileError(path, `cannot read it (${(err as Error).message})`);
  }
  return decodeEmbeddings(bytes, path);
}
