// Image folders in the commands: fedclr eval --data/--test-data (class mapping, seeded split,
// raw-pixel baseline), the skipped-file report (--skipped-report) and the memory limit (--max-memory).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { main } from '../src/main.js';

async function run(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, (l) => out.push(l), (l) => err.push(l));
  return { code, out, err };
}

const CHANNEL: Record<string, number> = { red: 0, green: 1, blue: 2 };

/** `perClass` solid-colour PNGs per class folder (red, green, blue: mostly that channel; others grey), slightly varied. */
async function colourFolder(dir: string, classes: readonly string[], perClass: number): Promise<void> {
  for (const name of classes) {
    const c = CHANNEL[name];
    await mkdir(join(dir, name), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const rgb = [40 + i * 3, 40 + i * 2, 40 + i];
      if (c !== undefined) rgb[c] = 200 + i;
      const png = await sharp({ create: { width: 12, height: 10, channels: 3, background: { r: rgb[0] as number, g: rgb[1] as number, b: rgb[2] as number } } }).png().toBuffer();
      await writeFile(join(dir, name, `img-${i}.png`), png);
    }
  }
}

describe('fedclr eval --data', () => {
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'fedclr-eval-folders-'));
    await colourFolder(join(root, 'train'), ['blue', 'green', 'red'], 6);
    await colourFolder(join(root, 'test'), ['red', 'green', 'zebra'], 3); // other order; zebra is not a train class
    await writeFile(join(root, 'train', 'red', 'notes.txt'), 'no image');
    await writeFile(join(root, 'train', 'red', 'broken.png'), 'no png');
    await writeFile(join(root, 'train', 'loose.png'), 'outside the classes');
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('maps the test folder by the train folder class names and writes the skipped-file report', async () => {
    const report = join(root, 'skipped.json');
    const { code, out, err } = await run(['eval', '--baseline', 'raw', '--data', join(root, 'train'), '--test-data', join(root, 'test'), '--size', '8', '--k', '3', '--skipped-report', report, '--json']);
    assert.equal(code, 0, err.join('\n'));
    const summary = JSON.parse(out.at(-1) as string) as { classes: string[]; trainCount: number; testCount: number; linearProbe: number; input: unknown; split: string };
    assert.deepEqual(summary.classes, ['blue', 'green', 'red']);
    assert.deepEqual(summary.input, { height: 8, width: 8, channels: 3 });
    assert.equal(summary.trainCount, 18);
    assert.equal(summary.testCount, 6); // zebra's 3 skipped
    assert.equal(summary.linearProbe, 1); // one colour per class: raw pixels separate them
    assert.match(summary.split, /^folder .*test$/);
    assert.ok(err.some((l) => /^skipped 3 files under .*train: 1 not-an-image, 1 corrupt, 1 unlabeled$/.test(l)), err.join('\n'));
    const written = JSON.parse(await readFile(report, 'utf8')) as { command: string; folders: { role: string; images: number; summary: { total: number }; skipped: { path: string; category: string; reason: string }[] }[] };
    assert.equal(written.command, 'eval');
    assert.deepEqual(written.folders.map((f) => [f.role, f.images, f.summary.total]), [['train', 18, 3], ['test', 6, 3]]);
    assert.deepEqual(written.folders[0]?.skipped.map((s) => [s.path, s.category]), [['loose.png', 'unlabeled'], ['red/broken.png', 'corrupt'], ['red/notes.txt', 'not-an-image']]);
    assert.deepEqual(written.folders[1]?.skipped.map((s) => s.path), ['zebra/img-0.png', 'zebra/img-1.png', 'zebra/img-2.png']);
  });

  it('without --test-data holds out a seeded, stratified share of each class', async () => {
    const args = ['eval', '--baseline', 'raw', '--data', join(root, 'train'), '--size', '8', '--k', '3', '--test-fraction', '0.34', '--json'];
    const a = await run(args);
    const b = await run(args);
    assert.equal(a.code, 0, a.err.join('\n'));
    const sa = JSON.parse(a.out.at(-1) as string) as { trainCount: number; testCount: number; split: string };
    assert.deepEqual([sa.trainCount, sa.testCount], [12, 6]); // 2 of each class's 6
    assert.match(sa.split, /^6 images \(34% of each class, split seed 0\) held out of /);
    const untimed = (line: string): unknown => ({ ...(JSON.parse(line) as object), encodeMs: 0, evalMs: 0 });
    assert.deepEqual(untimed(b.out.at(-1) as string), untimed(a.out.at(-1) as string));
  });

  it('refuses a folder above --max-memory before decoding, naming the limit and the flag', async () => {
    const { code, err } = await run(['eval', '--baseline', 'random', '--data', join(root, 'train'), '--size', '64', '--max-memory', '0.1']);
    assert.equal(code, 1);
    assert.match(err.join('\n'), /\[FEDCLR_CLI_MEMORY_LIMIT\] Image folder .*train has 20 candidate images; decoded at 64x64x3 .* take 245760 bytes, above the memory limit of 104857 bytes.*raise the limit with --max-memory MB \(now 0 MB\)/);
  });

  const usage: [string[], RegExp][] = [
    [['eval', '--baseline', 'raw', '--test-data', 'x'], /--test-data goes with --data DIR/],
    [['eval', '--baseline', 'raw', '--size', '32'], /--size goes with --data DIR \(Fashion-MNIST images are 28x28x1\)/],
    [['simulate', '--test-fraction', '0.3'], /--test-fraction goes with --data DIR/],
    [['simulate', '--data', 'x', '--limit', '10'], /--limit goes with --dataset fashion-mnist/],
    [['simulate', '--data', 'x', '--dataset', 'fashion-mnist'], /give --dataset or --data, not both/],
    [['eval', '--baseline', 'raw', '--data', 'x', '--split', 'validation'], /--split goes with --dataset/],
    [['eval', '--baseline', 'raw', '--data', 'x', '--test-data', 'y', '--test-fraction', '0.2'], /give --test-data DIR2 or --test-fraction F, not both/],
    [['eval', '--baseline', 'raw', '--data', 'x', '--test-fraction', '1'], /--test-fraction must be in \(0, 1\)/],
    [['eval', '--baseline', 'pixels'], /--baseline must be raw or random, got 'pixels'/],
  ];
  for (const [argv, pattern] of usage) {
    it(argv.join(' '), async () => {
      const { code, err } = await run(argv);
      assert.equal(code, 2);
      assert.match(err.join('\n'), pattern);
    });
  }

  it('needs two classes', async () => {
    const { code, err } = await run(['eval', '--baseline', 'raw', '--data', join(root, 'train', 'red'), '--size', '8']);
    assert.equal(code, 2);
    assert.match(err.join('\n'), /needs at least 2 class sub-folders/);
  });
});
