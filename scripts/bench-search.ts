// npm run bench:search -- --model DIR [--embeddings FILE.npz] [--queries 1000] [--k 10] [--ef 16,32,64,128]
// The similarity-search bar: `fedclr embed` of the 60,000 Fashion-MNIST train images (a real
// process, timed), then --queries test images searched in its HNSW index and exactly: recall@k
// of the index against exact search and per-query latency (median, p95) for each --ef, the time
// to encode one query image, and a whole `fedclr search` process. Prints one JSON object as its
// last line. The CPU may be shared: latencies are indicative.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { createStepEngine, encodeImages, ntXentPairLoss, openEmbeddings, recallAtK, representationNode, type HnswIndex, type Neighbours } from '@fedclr/contrastive';
import { loadFashionMnist } from '@fedclr/data';
import { initBackend, loadExportedModel } from '@fedclr/tensor';

const FEDCLR = fileURLToPath(new URL('../../apps/cli/bin/fedclr.js', import.meta.url));

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    embeddings: { type: 'string' },
    queries: { type: 'string', default: '1000' },
    k: { type: 'string', default: '10' },
    ef: { type: 'string', default: '16,32,64,128' },
  },
});
if (values.model === undefined) throw new Error('give --model DIR (e.g. from npx fedclr train --dataset fashion-mnist --minutes 10 --out runs/fmnist/model)');
const queries = Number(values.queries);
const k = Number(values.k);
const efs = values.ef.split(',').map(Number);
if (!Number.isInteger(queries) || queries < 1 || queries > 10_000) throw new Error(`--queries must be an integer in 1..10000, got ${values.queries}`);
if (!Number.isInteger(k) || k < 1 || efs.some((e) => !Number.isInteger(e) || e < 1)) throw new Error('--k and --ef take positive integers');

function quantile(xs: number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

const work = mkdtempSync(join(tmpdir(), 'fedclr-bench-search-'));
try {
  // 1. fedclr embed, as a user runs it.
  let file = values.embeddings;
  let embed: Record<string, unknown> | null = null;
  if (file === undefined) {
    file = join(work, 'train.npz');
    const started = performance.now();
    const stdout = execFileSync(process.execPath, [FEDCLR, 'embed', '--model', values.model, '--dataset', 'fashion-mnist', '--out', file, '--ann', 'on', '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    embed = { ...(JSON.parse(stdout.trim().split('\n').pop() as string) as Record<string, unknown>), wallMs: Math.round(performance.now() - started) };
  }

  // 2. Query embeddings: the first --queries test images, through the same encoder.
  await initBackend();
  const model = await loadExportedModel(values.model);
  const test = await loadFashionMnist('test', { limit: queries });
  const { features, dim } = await encodeImages(model.spec, model.weights, test.images, queries, { workers: 2 });
  const { embeddings, index } = await openEmbeddings(file);
  if (index.kind !== 'hnsw') throw new Error(`${file} has no HNSW index`);
  const hnsw = index as HnswIndex;
  const { index: exact } = await openEmbeddings(file, { exact: true });
  const query = (q: number): Float32Array => features.subarray(q * dim, (q + 1) * dim);

  // 3. Exact answers, then each ef: recall@k and latency per query.
  const timed = (search: (q: Float32Array) => Neighbours): { answers: Neighbours[]; ms: number[] } => {
    for (let q = 0; q < Math.min(20, queries); q++) search(query(q)); // warm-up
    const answers: Neighbours[] = [];
    const ms: number[] = [];
    for (let q = 0; q < queries; q++) {
      const t = performance.now();
      answers.push(search(query(q)));
      ms.push(performance.now() - t);
    }
    return { answers, ms };
  };
  const truth = timed((q) => exact.search(q, k));
  const sweep = efs.map((ef) => {
    hnsw.ef = ef;
    const run = timed((q) => hnsw.search(q, k));
    return { ef, recallAtK: round(recallAtK(run.answers, truth.answers, k), 4), medianMs: round(quantile(run.ms, 0.5), 4), p95Ms: round(quantile(run.ms, 0.95), 4) };
  });
  const defaultEf = embeddings.meta.ann?.ef as number;
  hnsw.ef = defaultEf;
  const atDefault = timed((q) => hnsw.search(q, k));

  // 4. Encoding one query image (in-process, one engine reused), and a whole fedclr search process.
  const engine = await createStepEngine({ spec: model.spec, augment: null, loss: ntXentPairLoss(), optimizer: { kind: 'adam' }, initialWeights: model.weights, workers: 0, maxBatch: 1 });
  const encodeMs: number[] = [];
  const one = new Float32Array(784);
  for (let q = 0; q < Math.min(200, queries); q++) {
    for (let p = 0; p < 784; p++) one[p] = (test.images[q * 784 + p] as number) / 255;
    const t = performance.now();
    await engine.embed(one, 1, representationNode(model.spec));
    encodeMs.push(performance.now() - t);
  }
  await engine.dispose();
  const png = join(work, 'query.png');
  await sharp(Buffer.from(test.images.subarray(0, 784)), { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(png);
  const cliStarted = performance.now();
  execFileSync(process.execPath, [FEDCLR, 'search', '--model', values.model, '--index', file, '--query', png, '-k', String(k), '--json'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const cliMs = performance.now() - cliStarted;

  const result = {
    bench: 'search',
    indexed: embeddings.meta.count,
    dim,
    queries,
    k,
    embed,
    index: { ...embeddings.meta.ann, file: undefined },
    exact: { medianMs: round(quantile(truth.ms, 0.5), 4), p95Ms: round(quantile(truth.ms, 0.95), 4) },
    hnsw: { ef: defaultEf, recallAtK: round(recallAtK(atDefault.answers, truth.answers, k), 4), medianMs: round(quantile(atDefault.ms, 0.5), 4), p95Ms: round(quantile(atDefault.ms, 0.95), 4) },
    sweep,
    encodeQuery: { medianMs: round(quantile(encodeMs, 0.5)), p95Ms: round(quantile(encodeMs, 0.95)) },
    cliSearchOneQueryMs: Math.round(cliMs),
  };
  console.log(JSON.stringify(result));
} finally {
  rmSync(work, { recursive: true, force: true });
}
