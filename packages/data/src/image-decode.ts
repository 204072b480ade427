// Decoding one PNG/JPEG with sharp to the model's input size and channel count (HWC bytes).
import sharp from 'sharp';
import type { OutputInfo } from 'sharp';
import { FolderInvalidOptionError, ImageDecodeError } from './errors.js';

/** How an image is fitted to height x width (sharp semantics): crop, letterbox, or stretch. */
export type FitMode = 'cover' | 'contain' | 'fill';
export type ImageFormat = 'png' | 'jpeg';

export interface DecodeOptions {
  readonly height: number;
  readonly width: number;
  /** 1 = grayscale, 3 = RGB (default 3). */
  readonly channels?: 1 | 3;
  /** Default 'cover' (centre crop, no distortion). 'contain' pads with black. */
  readonly fit?: FitMode;
}

export interface ResolvedDecodeOptions {
  readonly height: number;
  readonly width: number;
  readonly channels: 1 | 3;
  readonly fit: FitMode;
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const MAX_SIDE = 16384;

/** Detect PNG or JPEG from the first bytes; null for anything else. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= PNG_MAGIC.length && PNG_MAGIC.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

export function resolveDecodeOptions(options: DecodeOptions): ResolvedDecodeOptions {
  const { height, width, channels = 3, fit = 'cover' } = options;
  for (const [name, v] of [['height', height], ['width', width]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > MAX_SIDE) {
      throw new FolderInvalidOptionError(`${name} must be an integer in 1..${MAX_SIDE}, got ${String(v)}`);
    }
  }
  if (channels !== 1 && channels !== 3) {
    throw new FolderInvalidOptionError(`channels must be 1 (grayscale) or 3 (RGB), got ${String(channels)}`);
  }
  if (fit !== 'cover' && fit !== 'contain' && fit !== 'fill') {
    throw new FolderInvalidOptionError(`fit must be 'cover', 'contain' or 'fill', got ${String(fit)}`);
  }
  return { height, width, channels, fit };
}

/**
 * One-line message for skip lists. libvips appends one line per decoder complaint, often the same
 * ones several times, so lines are de-duplicated. (Its error buffer is shared between threads:
 * under concurrency the detail lines can be missing, so reasons are informative, not stable.)
 */
export function errorMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const lines = [...new Set(text.split('\n').map((l) => l.trim()).filter((l) => l !== ''))];
  return lines.join('; ').replace(/:$/, '');
}

export async function decodeResolved(bytes: Uint8Array, o: ResolvedDecodeOptions): Promise<Uint8Array> {
  let result: { data: Uint8Array; info: OutputInfo };
  try {
    // failOn 'truncated': a cut-off file is corrupt training data, but a harmless libjpeg
    // warning (odd markers) should not cost us the image.
    let pipeline = sharp(bytes, { failOn: 'truncated' })
      .autoOrient() // honour EXIF orientation: phone photos are often stored sideways
      .flatten({ background: '#000000' }) // composite transparency on black, then drop alpha
      .resize({ width: o.width, height: o.height, fit: o.fit, position: 'centre', background: '#000000' });
    pipeline = o.channels === 1 ? pipeline.greyscale() : pipeline.toColourspace('srgb');
    result = await pipeline.removeAlpha().raw({ depth: 'uchar' }).toUint8Array();
  } catch (err) {
    throw new ImageDecodeError((err as Error).message, { cause: err });
  }
  const { data, info } = result;
  const expected = o.height * o.width * o.channels;
  if (info.width !== o.width || info.height !== o.height || info.channels !== o.channels || data.length !== expected) {
    throw new ImageDecodeError(
      `decoder produced ${info.width}x${info.height}x${info.channels} (${data.length} bytes), ` +
        `expected ${o.width}x${o.height}x${o.channels}`,
    );
  }
  return data;
}

/** Decode one PNG/JPEG to height x width x channels bytes (HWC). */
export async function decodeImage(bytes: Uint8Array, options: DecodeOptions): Promise<Uint8Array> {
  const o = resolveDecodeOptions(options);
  if (sniffImageFormat(bytes) === null) throw new ImageDecodeError('content is not PNG or JPEG');
  return decodeResolved(bytes, o);
}
