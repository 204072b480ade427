import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { decodeImage, readImageFolder, sniffImageFormat } from '../src/index.js';
import type { FolderDataset } from '../src/index.js';

type Rgb = { r: number; g: number; b: number };

async function solid(width: number, height: number, colour: Rgb, format: 'png' | 'jpeg', alpha?: number): Promise<Buffer> {
  const channels = alpha === undefined ? 3 : 4;
  const background = alpha === undefined ? colour : { ...colour, alpha };
  const img = sharp({ create: { width, height, channels, background } });
  return format === 'png' ? img.png().toBuffer() : img.jpeg({ quality: 95 }).toBuffer();
}

const RED = { r: 255, g: 0, b: 0 };
const BLUE = { r: 0, g: 0, b: 255 };
const GREY = { r: 100, g: 100, b: 100 };
const GREEN = { r: 0, g: 200, b: 0 };

function pixel(ds: FolderDataset, index: number, y: number, x: number): number[] {
  const start = ((index * ds.height + y) * ds.width + x) * ds.channels;
  return Array.from(ds.images.subarray(start, start + ds.channels));
}

function near(actual: readonly number[], expected: readonly number[], tolerance: number): boolean {
  return actual.length === expected.length && actual.every((v, i) => Math.abs(v - (expected[i] as number)) <= tolerance);
}

describe('readImageFolder', () => {
  let root = '';

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'fedclr-folder-'));
    await mkdir(join(root, 'cats'));
    await mkdir(join(root, 'dogs', 'nested'), { recursive: true });
    await mkdir(join(root, 'empty-class'));
    const jpeg = await solid(16, 12, BLUE, 'jpeg');
    await writeFile(join(root, 'cats', 'a.png'), await solid(20, 10, RED, 'png'));
    await writeFile(join(root, 'cats', 'b.jpg'), jpeg);
    await writeFile(join(root, 'cats', 'no-extension'), await solid(8, 8, GREEN, 'png')); // found by content
    await writeFile(join(root, 'cats', 'readme.md'), '# not an image\n');
    await writeFile(join(root, 'dogs', 'nested', 'c.png'), await solid(8, 8, GREY, 'png'));
    await writeFile(join(root, 'dogs', 'd.jpeg'), await solid(6, 6, RED, 'png', 1)); // PNG named .jpeg
    await writeFile(join(root, 'dogs', 'broken.png'), Buffer.from('definitely not a png'));
    await writeFile(join(root, 'dogs', 'truncated.jpg'), jpeg.subarray(0, Math.floor(jpeg.length / 2)));
    await writeFile(join(root, 'dogs', 'empty.png'), new Uint8Array(0));
    await writeFile(join(root, 'dogs', '.hidden.png'), await solid(4, 4, RED, 'png'));
    await writeFile(join(root, 'root-level.png'), await solid(5, 5, BLUE, 'png'));
    await writeFile(join(root, 'notes.txt'), 'hello');
  });

  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('decodes every PNG/JPEG recursively in sorted order and reports the rest', async () => {
    const ds = await readImageFolder(root, { height: 4, width: 6 });
    assert.deepEqual(ds.paths, ['cats/a.png', 'cats/b.jpg', 'cats/no-extension', 'dogs/d.jpeg', 'dogs/nested/c.png', 'root-level.png']);
    assert.equal(ds.count, 6);
    assert.deepEqual([ds.height, ds.width, ds.channels], [4, 6, 3]);
    assert.equal(ds.images.length, 6 * 4 * 6 * 3);
    assert.equal(ds.labels, null);
    assert.deepEqual(ds.classNames, []);
    assert.equal(ds.root, root);
    assert.deepEqual(
      ds.skipped.map((s) => s.path),
      ['cats/readme.md', 'dogs/broken.png', 'dogs/empty.png', 'dogs/truncated.jpg', 'notes.txt'],
    );
    const reason = (path: string): string => ds.skipped.find((s) => s.path === path)?.reason ?? '';
    assert.match(reason('dogs/broken.png'), /corrupt: \.png file whose content is not PNG or JPEG/);
    // libvips's detail text ("premature end of JPEG image") is not guaranteed under concurrency.
    assert.match(reason('dogs/truncated.jpg'), /^cannot decode jpeg: \S/);
    assert.doesNotMatch(reason('dogs/truncated.jpg'), /\n/);
    assert.equal(reason('dogs/empty.png'), 'empty file');
    assert.equal(reason('notes.txt'), 'not a PNG or JPEG image');
    // Colours survive decoding and resizing (JPEG is lossy, hence the tolerance).
    assert.ok(near(pixel(ds, 0, 2, 3), [255, 0, 0], 2), `red ${pixel(ds, 0, 2, 3).join(',')}`);
    assert.ok(near(pixel(ds, 1, 2, 3), [0, 0, 255], 8), `blue ${pixel(ds, 1, 2, 3).join(',')}`);
    assert.ok(near(pixel(ds, 4, 0, 0), [100, 100, 100], 1));
  });

  it('converts to one grayscale channel', async () => {
    const ds = await readImageFolder(root, { height: 5, width: 5, channels: 1 });
    assert.equal(ds.channels, 1);
    assert.equal(ds.images.length, ds.count * 25);
    const at = (path: string): number => pixel(ds, ds.paths.indexOf(path), 2, 2)[0] as number;
    assert.ok(Math.abs(at('dogs/nested/c.png') - 100) <= 1);
    // Pure red maps to its luminance: libvips weighs in linear light (Y = 0.2126, re-encoded
    // as sRGB = 127); a gamma-space weighting would give 54. Either way, neither 0 nor 255.
    assert.ok(at('cats/a.png') > 40 && at('cats/a.png') < 140, `red luma ${at('cats/a.png')}`);
  });

  it('labels by first-level folder, sorted, and skips images outside class folders', async () => {
    const ds = await readImageFolder(root, { height: 4, width: 4, labeled: true });
    assert.deepEqual(ds.classNames, ['cats', 'dogs', 'empty-class']);
    assert.deepEqual(ds.paths, ['cats/a.png', 'cats/b.jpg', 'cats/no-extension', 'dogs/d.jpeg', 'dogs/nested/c.png']);
    assert.deepEqual(Array.from(ds.labels ?? []), [0, 0, 0, 1, 1]);
    const rootLevel = ds.skipped.find((s) => s.path === 'root-level.png');
    assert.match(rootLevel?.reason ?? '', /not inside a class sub-folder/);
  });

  it('uses a fixed classNames mapping and skips folders outside it', async () => {
    const ds = await readImageFolder(root, { height: 4, width: 4, classNames: ['dogs', 'birds'] });
    assert.deepEqual(ds.classNames, ['dogs', 'birds']);
    assert.deepEqual(ds.paths, ['dogs/d.jpeg', 'dogs/nested/c.png']);
    assert.deepEqual(Array.from(ds.labels ?? []), [0, 0]);
    assert.match(ds.skipped.find((s) => s.path === 'cats/a.png')?.reason ?? '', /"cats" is not one of classNames/);
    await assert.rejects(readImageFolder(root, { height: 4, width: 4, classNames: ['a', 'a'] }), {
      code: 'FEDCLR_DATA_FOLDER_INVALID_OPTION',
    });
  });

  it('is deterministic whatever the concurrency', async () => {
    const one = await readImageFolder(root, { height: 7, width: 3, concurrency: 1 });
    const many = await readImageFolder(root, { height: 7, width: 3, concurrency: 8 });
    assert.deepEqual(many.paths, one.paths);
    assert.deepEqual(many.images, one.images);
    // Same files skipped; the reasons' libvips detail text may differ between runs.
    assert.deepEqual(
      many.skipped.map((s) => s.path),
      one.skipped.map((s) => s.path),
    );
  });

  it('fits by cover (crop), contain (black bars) or fill (stretch)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedclr-fit-'));
    try {
      await writeFile(join(dir, 'wide.png'), await solid(40, 10, GREEN, 'png'));
      const cover = await readImageFolder(dir, { height: 8, width: 8, fit: 'cover' });
      const contain = await readImageFolder(dir, { height: 8, width: 8, fit: 'contain' });
      const fill = await readImageFolder(dir, { height: 8, width: 8, fit: 'fill' });
      assert.ok(near(pixel(cover, 0, 0, 4), [0, 200, 0], 1));
      assert.ok(near(pixel(fill, 0, 0, 4), [0, 200, 0], 1));
      assert.deepEqual(pixel(contain, 0, 0, 4), [0, 0, 0], 'letterbox bar at the top');
      assert.ok(near(pixel(contain, 0, 4, 4), [0, 200, 0], 1), 'image in the middle');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('survives symbolic-link cycles, broken links and unreadable files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedclr-links-'));
    try {
      await mkdir(join(dir, 'a'));
      await writeFile(join(dir, 'a', 'x.png'), await solid(4, 4, RED, 'png'));
      await symlink(dir, join(dir, 'a', 'loop'));
      await symlink(join(dir, 'missing.png'), join(dir, 'dangling.png'));
      await writeFile(join(dir, 'locked.png'), await solid(4, 4, RED, 'png'));
      await chmod(join(dir, 'locked.png'), 0o000);
      const ds = await readImageFolder(dir, { height: 2, width: 2 });
      const reasons = new Map(ds.skipped.map((s) => [s.path, s.reason]));
      assert.match(reasons.get('a/loop/') ?? '', /already visited/);
      assert.match(reasons.get('dangling.png') ?? '', /broken symbolic link/);
      // root can read mode-000 files, so only check the lock where it bites.
      const privileged = process.getuid?.() === 0;
      assert.deepEqual(ds.paths, privileged ? ['a/x.png', 'locked.png'] : ['a/x.png']);
      if (!privileged) assert.match(reasons.get('locked.png') ?? '', /cannot read file/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('returns an empty dataset for a folder without images', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedclr-empty-'));
    try {
      const ds = await readImageFolder(dir, { height: 3, width: 3, labeled: true });
      assert.equal(ds.count, 0);
      assert.equal(ds.images.length, 0);
      assert.deepEqual(ds.classNames, []);
      assert.deepEqual(ds.skipped, []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('throws only for a missing root or invalid options', async () => {
    await assert.rejects(readImageFolder(join(root, 'nope'), { height: 2, width: 2 }), { code: 'FEDCLR_DATA_FOLDER_NOT_FOUND' });
    await assert.rejects(readImageFolder(join(root, 'notes.txt'), { height: 2, width: 2 }), {
      code: 'FEDCLR_DATA_FOLDER_NOT_FOUND',
    });
    const bad = [
      { height: 0, width: 2 },
      { height: 2, width: 2.5 },
      { height: 2, width: 2, channels: 2 as 1 },
      { height: 2, width: 2, fit: 'inside' as 'cover' },
      { height: 2, width: 2, concurrency: 0 },
    ];
    for (const options of bad) {
      await assert.rejects(readImageFolder(root, options), { code: 'FEDCLR_DATA_FOLDER_INVALID_OPTION' });
    }
  });
});

describe('decodeImage and sniffImageFormat', () => {
  it('decode one buffer to HWC bytes', async () => {
    const png = await solid(3, 3, RED, 'png', 0.5);
    assert.equal(sniffImageFormat(png), 'png');
    assert.equal(sniffImageFormat(await solid(3, 3, RED, 'jpeg')), 'jpeg');
    assert.equal(sniffImageFormat(new Uint8Array([1, 2, 3])), null);
    const out = await decodeImage(png, { height: 2, width: 2, channels: 3 });
    assert.equal(out.length, 12);
    // Half-transparent red flattened onto black.
    assert.ok(near(Array.from(out.subarray(0, 3)), [128, 0, 0], 2), Array.from(out.subarray(0, 3)).join(','));
    await assert.rejects(decodeImage(new Uint8Array([1, 2, 3]), { height: 2, width: 2 }), {
      code: 'FEDCLR_DATA_IMAGE_DECODE_FAILED',
    });
  });
});
