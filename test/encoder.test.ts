// The encoder people use (issue 13, items 5 and 6), as processes: `fedclr train` on a labeled PNG
// folder; stock tfjs loadLayersModel of its model.json over HTTP returns the representation and
// equals `fedclr embed`'s embeddings; numpy reads the embeddings file; `fedclr search` (exact and
// HNSW) finds a query image first; `fedclr probe` + `fedclr classify`; bad input gets a stable
// error code and writes nothing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { convnetS, initialState, readEmbeddingsFile, withProjectionHead, type Embeddings } from '@fedclr/contrastive';
import { saveModel } from '@fedclr/tensor';
import { fedclr, labeledPngFolder } from './helpers.js';

/** Runs `fedclr args...` to the end; stdout's last line parsed when `json`. */
async function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; json: () => Record<string, unknown> }> {
  const p = fedclr(args);
  const code = await p.exited;
  return { code, stdout: p.stdout, stderr: p.stderr, json: () => JSON.parse(p.stdout.trim().split('\n').pop() as string) as Record<string, unknown> };
}

/** A directory served over HTTP on loopback, as a browser or tfjs's http loader fetches it. */
function serve(dir: string): Promise<Server> {
  const server = createServer((req, res) => {
    try {
      res.end(readFileSync(join(dir, new URL(req.url ?? '/', 'http://x').pathname)));
    } catch {
      res.statusCode = 404;
      res.end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** A python3 that imports numpy (scripts/setup.sh installs Debian's python3-numpy), or undefined. */
function pythonWithNumpy(): string | undefined {
  return ['/usr/bin/python3', 'python3'].find((cmd) => spawnSync(cmd, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0);
}

describe('encoder: fedclr train -> stock tfjs -> embed -> search -> probe -> classify', () => {
  let dir: string;
  let photos: string;
  let model: string;
  let pixels: Map<string, Uint8Array>;
  let embeddings: Embeddings;
  const npz = (): string => join(dir, 'photos.npz');

  before(async () => {
    await tf.setBackend('cpu');
    dir = mkdtempSync(join(tmpdir(), 'fedclr-e2e-encoder-'));
    photos = join(dir, 'photos');
    model = join(dir, 'model');
    // T-shirt/top, Trouser, Bag: 40 each.
    pixels = await labeledPngFolder(photos, [0, 1, 8], 40);
    const train = await run(['train', '--data', photos, '--size', '28', '--channels', '1', '--widths', '8,16,32', '--steps', '2', '--workers', '1', '--out', model, '--json']);
    assert.equal(train.code, 0, train.stderr);
    const embed = await run(['embed', '--model', model, '--data', photos, '--out', npz(), '--json']);
    assert.equal(embed.code, 0, embed.stderr);
    const summary = embed.json();
    assert.equal(summary['count'], 120);
    assert.equal(summary['dim'], 32);
    assert.equal(summary['ann'], null, 'exact search only below 10,000 images');
    embeddings = await readEmbeddingsFile(npz());
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("stock tfjs-layers loads model.json over HTTP: one output, the representation's width, equal to fedclr embed's embeddings", async () => {
    const server = await serve(model);
    try {
      const { port } = server.address() as AddressInfo;
      const layers = await tfl.loadLayersModel(`http://127.0.0.1:${port}/model.json`);
      assert.equal(layers.outputs.length, 1);
      assert.deepEqual(layers.outputs[0]?.shape, [null, 32], 'the representation (32 wide), not the 128-d projection');
      const batch = new Float32Array(120 * 784);
      embeddings.paths.forEach((p, i) => batch.set(Float32Array.from(pixels.get(p) as Uint8Array, (v) => v / 255), i * 784));
      const x = tf.tensor4d(batch, [120, 28, 28, 1]);
      const y = layers.predict(x) as tf.Tensor;
      const predicted = y.dataSync();
      assert.equal(predicted.length, embeddings.vectors.length);
      for (let i = 0; i < predicted.length; i++) {
        const want = embeddings.vectors[i] as number;
        assert.ok(Math.abs((predicted[i] as number) - want) <= 1e-4 * Math.max(1, Math.abs(want)), `value ${i}: tfjs ${predicted[i]}, fedclr ${want}`);
      }
      tf.dispose([x, y]);
      layers.dispose();
    } finally {
      server.close();
    }
  });

  it('numpy reads the embeddings file: the matrix, the paths and meta', (t) => {
    const python = pythonWithNumpy();
    if (python === undefined) {
      t.skip('no python3 with numpy here (scripts/setup.sh installs python3-numpy)');
      return;
    }
    const script = `import json, sys, numpy as np
z = np.load(sys.argv[1])
X = z['embeddings']
print(json.dumps({'dtype': str(X.dtype), 'shape': list(X.shape), 'row7': X[7].tolist(), 'paths': [str(p) for p in z['paths']], 'meta': json.loads(z['meta'][()])}))`;
    const r = spawnSync(python, ['-c', script, npz()], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const seen = JSON.parse(r.stdout) as { dtype: string; shape: number[]; row7: number[]; paths: string[]; meta: { format: string; dim: number } };
    assert.equal(seen.dtype, 'float32');
    assert.deepEqual(seen.shape, [120, 32]);
    assert.deepEqual(seen.row7, Array.from(embeddings.vectors.subarray(7 * 32, 8 * 32)));
    assert.deepEqual(seen.paths, embeddings.paths);
    assert.equal(seen.meta.format, 'fedclr-embeddings/1');
  });

  it('fedclr search finds the query image itself first: exactly, and through the HNSW index of --ann on', async () => {
    const query = join(photos, embeddings.paths[7] as string);
    const exact = await run(['search', '--model', model, '--index', npz(), '--query', query, '-k', '3', '--json']);
    assert.equal(exact.code, 0, exact.stderr);
    const e = exact.json() as { kind: string; results: { neighbours: { path: string; score: number }[] }[] };
    assert.equal(e.kind, 'exact');
    assert.equal(e.results[0]?.neighbours.length, 3);
    assert.equal(e.results[0]?.neighbours[0]?.path, embeddings.paths[7]);
    assert.ok(Math.abs((e.results[0]?.neighbours[0]?.score as number) - 1) < 1e-4);

    const withIndex = join(dir, 'indexed.npz');
    const embed = await run(['embed', '--model', model, '--data', photos, '--out', withIndex, '--ann', 'on', '--json']);
    assert.equal(embed.code, 0, embed.stderr);
    assert.ok(existsSync(`${withIndex}.hnsw`));
    assert.equal((embed.json()['ann'] as { recallAt10: number }).recallAt10, 1, 'on 120 vectors HNSW finds every neighbour');
    const approximate = await run(['search', '--model', model, '--index', withIndex, query, '--json']);
    assert.equal(approximate.code, 0, approximate.stderr);
    const a = approximate.json() as typeof e;
    assert.equal(a.kind, 'hnsw');
    assert.deepEqual(a.results[0]?.neighbours.slice(0, 3).map((n) => n.path), e.results[0]?.neighbours.map((n) => n.path));
  });

  it('fedclr probe fits a head on the class folders; fedclr classify labels images with probabilities', async () => {
    const head = join(dir, 'head.json');
    const probe = await run(['probe', '--model', model, '--data', photos, '--out', head, '--json']);
    assert.equal(probe.code, 0, probe.stderr);
    const fit = probe.json() as { classes: string[]; holdoutCount: number; holdoutAccuracy: number };
    assert.deepEqual(fit.classes, ['Bag', 'T-shirt-top', 'Trouser']);
    assert.equal(fit.holdoutCount, 24);
    assert.ok(fit.holdoutAccuracy >= 0.8, `holdout accuracy ${fit.holdoutAccuracy}`);
    const saved = JSON.parse(readFileSync(head, 'utf8')) as { format: string; dim: number };
    assert.equal(saved.format, 'fedclr-linear-head/1');
    assert.equal(saved.dim, 32);

    const images = ['Bag/img-0000.png', 'T-shirt-top/img-0000.png', 'Trouser/img-0000.png'].map((p) => join(photos, p));
    const classify = await run(['classify', '--model', model, '--head', head, ...images, '--top', '2', '--json']);
    assert.equal(classify.code, 0, classify.stderr);
    const { results } = classify.json() as { results: { path: string; label: string; probability: number; top: { label: string; probability: number }[] }[] };
    assert.deepEqual(results.map((r) => r.path), images);
    for (const r of results) {
      assert.ok(fit.classes.includes(r.label) && r.probability > 0 && r.probability <= 1);
      assert.equal(r.top.length, 2);
      assert.ok((r.top[0]?.probability as number) >= (r.top[1]?.probability as number));
    }
    const folder = await run(['classify', '--model', model, '--head', head, '--data', photos]);
    assert.equal(folder.code, 0, folder.stderr);
    const lines = folder.stdout.trim().split('\n');
    assert.equal(lines.length, 120);
    const right = lines.filter((l) => l.split('\t')[1] === l.split('\t')[0]?.slice(photos.length + 1).split('/')[0]).length;
    assert.ok(right / 120 >= 0.8, `${right}/120 labeled as their folder`);
  });

  it('bad input gets a clear error with a stable code, and nothing is written', async () => {
    mkdirSync(join(dir, 'empty'));
    writeFileSync(join(dir, 'not-an-image.png'), 'hello');
    // A 32x32 RGB model, and a 28x28 grayscale one whose weights are not the trained model's.
    const rgb = withProjectionHead(convnetS({ height: 32, width: 32, channels: 3, widths: [4, 8, 16] }), 16);
    await saveModel(join(dir, 'rgb'), rgb, initialState(rgb, 1).params);
    const other = withProjectionHead(convnetS({ height: 28, width: 28, channels: 1, widths: [8, 16, 32] }), 32, { hidden: 32 });
    await saveModel(join(dir, 'other'), other, initialState(other, 1).params);
    writeFileSync(join(dir, 'cut.npz'), readFileSync(npz()).subarray(0, 5000));
    // The index a copy of indexed.npz names (indexed.npz.hnsw, beside it), damaged.
    mkdirSync(join(dir, 'damaged'));
    copyFileSync(join(dir, 'indexed.npz'), join(dir, 'damaged', 'indexed.npz'));
    const index = readFileSync(join(dir, 'indexed.npz.hnsw'));
    index[1000] = (index[1000] as number) ^ 0xff;
    writeFileSync(join(dir, 'damaged', 'indexed.npz.hnsw'), index);
    const query = join(photos, embeddings.paths[0] as string);
    const cases: [string[], RegExp][] = [
      [['embed', '--model', model, '--data', join(dir, 'empty'), '--out', join(dir, 'never-1.npz')], /\[FEDCLR_CLI_NO_IMAGES\] No readable PNG or JPEG images under .*empty/],
      [['embed', '--model', join(dir, 'rgb'), '--dataset', 'fashion-mnist', '--out', join(dir, 'never-2.npz')], /\[FEDCLR_CLI_MODEL_INPUT\] The model .*rgb takes 32x32x3 images, but Fashion-MNIST images are 28x28x1/],
      [['search', '--model', model, '--index', join(dir, 'cut.npz'), '--query', query], /\[FEDCLR_SEARCH_EMBEDDINGS_FILE\]/],
      [['search', '--model', model, '--index', join(dir, 'damaged', 'indexed.npz'), '--query', query], /\[FEDCLR_SEARCH_ANN_INDEX\] .*sha256.*--exact/],
      [['search', '--model', join(dir, 'other'), '--index', npz(), '--query', query], /\[FEDCLR_CLI_MODEL_MISMATCH\] .*photos\.npz was made with another encoder/],
      [['search', '--model', model, '--index', npz(), '--query', join(dir, 'not-an-image.png')], /\[FEDCLR_CLI_IMAGE\] Cannot read the image .*not-an-image\.png/],
      [['classify', '--model', join(dir, 'other'), '--head', join(dir, 'head.json'), query], /\[FEDCLR_CLI_MODEL_MISMATCH\] .*head\.json was made with another encoder/],
    ];
    const runs = await Promise.all(cases.map(([args]) => run(args)));
    runs.forEach((r, i) => {
      const [args, message] = cases[i] as [string[], RegExp];
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    });
    assert.ok(!existsSync(join(dir, 'never-1.npz')) && !existsSync(join(dir, 'never-2.npz')));
  });
});
