// fedclr search: the images of an embeddings file nearest to query images by cosine similarity
// of their representations (HNSW when the file has an index, else exact).
import { parseArgs } from 'node:util';
import { openEmbeddings } from '@fedclr/contrastive';
import { initBackend } from '@fedclr/tensor';
import { intOption } from '../common.js';
import { ENCODER_OPTIONS, checkSameEncoder, embedImages, loadEncoder, readImageFiles } from '../encoder.js';
import { UsageError } from '../errors.js';

export const searchHelp = `fedclr search --model DIR --index FILE.npz --query IMAGE [--query IMAGE ...] [options]
  --model DIR                 the model the index was embedded with (checked by fingerprint)
  --index FILE                an embeddings file written by fedclr embed (FILE.hnsw beside it is used
                              when embed built one)
  --query IMAGE               a PNG/JPEG image (repeat for several; extra arguments are queries too)
  -k, --k 10                  neighbours per query
  --exact                     exact search even when the file has an approximate index
  --ef N                      HNSW candidate list (default: the one embed measured recall with)
  --json                      one JSON object: the neighbours of every query, index kind, timings`;

export async function searchCommand(argv: string[], out: (line: string) => void, log: (line: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...ENCODER_OPTIONS,
      index: { type: 'string' },
      query: { type: 'string', multiple: true },
      k: { type: 'string', short: 'k' },
      exact: { type: 'boolean', default: false },
      ef: { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.model === undefined || values.index === undefined) throw new UsageError('give --model DIR and --index FILE');
  const queries = [...(values.query ?? []), ...positionals];
  if (queries.length === 0) throw new UsageError('give at least one --query IMAGE');
  const k = intOption(values, 'k', 10);
  await initBackend();
  const encoder = await loadEncoder(values.model);
  const images = await readImageFiles(encoder, queries); // before the (slower) index: a bad query fails fast
  const { embeddings, index } = await openEmbeddings(values.index, { exact: values.exact, ...(values.ef !== undefined ? { ef: intOption(values, 'ef', 1) } : {}) });
  checkSameEncoder(encoder, embeddings.meta.model, values.index);
  const vectors = await embedImages(encoder, images, queries.length, values);
  const started = performance.now();
  const results = queries.map((query, q) => {
    const { ids, scores } = index.search(vectors.subarray(q * encoder.dim, (q + 1) * encoder.dim), k);
    return { query, neighbours: Array.from(ids, (id, r) => ({ path: embeddings.paths[id] as string, id, score: Number((scores[r] as number).toFixed(6)) })) };
  });
  const searchMs = performance.now() - started;
  if (values.json) {
    out(JSON.stringify({ index: values.index, kind: index.kind, count: index.count, k, results, searchMs: Number(searchMs.toFixed(3)) }));
    return 0;
  }
  log(`${index.kind} search over ${index.count} embeddings (${embeddings.meta.source})`);
  for (const r of results) {
    out(`${r.query}:`);
    r.neighbours.forEach((n, rank) => out(`  ${rank + 1}\t${n.score.toFixed(4)}\t${n.path}`));
  }
  return 0;
}
