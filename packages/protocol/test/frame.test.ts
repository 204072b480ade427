import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  FRAME_HEADER_BYTES,
  assertFinite,
  canonicalManifest,
  computeModelHash,
  decodeFrame,
  diffManifests,
  encodeFrame,
  findNonFinite,
  isModelHash,
  readFrameHeader,
  type Tensor,
  type TensorSpec,
} from '../src/index.js';
import { assertCode, sampleManifest, sampleTensors } from './helpers.js';

/** Builds a frame by hand (to forge malformed ones): header fields default to consistent values. */
function rawFrame(o: {
  manifest: string;
  data: Uint8Array;
  magic?: string;
  version?: number;
  flags?: number;
  total?: number;
  hash?: Uint8Array;
}): Buffer {
  const m = Buffer.from(o.manifest, 'utf8');
  const dataOffset = Math.ceil((64 + m.length) / 64) * 64;
  const total = dataOffset + o.data.length;
  const out = Buffer.alloc(total);
  out.write(o.magic ?? 'FCLR', 0, 'latin1');
  out.writeUInt16LE(o.version ?? 1, 4);
  out.writeUInt16LE(o.flags ?? 0, 6);
  out.writeBigUInt64LE(BigInt(o.total ?? total), 8);
  out.writeUInt32LE(m.length, 16);
  if (o.hash) out.set(o.hash, 24);
  m.copy(out, 64);
  out.set(o.data, dataOffset);
  return out;
}

const floats = (...xs: number[]) => new Uint8Array(Float32Array.from(xs).buffer);

describe('frame encode/decode', () => {
  it('round-trips mixed dtypes, scalars and names', () => {
    const tensors = sampleTensors();
    const frame = encodeFrame(tensors);
    assert.equal(frame.byteOffset % 4, 0);
    const d = decodeFrame(frame);
    assert.equal(d.formatVersion, 1);
    assert.equal(d.byteLength, frame.length);
    assert.equal(d.dataOffset % 64, 0);
    assert.deepEqual(d.manifest, sampleManifest());
    assert.equal(d.tensors.length, tensors.length);
    for (let i = 0; i < tensors.length; i++) {
      const a = tensors[i] as Tensor;
      const b = d.tensors[i] as Tensor;
      assert.equal(b.name, a.name);
      assert.deepEqual(b.shape, a.shape);
      assert.equal(b.data.constructor, a.data.constructor);
      assert.deepEqual(Array.from(b.data), Array.from(a.data));
    }
    assert.equal(d.hash, computeModelHash(tensors));
    assert.ok(isModelHash(d.hash));
  });

  it('decodes to zero-copy views of an aligned buffer, and copies once when asked or unaligned', () => {
    const frame = encodeFrame(sampleTensors());
    const views = decodeFrame(frame);
    assert.equal(views.tensors[0]?.data.buffer, frame.buffer);
    const copied = decodeFrame(frame, { copy: true });
    assert.notEqual(copied.tensors[0]?.data.buffer, frame.buffer);
    // an attachment sliced at an odd offset out of a socket read buffer
    const pool = Buffer.alloc(frame.length + 1);
    frame.copy(pool, 1);
    const odd = pool.subarray(1);
    const d = decodeFrame(odd);
    assert.notEqual(d.tensors[0]?.data.buffer, pool.buffer);
    assert.deepEqual(Array.from(d.tensors[1]?.data ?? []), Array.from(sampleTensors()[1]?.data ?? []));
  });

  it('encodes a flat byte run (or typed array) with a manifest to the same bytes', () => {
    const tensors = sampleTensors().filter((t) => t.dtype === 'float32');
    const manifest = tensors.map(({ name, shape, dtype }) => ({ name, shape, dtype, offset: 0 }));
    const flat = new Float32Array(tensors.reduce((n, t) => n + t.data.length, 0));
    let off = 0;
    for (const t of tensors) {
      flat.set(t.data as Float32Array, off);
      off += t.data.length;
    }
    const a = encodeFrame(tensors);
    assert.deepEqual(encodeFrame({ manifest, data: flat }), a);
    assert.deepEqual(encodeFrame({ manifest, data: new Uint8Array(flat.buffer) }), a);
    assert.equal(computeModelHash({ manifest, data: flat }), computeModelHash(tensors));
  });

  it('handles 1M+ float32 with one copy each way', () => {
    const n = 1_500_000;
    const w = new Float32Array(n);
    for (let i = 0; i < n; i += 997) w[i] = i * 1e-6;
    const tensors: Tensor[] = [
      { name: 'big/kernel', shape: [1500, 1000], dtype: 'float32', data: w },
      { name: 'big/bias', shape: [1000], dtype: 'float32', data: new Float32Array(1000) },
    ];
    const t0 = performance.now();
    const frame = encodeFrame(tensors);
    const t1 = performance.now();
    const d = decodeFrame(frame, { expected: tensors, checkFinite: true });
    const t2 = performance.now();
    assert.equal(frame.length, d.dataOffset + (n + 1000) * 4);
    assert.equal(d.dataOffset % 64, 0);
    assert.equal(d.tensors[0]?.data.buffer, frame.buffer); // zero copy on decode
    assert.equal(d.tensors[0]?.data[997 * 3], w[997 * 3]);
    // generous bounds: sha256 of 6 MB plus a memcpy; catches accidental per-element JS work
    assert.ok(t1 - t0 < 1500, `encode took ${t1 - t0} ms`);
    assert.ok(t2 - t1 < 1500, `decode took ${t2 - t1} ms`);
  });

  it('rejects encoder input that does not match its manifest', () => {
    assertCode(
      () => encodeFrame([{ name: 'w', shape: [2, 3], dtype: 'float32', data: new Float32Array(5) }]),
      'FEDCLR_PROTO_FRAME_BAD_INPUT',
      /'w' has 5 elements but shape \[2,3\] needs 6/,
    );
    assertCode(
      () => encodeFrame([{ name: 'w', shape: [2], dtype: 'float32', data: new Int32Array(2) }]),
      'FEDCLR_PROTO_FRAME_BAD_INPUT',
      /needs a Float32Array; got Int32Array/,
    );
    assertCode(
      () => encodeFrame({ manifest: sampleManifest(), data: new Float32Array(1) }),
      'FEDCLR_PROTO_FRAME_BAD_INPUT',
      /tensor 'step' is int32/,
    );
    assertCode(
      () => encodeFrame([{ name: 'w', shape: [0, 3], dtype: 'float32', data: new Float32Array(0) }]),
      'FEDCLR_PROTO_FRAME_BAD_INPUT',
      /positive integers/,
    );
    assertCode(
      () => encodeFrame([{ name: 'w', shape: [4096], dtype: 'float32', data: new Float32Array(4096) }], { limits: { maxFrameBytes: 4096 } }),
      'FEDCLR_PROTO_FRAME_TOO_LARGE',
    );
  });
});

describe('frame decode rejections', () => {
  const good = () => encodeFrame(sampleTensors());

  it('bad magic', () => {
    const f = good();
    f.write('JUNK', 0, 'latin1');
    assertCode(() => decodeFrame(f), 'FEDCLR_PROTO_FRAME_BAD_MAGIC', /got 4a554e4b/);
    assertCode(() => decodeFrame(Buffer.from('{"type":"json"}')), 'FEDCLR_PROTO_FRAME_BAD_MAGIC');
  });

  it('truncated frames', () => {
    const f = good();
    assertCode(() => decodeFrame(f.subarray(0, 2)), 'FEDCLR_PROTO_FRAME_TRUNCATED', /the magic needs 4 bytes but only 2/);
    assertCode(() => decodeFrame(f.subarray(0, 40)), 'FEDCLR_PROTO_FRAME_TRUNCATED', /the header needs 64/);
    assertCode(() => decodeFrame(f.subarray(0, f.length - 1)), 'FEDCLR_PROTO_FRAME_TRUNCATED', new RegExp(`needs ${f.length} bytes`));
  });

  it('trailing bytes', () => {
    assertCode(() => decodeFrame(Buffer.concat([good(), Buffer.alloc(4)])), 'FEDCLR_PROTO_FRAME_LENGTH_MISMATCH', /4 trailing bytes/);
  });

  it('manifest vs byte count mismatch', () => {
    const manifest = JSON.stringify([{ name: 'w', shape: [3], dtype: 'float32' }]);
    assertCode(
      () => decodeFrame(rawFrame({ manifest, data: floats(1, 2) })),
      'FEDCLR_PROTO_FRAME_LENGTH_MISMATCH',
      /1 tensors totalling 12 bytes but the frame carries 8 data bytes/,
    );
    assertCode(() => decodeFrame(rawFrame({ manifest, data: floats(1, 2, 3, 4) })), 'FEDCLR_PROTO_FRAME_LENGTH_MISMATCH');
  });

  it('header fields', () => {
    const manifest = JSON.stringify([{ name: 'w', shape: [1], dtype: 'float32' }]);
    assertCode(() => decodeFrame(rawFrame({ manifest, data: floats(1), version: 2 })), 'FEDCLR_PROTO_FRAME_UNSUPPORTED_VERSION', /version 2/);
    assertCode(() => decodeFrame(rawFrame({ manifest, data: floats(1), flags: 1 })), 'FEDCLR_PROTO_FRAME_BAD_HEADER', /flags/);
    assertCode(() => decodeFrame(rawFrame({ manifest, data: floats(1), total: 2 ** 40 })), 'FEDCLR_PROTO_FRAME_TOO_LARGE', /declared in header/);
    const padded = rawFrame({ manifest, data: floats(1) });
    padded[64 + Buffer.byteLength(manifest)] = 1;
    assertCode(() => decodeFrame(padded), 'FEDCLR_PROTO_FRAME_BAD_HEADER', /padding byte/);
  });

  it('malformed manifests', () => {
    const bad = (manifest: string, data = floats(1)) => () => decodeFrame(rawFrame({ manifest, data }));
    assertCode(bad('{not json'), 'FEDCLR_PROTO_FRAME_BAD_MANIFEST', /not UTF-8 JSON/);
    assertCode(bad('{"w":1}'), 'FEDCLR_PROTO_FRAME_BAD_MANIFEST', /JSON array/);
    assertCode(bad('[{"name":"w","shape":[1],"dtype":"float64"}]'), 'FEDCLR_PROTO_FRAME_BAD_MANIFEST', /'w': dtype must be one of float32, int32, uint32; got "float64"/);
    assertCode(bad('[{"name":"w","shape":[-1],"dtype":"float32"}]'), 'FEDCLR_PROTO_FRAME_BAD_MANIFEST', /positive integers/);
    assertCode(bad('[{"name":"w","shape":[0.5],"dtype":"float32"}]'), 'FEDCLR_PROTO_FRAME_BAD_MANIFEST', /positive integers/);
    assertCode(bad('[{"name":"w","shape":"1","dtype":"float32"}]'), 'FEDCLR_PROTO_FRAME_BAD_MANIFEST', /shape must be an array/);
    assertCode(bad('[{"name":"w","shape":[1],"dtype":"float32","offset":0}]'), 'FEDCLR_PROTO_FRAME_BAD_MANIFEST', /unknown field 'offset'/);
    assertCode(bad('[{"name":"","shape":[1],"dtype":"float32"}]'), 'FEDCLR_PROTO_FRAME_BAD_MANIFEST', /name/);
    assertCode(
      bad('[{"name":"w","shape":[1],"dtype":"float32"},{"name":"w","shape":[1],"dtype":"float32"}]', floats(1, 2)),
      'FEDCLR_PROTO_FRAME_BAD_MANIFEST',
      /duplicate tensor name 'w'/,
    );
    assertCode(bad('[{"name":"w","shape":[1,1,1,1,1,1,1,1,1],"dtype":"float32"}]'), 'FEDCLR_PROTO_FRAME_BAD_MANIFEST', /rank 9 exceeds maxRank 8/);
  });

  it('limits: tensor count, manifest size, element count', () => {
    const f = good();
    assertCode(() => decodeFrame(f, { limits: { maxTensors: 2 } }), 'FEDCLR_PROTO_FRAME_TOO_LARGE', /tensor count/);
    assertCode(() => decodeFrame(f, { limits: { maxManifestBytes: 16 } }), 'FEDCLR_PROTO_FRAME_TOO_LARGE', /manifest/);
    assertCode(() => decodeFrame(f, { limits: { maxFrameBytes: 256 } }), 'FEDCLR_PROTO_FRAME_TOO_LARGE');
    const huge = rawFrame({ manifest: JSON.stringify([{ name: 'w', shape: [2 ** 31 - 1, 2 ** 31 - 1], dtype: 'float32' }]), data: floats(1) });
    assertCode(() => decodeFrame(huge), 'FEDCLR_PROTO_FRAME_TOO_LARGE', /tensor data/);
  });

  it('rejects a non-Uint8Array', () => {
    assertCode(() => decodeFrame([1, 2, 3] as unknown as Uint8Array), 'FEDCLR_PROTO_FRAME_BAD_HEADER', /Uint8Array/);
  });
});

describe('expected manifest', () => {
  const frame = encodeFrame(sampleTensors());
  const expected = sampleManifest();
  const withEntry = (i: number, patch: Partial<TensorSpec>) => expected.map((e, j) => (j === i ? { ...e, ...patch } : e));

  it('accepts the exact manifest', () => {
    assert.equal(decodeFrame(frame, { expected }).tensors.length, 4);
  });
  it('never reshapes: same element count, other shape, is rejected', () => {
    const swapped = encodeFrame([{ name: 'w', shape: [2, 3], dtype: 'float32', data: new Float32Array(6) }]);
    assertCode(
      () => decodeFrame(swapped, { expected: [{ name: 'w', shape: [3, 2], dtype: 'float32' }] }),
      'FEDCLR_PROTO_FRAME_MANIFEST_MISMATCH',
      /tensor #0 differs in shape: expected 'w' \[3,2\] float32, got 'w' \[2,3\] float32/,
    );
  });
  it('reports the first mismatch: name, dtype, missing, extra', () => {
    assertCode(() => decodeFrame(frame, { expected: withEntry(1, { name: 'conv1/b' }) }), 'FEDCLR_PROTO_FRAME_MANIFEST_MISMATCH', /#1 differs in name: expected 'conv1\/b'/);
    assertCode(() => decodeFrame(frame, { expected: withEntry(3, { dtype: 'uint32' }) }), 'FEDCLR_PROTO_FRAME_MANIFEST_MISMATCH', /#3 differs in dtype/);
    assertCode(
      () => decodeFrame(frame, { expected: [...expected, { name: 'head/w', shape: [4, 2], dtype: 'float32' }] }),
      'FEDCLR_PROTO_FRAME_MANIFEST_MISMATCH',
      /expected 5 tensors, got 4; first missing: 'head\/w' \[4,2\] float32/,
    );
    assertCode(() => decodeFrame(frame, { expected: expected.slice(0, 2) }), 'FEDCLR_PROTO_FRAME_MANIFEST_MISMATCH', /first extra: 'scale' \[\] float32/);
    assert.equal(diffManifests(expected, expected), undefined);
  });
});

describe('NaN / Infinity', () => {
  it('findNonFinite returns the first bad index', () => {
    const a = new Float32Array(1000).fill(1);
    assert.equal(findNonFinite(a), -1);
    a[500] = Infinity;
    a[700] = NaN;
    assert.equal(findNonFinite(a), 500);
    assert.equal(findNonFinite(Float32Array.of(-Infinity)), 0);
    assert.equal(findNonFinite(Float32Array.of(-0, 3.4e38, -3.4e38, 1e-45, 1e-40)), -1);
    assert.equal(findNonFinite(new Float32Array(new ArrayBuffer(16), 4, 2).fill(NaN)), 0);
  });
  it('decode rejects non-finite floats when asked, naming tensor and index', () => {
    const t = sampleTensors();
    (t[0]?.data as Float32Array)[7] = NaN;
    const frame = encodeFrame(t);
    assert.equal(decodeFrame(frame).tensors.length, 4); // off by default
    assertCode(() => decodeFrame(frame, { checkFinite: true }), 'FEDCLR_PROTO_FRAME_NON_FINITE', /'conv1\/kernel' .* flat index 7 \(NaN\)/);
    const inf = sampleTensors();
    (inf[2]?.data as Float32Array)[0] = -Infinity;
    assertCode(() => decodeFrame(encodeFrame(inf), { checkFinite: true }), 'FEDCLR_PROTO_FRAME_NON_FINITE', /'scale'.*-Infinity/);
  });
  it('ignores integer tensors (their bit patterns are not floats)', () => {
    assert.doesNotThrow(() => assertFinite([{ name: 'u', shape: [1], dtype: 'uint32', data: Uint32Array.of(0x7fc00000) }]));
  });
});

describe('hashes', () => {
  it('detects a corrupted data byte, and can skip verification', () => {
    const f = encodeFrame(sampleTensors());
    f[f.length - 1] = (f[f.length - 1] as number) ^ 1;
    assertCode(() => decodeFrame(f), 'FEDCLR_PROTO_HASH_MISMATCH', /frame content/);
    assert.equal(decodeFrame(f, { verifyHash: false }).tensors.length, 4);
    assert.equal(readFrameHeader(f).manifest.length, 4);
  });
  it('detects a corrupted manifest byte that keeps the manifest valid', () => {
    const f = encodeFrame([{ name: 'wa', shape: [1], dtype: 'float32', data: Float32Array.of(1) }]);
    f[f.indexOf('wa', FRAME_HEADER_BYTES) + 1] = 'b'.charCodeAt(0);
    assert.equal(readFrameHeader(f).manifest[0]?.name, 'wb');
    assertCode(() => decodeFrame(f), 'FEDCLR_PROTO_HASH_MISMATCH');
  });
  it('checks an expected model version', () => {
    const f = encodeFrame(sampleTensors());
    assertCode(() => decodeFrame(f, { expectedHash: 'a'.repeat(64) }), 'FEDCLR_PROTO_HASH_MISMATCH', /model version/);
    assert.equal(decodeFrame(f, { expectedHash: computeModelHash(sampleTensors()) }).tensors.length, 4);
  });
  it('is stable: matches the documented construction and a pinned value', () => {
    const tensors: Tensor[] = [
      { name: 'a', shape: [2], dtype: 'float32', data: Float32Array.of(1, 2) },
      { name: 'b', shape: [], dtype: 'int32', data: Int32Array.of(-1) },
    ];
    const manifest = '[{"name":"a","shape":[2],"dtype":"float32"},{"name":"b","shape":[],"dtype":"int32"}]';
    assert.equal(canonicalManifest(tensors), manifest);
    const bytes = Buffer.from('0000803f00000040ffffffff', 'hex'); // 1.0f, 2.0f, -1 little-endian
    const spec = createHash('sha256').update('fedclr-model-v1\0').update(manifest).update('\0').update(bytes).digest('hex');
    assert.equal(computeModelHash(tensors), spec);
    assert.equal(spec, PINNED);
    assert.equal(readFrameHeader(encodeFrame(tensors)).hash, PINNED);
  });
  it('depends on names, shapes and values, not on object layout', () => {
    const base: Tensor[] = [{ name: 'w', shape: [2, 3], dtype: 'float32', data: Float32Array.of(1, 2, 3, 4, 5, 6) }];
    const h = computeModelHash(base);
    const reordered = [{ data: Float32Array.of(1, 2, 3, 4, 5, 6), dtype: 'float32', shape: [2, 3], name: 'w' }] as Tensor[];
    assert.equal(computeModelHash(reordered), h);
    const offsetView = new Float32Array(new Float32Array([9, 1, 2, 3, 4, 5, 6]).buffer, 4, 6);
    assert.equal(computeModelHash([{ ...base[0], data: offsetView } as Tensor]), h);
    assert.notEqual(computeModelHash([{ ...base[0], shape: [3, 2] } as Tensor]), h);
    assert.notEqual(computeModelHash([{ ...base[0], name: 'v' } as Tensor]), h);
    assert.notEqual(computeModelHash([{ ...base[0], data: Float32Array.of(1, 2, 3, 4, 5, 7) } as Tensor]), h);
  });
});

const PINNED = 'f019110eb50f33e7084248bc9121a97560c7af6306854a4723a1ee44eb1b3c88';
