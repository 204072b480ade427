import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encodeIdxUint8, expectIdxShape, isGzip, parseIdx, readIdxFile } from '../src/index.js';

/** Hand-built IDX bytes: header for `type`/`dims`, then `payload` verbatim. */
function idxBytes(type: number, dims: number[], payload: number[]): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + payload.length);
  const view = new DataView(out.buffer);
  out[2] = type;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(payload, 4 + 4 * dims.length);
  return out;
}

describe('parseIdx', () => {
  it('round-trips uint8 data and copies it out of the input', () => {
    const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 7);
    const bytes = encodeIdxUint8([2, 3, 4], data);
    const idx = parseIdx(bytes);
    assert.equal(idx.type, 'uint8');
    assert.deepEqual(idx.dims, [2, 3, 4]);
    assert.deepEqual(idx.data, data);
    assert.equal(idx.data.byteOffset, 0);
    assert.equal(idx.data.buffer.byteLength, data.length, 'owns an exact-size buffer');
  });

  it('decodes the multi-byte types big-endian', () => {
    const i16 = parseIdx(idxBytes(0x0b, [2], [0xff, 0xfe, 0x01, 0x00]));
    assert.deepEqual(Array.from(i16.data), [-2, 256]);
    const i32 = parseIdx(idxBytes(0x0c, [1], [0x00, 0x01, 0x00, 0x02]));
    assert.deepEqual(Array.from(i32.data), [65538]);
    const f32 = parseIdx(idxBytes(0x0d, [1], [0x3f, 0xc0, 0x00, 0x00]));
    assert.deepEqual(Array.from(f32.data), [1.5]);
    const f64 = parseIdx(idxBytes(0x0e, [1], [0xc0, 0x04, 0, 0, 0, 0, 0, 0]));
    assert.deepEqual(Array.from(f64.data), [-2.5]);
    const i8 = parseIdx(idxBytes(0x09, [2], [0xff, 0x05]));
    assert.equal(i8.type, 'int8');
    assert.deepEqual(Array.from(i8.data), [-1, 5]);
  });

  it('rejects a bad magic number, naming the source', () => {
    const bytes = idxBytes(0x08, [1], [7]);
    bytes[0] = 0x1f;
    assert.throws(() => parseIdx(bytes, 'labels.idx'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'FEDCLR_DATA_IDX_BAD_MAGIC');
      assert.match(err.message, /labels\.idx/);
      assert.match(err.message, /0x1f000801/);
      return true;
    });
  });

  it('rejects unknown element types and zero dimensions', () => {
    assert.throws(() => parseIdx(idxBytes(0x0a, [1], [0])), { code: 'FEDCLR_DATA_IDX_UNKNOWN_TYPE' });
    assert.throws(() => parseIdx(idxBytes(0x08, [], [])), { code: 'FEDCLR_DATA_IDX_BAD_SHAPE' });
  });

  it('reports truncation in the header and in the data, with byte counts', () => {
    assert.throws(() => parseIdx(new Uint8Array([0, 0])), { code: 'FEDCLR_DATA_IDX_TRUNCATED' });
    const full = encodeIdxUint8([3, 2, 2], new Uint8Array(12));
    assert.throws(() => parseIdx(full.subarray(0, 10)), { code: 'FEDCLR_DATA_IDX_TRUNCATED' });
    assert.throws(() => parseIdx(full.subarray(0, full.length - 1), 'x.idx'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'FEDCLR_DATA_IDX_TRUNCATED');
      assert.match(err.message, /x\.idx is truncated: its header announces 28 bytes but only 27/);
      return true;
    });
  });

  it('rejects trailing bytes', () => {
    const bytes = encodeIdxUint8([2], new Uint8Array([1, 2]));
    const longer = new Uint8Array(bytes.length + 3);
    longer.set(bytes);
    assert.throws(() => parseIdx(longer), { code: 'FEDCLR_DATA_IDX_TRAILING_DATA' });
  });

  it('expectIdxShape checks type and dimensions, with null as a wildcard', () => {
    const idx = parseIdx(encodeIdxUint8([5, 28, 28], new Uint8Array(5 * 784)));
    expectIdxShape(idx, 'a', 'uint8', [null, 28, 28], 'images');
    assert.throws(() => expectIdxShape(idx, 'a', 'uint8', [null, 28, 27], 'images 28x27'), {
      code: 'FEDCLR_DATA_IDX_BAD_SHAPE',
      message: 'a has shape [5, 28, 28] of uint8, but images 28x27 was expected',
    });
    assert.throws(() => expectIdxShape(idx, 'a', 'int32', [null, 28, 28], 'ints'), { code: 'FEDCLR_DATA_IDX_BAD_SHAPE' });
    assert.throws(() => encodeIdxUint8([2, 2], new Uint8Array(3)), { code: 'FEDCLR_DATA_IDX_BAD_SHAPE' });
  });
});

describe('readIdxFile', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedclr-idx-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads plain and gzip-compressed files (detected by content, not name)', async () => {
    const bytes = encodeIdxUint8([4], new Uint8Array([9, 8, 7, 6]));
    await writeFile(join(dir, 'plain.idx'), bytes);
    await writeFile(join(dir, 'packed.idx'), gzipSync(bytes));
    assert.ok(isGzip(gzipSync(bytes)) && !isGzip(bytes));
    for (const name of ['plain.idx', 'packed.idx']) {
      const idx = await readIdxFile(join(dir, name));
      assert.deepEqual(Array.from(idx.data), [9, 8, 7, 6]);
    }
  });

  it('reports a cut-off gzip stream and a missing file as read failures', async () => {
    const packed = gzipSync(encodeIdxUint8([1000], new Uint8Array(1000).fill(3)));
    await writeFile(join(dir, 'cut.gz'), packed.subarray(0, packed.length - 10));
    await assert.rejects(readIdxFile(join(dir, 'cut.gz')), { code: 'FEDCLR_DATA_IDX_READ_FAILED' });
    await assert.rejects(readIdxFile(join(dir, 'absent.gz')), (err: Error & { code?: string; cause?: unknown }) => {
      assert.equal(err.code, 'FEDCLR_DATA_IDX_READ_FAILED');
      assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOENT');
      return true;
    });
  });

  it('reports a complete gzip stream of truncated IDX data as truncated', async () => {
    const bytes = encodeIdxUint8([10], new Uint8Array(10));
    await writeFile(join(dir, 'short.gz'), gzipSync(bytes.subarray(0, 12)));
    await assert.rejects(readIdxFile(join(dir, 'short.gz')), { code: 'FEDCLR_DATA_IDX_TRUNCATED' });
  });
});
