import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { createRng, decodeImage, formatSkipped, readImageFolder, sniffImageFormat, stratifiedSplit, summarizeSkipped } from '../src/index.js';
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
    assert.deepEqual(
      ds.skipped.map((s) => s.category),
      ['not-an-image', 'corrupt', 'not-an-image', 'corrupt', 'not-an-image'],
    );
    assert.match(reason('dogs/broken.png'), /^\.png file whose content is not PNG or JPEG/);
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

/** A PNG whose header announces width x height pixels, with a few bytes of image data. */
function pngHeaderOnly(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const chunk = (type: string, data: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    let crc = 0xffffffff;
    for (const byte of body) crc = (crcTable[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE((crc ^ 0xffffffff) >>> 0, body.length + 4);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(64))), chunk('IEND', Buffer.alloc(0))]);
}

describe('readImageFolder: the skipped-file report and the limits', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedclr-skips-'));
    await mkdir(join(dir, 'cats'));
    await mkdir(join(dir, 'dogs'));
    const png = await solid(8, 8, RED, 'png');
    const jpeg = await solid(8, 8, BLUE, 'jpeg');
    await writeFile(join(dir, 'cats', 'good.png'), png);
    await writeFile(join(dir, 'cats', 'good.jpg'), jpeg);
    await writeFile(join(dir, 'dogs', 'good.png'), png);
    await writeFile(join(dir, 'cats', 'empty.png'), new Uint8Array(0));
    await writeFile(join(dir, 'cats', 'notes.txt'), 'not an image');
    await writeFile(join(dir, 'cats', 'garbled.jpg'), Buffer.from('JFIF? no'));
    await writeFile(join(dir, 'dogs', 'truncated.jpg'), jpeg.subarray(0, 40));
    await writeFile(join(dir, 'dogs', 'huge.png'), pngHeaderOnly(100_000, 100_000));
    await writeFile(join(dir, 'dogs', 'big.png'), Buffer.concat([png, Buffer.alloc(4096)]));
    await symlink(join(dir, 'missing.png'), join(dir, 'dogs', 'dangling.png'));
    await symlink(join(dir, 'cats'), join(dir, 'dogs', 'cats-again'));
    await writeFile(join(dir, 'loose.png'), png);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lists every skipped file with its category and reason', async () => {
    const ds = await readImageFolder(dir, { height: 4, width: 4, labeled: true, maxFileBytes: 1024 });
    assert.deepEqual(ds.paths, ['cats/good.jpg', 'cats/good.png', 'dogs/good.png']);
    assert.deepEqual(
      ds.skipped.map((s) => [s.path, s.category]),
      [
        ['cats/empty.png', 'not-an-image'],
        ['cats/garbled.jpg', 'corrupt'],
        ['cats/notes.txt', 'not-an-image'],
        ['dogs/big.png', 'too-large'],
        ['dogs/cats-again/', 'duplicate'],
        ['dogs/dangling.png', 'unreadable'],
        ['dogs/huge.png', 'too-large'],
        ['dogs/truncated.jpg', 'corrupt'],
        ['loose.png', 'unlabeled'],
      ],
    );
    for (const s of ds.skipped) assert.ok(s.reason.length > 0 && !s.reason.includes('\n'), `${s.path}: ${s.reason}`);
    assert.match(ds.skipped[3]?.reason ?? '', /above the 1024-byte limit/);
    assert.match(ds.skipped[6]?.reason ?? '', /pixel limit/i);
    const summary = summarizeSkipped(ds.skipped);
    assert.equal(summary.total, 9);
    assert.deepEqual(summary.byCategory, { unreadable: 1, 'not-an-image': 2, corrupt: 2, unsupported: 0, 'too-large': 2, unlabeled: 1, duplicate: 1 });
    const lines = formatSkipped('DIR', ds.skipped, 2);
    assert.equal(lines[0], 'skipped 9 files under DIR: 1 unreadable, 2 not-an-image, 2 corrupt, 2 too-large, 1 unlabeled, 1 duplicate');
    assert.match(lines[1] ?? '', /^ {2}cats\/empty\.png: \[not-an-image\] empty file$/);
    assert.equal(lines[3], '  ... and 7 more');
    assert.deepEqual(formatSkipped('DIR', []), []);
  });

  it('reads only the listed files, and reports listed files that are missing', async () => {
    const ds = await readImageFolder(dir, { height: 4, width: 4, files: ['dogs/good.png', 'cats/good.png', 'cats/gone.png'] });
    assert.deepEqual(ds.paths, ['cats/good.png', 'dogs/good.png']);
    assert.deepEqual(ds.skipped.map((s) => [s.path, s.category]).filter(([p]) => p === 'cats/gone.png'), [['cats/gone.png', 'unreadable']]);
    assert.ok(!ds.skipped.some((s) => s.path === 'cats/notes.txt'), 'files not listed are not considered');
  });

  it('refuses a folder whose decoded images exceed the memory limit, before decoding, naming the limit', async () => {
    // 10 candidate files in an unlabeled read (the dangling link and the second path to cats/ are none).
    await assert.rejects(readImageFolder(dir, { height: 10, width: 10, channels: 3, maxBytes: 2999 }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'FEDCLR_DATA_FOLDER_TOO_LARGE');
      assert.match(err.message, /has 10 candidate images; decoded at 10x10x3 .* take 3000 bytes, above the memory limit of 2999 bytes/);
      return true;
    });
    const fits = await readImageFolder(dir, { height: 2, width: 2, channels: 1, maxBytes: 10 * 4 });
    assert.ok(fits.count > 0);
    await assert.rejects(readImageFolder(dir, { height: 2, width: 2, maxBytes: 0 }), { code: 'FEDCLR_DATA_FOLDER_INVALID_OPTION' });
  });
});

describe('stratifiedSplit', () => {
  it('holds out the fraction of every class, seeded, disjoint and complete', () => {
    const labels = [...Array<number>(10).fill(0), ...Array<number>(20).fill(1), 2, ...Array<number>(3).fill(3)];
    const a = stratifiedSplit(labels, 0.2, createRng(1));
    const b = stratifiedSplit(labels, 0.2, createRng(1));
    assert.deepEqual(a, b);
    assert.deepEqual([...a.train, ...a.test].sort((x, y) => x - y), labels.map((_, i) => i));
    const count = (idx: number[], c: number): number => idx.filter((i) => labels[i] === c).length;
    assert.deepEqual([0, 1, 2, 3].map((c) => count(a.test, c)), [2, 4, 0, 1]); // class 2 (one image) stays in train
    assert.notDeepEqual(stratifiedSplit(labels, 0.2, createRng(2)).test, a.test);
    assert.throws(() => stratifiedSplit(labels, 1, createRng(1)), { code: 'FEDCLR_DATA_SPLIT_INVALID' });
    assert.throws(() => stratifiedSplit([0, 1, 2], 0.5, createRng(1)), { code: 'FEDCLR_DATA_SPLIT_INVALID' });
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
