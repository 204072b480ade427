// fedclr embed: the representation of every image of a folder (or of Fashion-MNIST) through a
// saved encoder, written as one .npz with the images' paths, plus an HNSW index for large sets.
import { parseArgs } from 'node:util';
import { ANN_AUTO_THRESHOLD, HNSW_DEFAULTS, saveEmbeddings, type AnnMode } from '@fedclr/contrastive';
import { initBackend } from '@fedclr/tensor';
import { intOption } from '../common.js';
import { IMAGE_SET_OPTIONS, embedImages, loadEncoder, readImageSet } from '../encoder.js';
import { UsageError } from '../errors.js';

export const embedHelp = `fedclr embed --model DIR (--data DIR | --dataset fashion-mnist) --out FILE.npz [options]
  --model DIR                 a model written by fedclr train or a coordinator checkpoint (tfjs dir)
  --data DIR                  every PNG/JPEG under DIR (recursive), decoded to the model's input size
  --dataset fashion-mnist     Fashion-MNIST (--split train, the default, or test); paths are
                              fashion-mnist/<split>/<index>
  --out FILE                  the embeddings file: NumPy .npz with embeddings (float32 [N, D]),
                              paths and meta (README: Embeddings file); written atomically
  --ann auto|on|off           also build an approximate (HNSW) index, FILE.hnsw: auto does from
                              ${ANN_AUTO_THRESHOLD} images up (default auto)
  --m ${HNSW_DEFAULTS.m} --ef-construction ${HNSW_DEFAULTS.efConstruction} --ef ${HNSW_DEFAULTS.ef}   HNSW links per node, build and search candidate lists
  --workers N --json`;

export async function embedCommand(argv: string[], out: (line: string) => void, log: (line: string) => void): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...IMAGE_SET_OPTIONS,
      out: { type: 'string' },
      ann: { type: 'string', default: 'auto' },
      m: { type: 'string' },
      'ef-construction': { type: 'string' },
      ef: { type: 'string' },
    },
    strict: true,
  });
  if (values.model === undefined) throw new UsageError('give --model DIR');
  if (values.out === undefined) throw new UsageError('give --out FILE (the embeddings file, .npz)');
  if (!['auto', 'on', 'off'].includes(values.ann)) throw new UsageError(`--ann must be auto, on or off, got '${values.ann}'`);
  const hnsw = { m: intOption(values, 'm', HNSW_DEFAULTS.m, 2), efConstruction: intOption(values, 'ef-construction', HNSW_DEFAULTS.efConstruction), ef: intOption(values, 'ef', HNSW_DEFAULTS.ef) };
  await initBackend();
  const encoder = await loadEncoder(values.model);
  const set = await readImageSet(encoder, values, false, log);
  log(`embedding ${set.count} images with ${encoder.spec.name} (${encoder.dim}-d)`);
  const started = performance.now();
  const vectors = await embedImages(encoder, set.images, set.count, values);
  const embedMs = performance.now() - started;
  const meta = await saveEmbeddings(
    values.out,
    { vectors, paths: set.paths, meta: { format: 'fedclr-embeddings/1', count: set.count, dim: encoder.dim, model: encoder.model, source: set.source } },
    { ann: values.ann as AnnMode, hnsw, onIndexBuild: (n) => log(`building the HNSW index of ${n} embeddings`) },
  );
  const summary = {
    out: values.out,
    count: meta.count,
    dim: meta.dim,
    source: meta.source,
    model: meta.model,
    ann: meta.ann ?? null,
    embedMs: Math.round(embedMs),
    indexMs: Math.round(performance.now() - started - embedMs),
    imagesPerSec: Math.round((set.count * 1000) / Math.max(1, embedMs)),
  };
  if (values.json) out(JSON.stringify(summary));
  else {
    const ann = meta.ann === undefined ? 'exact search only' : `HNSW index ${values.out}.hnsw (recall@10 ${meta.ann.recallAt10.toFixed(3)} on ${meta.ann.recallQueries} sampled queries)`;
    out(`embedded ${meta.count} images (${meta.dim}-d, ${summary.imagesPerSec} img/s) into ${values.out}; ${ann}`);
  }
  return 0;
}
