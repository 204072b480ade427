// writeLabeledPngFolder: a labeled dataset written as class sub-folders reads back through
// readImageFolder with the same labels and the same bytes (PNG is lossless), class names made
// safe as folder names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classFolderName, readImageFolder, writeLabeledPngFolder, type LabeledImageDataset } from '../src/index.js';

test('classFolderName: separators become -, the rest of the name stays', () => {
  assert.equal(classFolderName('T-shirt/top'), 'T-shirt-top');
  assert.equal(classFolderName('Ankle boot'), 'Ankle boot');
  assert.equal(classFolderName('..hidden'), 'hidden');
  assert.throws(() => classFolderName('...'), (e: unknown) => (e as { code?: string }).code === 'FEDCLR_DATA_DATASET_INVALID');
});

test('writeLabeledPngFolder writes DIR/<class>/img-I.png; readImageFolder gives back the labels and the pixels', async () => {
  const size = 4;
  const count = 5;
  const images = new Uint8Array(count * size * size);
  for (let i = 0; i < images.length; i++) images[i] = (i * 37) % 256;
  const dataset: LabeledImageDataset = { images, count, height: size, width: size, channels: 1, labels: Uint8Array.from([1, 0, 1, 2, 0]), classNames: ['T-shirt/top', 'Bag', 'Coat'] };
  const dir = await mkdtemp(join(tmpdir(), 'fedclr-labeled-'));
  try {
    await writeLabeledPngFolder(dataset, [0, 1, 2, 4], dir); // image 3 (Coat) left out
    assert.deepEqual((await readdir(dir)).sort(), ['Bag', 'T-shirt-top']);
    assert.deepEqual((await readdir(join(dir, 'Bag'))).sort(), ['img-0.png', 'img-2.png']);
    const back = await readImageFolder(dir, { height: size, width: size, channels: 1, labeled: true });
    assert.deepEqual(back.classNames, ['Bag', 'T-shirt-top']);
    assert.deepEqual(back.paths, ['Bag/img-0.png', 'Bag/img-2.png', 'T-shirt-top/img-1.png', 'T-shirt-top/img-4.png']);
    assert.deepEqual(Array.from(back.labels ?? []), [0, 0, 1, 1]);
    const pixels = (d: { images: Uint8Array }, i: number): number[] => Array.from(d.images.subarray(i * size * size, (i + 1) * size * size));
    [0, 2, 1, 4].forEach((original, k) => assert.deepEqual(pixels(back, k), pixels(dataset, original), `image ${original}`));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
