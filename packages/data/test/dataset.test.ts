import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { errors, imageSize, imageView, subsetDataset, toFloat32 } from '../src/index.js';
import type { ImageDataset, LabeledImageDataset } from '../src/index.js';

const ds: LabeledImageDataset = {
  images: Uint8Array.from({ length: 4 * 2 * 2 * 3 }, (_, i) => i),
  labels: Uint8Array.from([3, 1, 4, 1]),
  count: 4,
  height: 2,
  width: 2,
  channels: 3,
  classNames: ['a', 'b', 'c', 'd', 'e'],
};

describe('dataset helpers', () => {
  it('toFloat32 scales bytes to [0, 1] and can reuse a buffer', () => {
    const f = toFloat32(Uint8Array.from([0, 51, 255]));
    assert.deepEqual(Array.from(f), [0, Math.fround(51 / 255), 1]);
    const out = new Float32Array(3);
    assert.equal(toFloat32(Uint8Array.from([255, 0, 255]), out), out);
    assert.deepEqual(Array.from(out), [1, 0, 1]);
    assert.throws(() => toFloat32(new Uint8Array(2), out), { code: 'FEDCLR_DATA_DATASET_INVALID' });
  });

  it('imageView returns one image without copying', () => {
    assert.equal(imageSize(ds), 12);
    const v = imageView(ds, 2);
    assert.deepEqual(Array.from(v), Array.from({ length: 12 }, (_, i) => 24 + i));
    assert.equal(v.buffer, ds.images.buffer);
    assert.throws(() => imageView(ds, 4), { code: 'FEDCLR_DATA_DATASET_INVALID' });
  });

  it('subsetDataset copies the chosen examples in order, with labels', () => {
    const sub = subsetDataset(ds, [3, 0, 3]);
    assert.equal(sub.count, 3);
    assert.deepEqual(Array.from(sub.labels), [1, 3, 1]);
    assert.deepEqual(Array.from(sub.images.subarray(0, 12)), Array.from(imageView(ds, 3)));
    assert.deepEqual(Array.from(sub.images.subarray(12, 24)), Array.from(imageView(ds, 0)));
    assert.notEqual(sub.images.buffer, ds.images.buffer);
    const unlabeled: ImageDataset = { ...ds, labels: null, classNames: [] };
    assert.equal(subsetDataset(unlabeled, [1]).labels, null);
    assert.throws(() => subsetDataset(ds, [0, 4]), { code: 'FEDCLR_DATA_DATASET_INVALID' });
  });
});

describe('error catalog', () => {
  it('has unique FEDCLR_DATA_* codes and HTTP-style status codes', () => {
    const codes = (Object.values(errors) as unknown[])
      .filter((v) => typeof v === 'function')
      .map((Ctor) => {
        const err = new (Ctor as unknown as new () => Error & { code: string; statusCode?: number })();
        assert.ok(err instanceof Error);
        assert.ok(err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 600, err.code);
        return err.code;
      });
    assert.ok(codes.length >= 20);
    assert.ok(codes.every((c) => /^FEDCLR_DATA_[A-Z]+_[A-Z_]+$/.test(c)), codes.join(' '));
    assert.equal(new Set(codes).size, codes.length);
  });
});
