import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  encodeIdxUint8,
  FASHION_MNIST_CLASS_NAMES,
  FASHION_MNIST_DIR,
  fashionMnistFiles,
  fashionMnistProbeSplits,
  FASHION_MNIST_VALIDATION_SIZE,
  loadFashionMnist,
  toFloat32,
} from '../src/index.js';

const installed = existsSync(join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'));
const skipReal = installed ? false : 'dataset-fashion-mnist is not installed';

function histogram(labels: Uint8Array, classes: number): number[] {
  const h = new Array<number>(classes).fill(0);
  for (const l of labels) h[l] = (h[l] as number) + 1;
  return h;
}

describe('loadFashionMnist on the Debian files', { skip: skipReal }, () => {
  it('reads the train split: 60000 28x28x1 images, 6000 per class', async () => {
    const ds = await loadFashionMnist('train');
    assert.equal(ds.count, 60_000);
    assert.deepEqual([ds.height, ds.width, ds.channels], [28, 28, 1]);
    assert.equal(ds.images.length, 60_000 * 28 * 28);
    assert.equal(ds.labels.length, 60_000);
    assert.deepEqual(ds.classNames, FASHION_MNIST_CLASS_NAMES);
    assert.equal(ds.classNames.length, 10);
    assert.deepEqual(histogram(ds.labels, 10), new Array<number>(10).fill(6000));
    // Real pictures: both black background and white ink are present, and the mean is plausible.
    let sum = 0;
    let max = 0;
    for (let i = 0; i < 784 * 100; i++) {
      const v = ds.images[i] as number;
      sum += v;
      if (v > max) max = v;
    }
    assert.equal(max, 255);
    assert.ok(sum / (784 * 100) > 40 && sum / (784 * 100) < 110, `mean pixel ${sum / (784 * 100)}`);
    // Known first labels of the official train file: Ankle boot, T-shirt/top, T-shirt/top, Dress.
    assert.deepEqual(Array.from(ds.labels.subarray(0, 4)), [9, 0, 0, 3]);
  });

  it('reads the test split (10000, 1000 per class) and honours limit', async () => {
    const ds = await loadFashionMnist('test');
    assert.equal(ds.count, 10_000);
    assert.deepEqual(histogram(ds.labels, 10), new Array<number>(10).fill(1000));
    const small = await loadFashionMnist('test', { limit: 25 });
    assert.equal(small.count, 25);
    assert.equal(small.images.length, 25 * 784);
    assert.deepEqual(small.images, ds.images.subarray(0, 25 * 784));
    assert.deepEqual(small.labels, ds.labels.subarray(0, 25));
    const floats = toFloat32(small.images);
    assert.ok(floats.every((v) => v >= 0 && v <= 1));
  });
});

describe('loadFashionMnist on synthetic files', () => {
  let root = '';
  let n = 0;
  const dirFor = async (name: string): Promise<string> => {
    const dir = join(root, `${name}-${n++}`);
    await mkdir(dir);
    return dir;
  };
  const write = async (dir: string, split: 'train' | 'test', images: Uint8Array, labels: Uint8Array): Promise<void> => {
    const files = fashionMnistFiles(split, dir);
    await writeFile(files.images, gzipSync(images));
    await writeFile(files.labels, gzipSync(labels));
  };
  const imagesIdx = (count: number, h = 28, w = 28): Uint8Array =>
    encodeIdxUint8([count, h, w], Uint8Array.from({ length: count * h * w }, (_, i) => i % 256));
  const labelsIdx = (values: number[]): Uint8Array => encodeIdxUint8([values.length], Uint8Array.from(values));

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'fedclr-fmnist-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('loads a small well-formed split from an overridden directory', async () => {
    const dir = await dirFor('ok');
    await write(dir, 'test', imagesIdx(3), labelsIdx([4, 0, 9]));
    const ds = await loadFashionMnist('test', { dir });
    assert.equal(ds.count, 3);
    assert.deepEqual(Array.from(ds.labels), [4, 0, 9]);
    assert.equal(ds.images[785], 785 % 256);
  });

  it('names the Debian package when the files are missing', async () => {
    await assert.rejects(loadFashionMnist('train', { dir: join(root, 'nowhere') }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'FEDCLR_DATA_FMNIST_NOT_FOUND');
      assert.match(err.message, /apt-get install dataset-fashion-mnist/);
      assert.match(err.message, /nowhere/);
      return true;
    });
    const dir = await dirFor('half');
    await writeFile(fashionMnistFiles('train', dir).images, gzipSync(imagesIdx(1)));
    await assert.rejects(loadFashionMnist('train', { dir }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'FEDCLR_DATA_FMNIST_NOT_FOUND');
      assert.match(err.message, /train-labels-idx1-ubyte\.gz/);
      return true;
    });
  });

  it('rejects a count mismatch between images and labels', async () => {
    const dir = await dirFor('mismatch');
    await write(dir, 'train', imagesIdx(3), labelsIdx([1, 2]));
    await assert.rejects(loadFashionMnist('train', { dir }), {
      code: 'FEDCLR_DATA_FMNIST_MISMATCH',
      message: /holds 3 images but .* holds 2 labels/,
    });
  });

  it('rejects bad magic, truncated data, wrong image size and out-of-range labels', async () => {
    const badMagic = await dirFor('magic');
    const img = imagesIdx(2);
    img[1] = 9;
    await write(badMagic, 'train', img, labelsIdx([0, 1]));
    await assert.rejects(loadFashionMnist('train', { dir: badMagic }), { code: 'FEDCLR_DATA_IDX_BAD_MAGIC' });

    const truncated = await dirFor('trunc');
    await write(truncated, 'train', imagesIdx(2).subarray(0, 16 + 784 + 100), labelsIdx([0, 1]));
    await assert.rejects(loadFashionMnist('train', { dir: truncated }), { code: 'FEDCLR_DATA_IDX_TRUNCATED' });

    const wrongSize = await dirFor('size');
    await write(wrongSize, 'train', imagesIdx(2, 32, 32), labelsIdx([0, 1]));
    await assert.rejects(loadFashionMnist('train', { dir: wrongSize }), { code: 'FEDCLR_DATA_IDX_BAD_SHAPE' });

    const badLabel = await dirFor('label');
    await write(badLabel, 'train', imagesIdx(2), labelsIdx([0, 10]));
    await assert.rejects(loadFashionMnist('train', { dir: badLabel }), {
      code: 'FEDCLR_DATA_FMNIST_BAD_LABEL',
      message: /label 10 at index 1/,
    });
  });

  it('validates its options', async () => {
    await assert.rejects(loadFashionMnist('train', { limit: -1 }), { code: 'FEDCLR_DATA_FMNIST_INVALID_OPTION' });
    await assert.rejects(loadFashionMnist('val' as 'train'), { code: 'FEDCLR_DATA_FMNIST_INVALID_OPTION' });
  });
});

describe('fashionMnistProbeSplits', { skip: skipReal }, () => {
  it('validation: 50k to fit, a seeded 10k part of train to score (same seed, same part; another seed, another); test: train and the test split', async () => {
    const [fit, score] = await fashionMnistProbeSplits('validation', 0);
    assert.equal(score.count, FASHION_MNIST_VALIDATION_SIZE);
    assert.equal(fit.count, 60_000 - FASHION_MNIST_VALIDATION_SIZE);
    const [, again] = await fashionMnistProbeSplits('validation', 0);
    assert.deepEqual(again.labels, score.labels);
    const [, other] = await fashionMnistProbeSplits('validation', 1);
    assert.notDeepEqual(other.labels, score.labels);
    const [train, test] = await fashionMnistProbeSplits('test', 0);
    assert.equal(train.count, 60_000);
    assert.equal(test.count, 10_000);
  });
});
