// fedclr train --labels (issue 13): SupCon on a PNG folder's sub-folder names, triplet label-aware
// or label-free as the log says, and the argument errors of the loss and label flags.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '@fedclr/tensor';
import { main } from '../src/main.js';
import { grayPng } from './png.js';

async function run(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, (l) => out.push(l), (l) => err.push(l));
  return { code, out, err };
}

/** A tiny labelled folder: stripes/ and dots/, 6 images of 16 px each. */
function classFolders(root: string): string {
  const data = join(root, 'photos');
  for (const [name, pixel] of [
    ['stripes', (i: number) => (x: number, y: number) => (((x + i) >> 1) + y) % 2 === 0 ? 220 : 30],
    ['dots', (i: number) => (x: number, y: number) => ((x * y + i) % 5 === 0 ? 250 : 10)],
  ] as const) {
    mkdirSync(join(data, name), { recursive: true });
    for (let i = 0; i < 6; i++) writeFileSync(join(data, name, `img-${i}.png`), grayPng(16, 16, pixel(i)));
  }
  return data;
}

const SMALL = ['--size', '16', '--channels', '1', '--widths', '4,8,8', '--batch', '8', '--steps', '2', '--workers', '0', '--json'];

describe('fedclr train --labels', () => {
  let dir: string;
  let data: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedclr-labels-'));
    data = classFolders(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('--loss supcon --data DIR --labels folders trains on the sub-folder names and writes a model', async () => {
    const out = join(dir, 'supcon');
    const r = await run(['train', '--data', data, '--labels', 'folders', '--loss', 'supcon', '--out', out, ...SMALL]);
    assert.equal(r.code, 0, r.err.join('\n'));
    const summary = JSON.parse(r.out.join('')) as { steps: number; labels: string; recipe: { loss: string; temperature: number }; epochLosses: number[] };
    assert.equal(summary.steps, 2);
    assert.equal(summary.labels, 'folders');
    assert.deepEqual([summary.recipe.loss, summary.recipe.temperature], ['supcon', 0.1]);
    assert.match(r.err.join('\n'), /loss supcon \(temperature 0\.1\), label-aware: positives are the rows of the anchor's class \(labels: sub-folder names\)/);
    const model = await loadModel(out);
    assert.ok(model.weights.every((w) => Number.isFinite(w)));
  });

  it('triplet says in the log whether it trains label-aware or label-free', async () => {
    const aware = await run(['train', '--data', data, '--labels', 'folders', '--loss', 'triplet', '--out', join(dir, 'aware'), ...SMALL]);
    assert.equal(aware.code, 0, aware.err.join('\n'));
    assert.match(aware.err.join('\n'), /loss triplet \(margin 0\.2, semi-hard mining\), label-aware/);
    const free = await run(['train', '--data', data, '--loss', 'triplet', '--mining', 'hard', '--out', join(dir, 'free'), ...SMALL]);
    assert.equal(free.code, 0, free.err.join('\n'));
    assert.match(free.err.join('\n'), /loss triplet \(margin 0\.2, hard mining\), label-free: the positive is the other view of the anchor's image/);
  });

  it('refuses supcon without labels, labels for a label-free loss, the wrong label source, and one class', async () => {
    const cases: [string[], RegExp][] = [
      [['train', '--data', data, '--loss', 'supcon', ...SMALL], /--loss supcon needs class labels: give --labels folders/],
      [['train', '--data', data, '--labels', 'folders', ...SMALL], /--labels: --loss ntxent is label-free and takes no labels/],
      [['train', '--data', data, '--labels', 'dataset', '--loss', 'supcon', ...SMALL], /--labels dataset takes the classes of --dataset; with --data DIR give --labels folders/],
      [['train', '--data', data, '--labels', 'names', '--loss', 'supcon', ...SMALL], /--labels must be one of folders, dataset, got 'names'/],
      [['train', '--data', data, '--labels', 'folders', '--loss', 'margin', '--local-views', '2', ...SMALL], /--local-views needs --loss ntxent \(--loss margin takes two views per image\)/],
    ];
    for (const [argv, pattern] of cases) {
      const r = await run(argv);
      assert.notEqual(r.code, 0, argv.join(' '));
      assert.match(r.err.join('\n'), pattern);
    }
    const one = join(dir, 'one');
    mkdirSync(join(one, 'only'), { recursive: true });
    for (let i = 0; i < 4; i++) writeFileSync(join(one, 'only', `img-${i}.png`), grayPng(16, 16, (x) => (x * (i + 1)) % 256));
    const r = await run(['train', '--data', one, '--labels', 'folders', '--loss', 'supcon', ...SMALL]);
    assert.equal(r.code, 2);
    assert.match(r.err.join('\n'), /has 1 class with images; label-aware training needs at least 2/);
  });
});
