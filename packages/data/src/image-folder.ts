// Reader for a folder of PNG/JPEG images (an agent's private data, or a labeled holdout).
// Every file is decoded with sharp to the model's input size and channel count. Files that cannot
// be used are skipped and reported with a reason: one bad photo must not stop an agent.
import type { Dirent } from 'node:fs';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { extname, join, resolve } from 'node:path';
import sharp from 'sharp';
import type { OutputInfo } from 'sharp';
import type { ImageDataset } from './dataset.js';
import {
  FolderInvalidOptionError,
  FolderNotFoundError,
  FolderReadError,
  FolderTooManyClassesError,
  ImageDecodeError,
} from './errors.js';

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

export interface ImageFolderOptions extends DecodeOptions {
  /** Label each image by its first-level sub-folder (class names sorted). Default false. */
  readonly labeled?: boolean;
  /**
   * Fixed class list (implies labeled): index = position. Use it so a holdout folder maps classes
   * exactly like the training folder; images in folders not listed are skipped.
   */
  readonly classNames?: readonly string[];
  /** Images decoded at once; default min(4, available cores). */
  readonly concurrency?: number;
}

export interface SkippedFile {
  /** Path relative to the root folder, '/'-separated. */
  readonly path: string;
  readonly reason: string;
}

export interface FolderDataset extends ImageDataset {
  /** Absolute path of the folder read. */
  readonly root: string;
  /** Relative path of each image, aligned with images and labels; sorted. */
  readonly paths: readonly string[];
  /** Every file or folder that was not used, with why; sorted by path. */
  readonly skipped: readonly SkippedFile[];
}

const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set(['.png', '.jpg', '.jpeg', '.jpe', '.jfif']);
const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const MAX_CLASSES = 256;
const MAX_SIDE = 16384;

/** Detect PNG or JPEG from the first bytes; null for anything else. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= PNG_MAGIC.length && PNG_MAGIC.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return null;
}

interface ResolvedDecodeOptions {
  readonly height: number;
  readonly width: number;
  readonly channels: 1 | 3;
  readonly fit: FitMode;
}

function resolveDecodeOptions(options: DecodeOptions): ResolvedDecodeOptions {
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

async function decodeResolved(bytes: Uint8Array, o: ResolvedDecodeOptions): Promise<Uint8Array> {
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

interface FileEntry {
  readonly rel: string;
  readonly abs: string;
}

interface Listing {
  readonly files: FileEntry[];
  readonly topDirs: string[];
  readonly skipped: SkippedFile[];
}

function byCodeUnits(a: string, b: string): number {
  // Plain code-unit order, not localeCompare: the same on every machine and locale.
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * One-line message for skip lists. libvips appends one line per decoder complaint, often the same
 * ones several times, so lines are de-duplicated. (Its error buffer is shared between threads:
 * under concurrency the detail lines can be missing, so reasons are informative, not stable.)
 */
function errorMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const lines = [...new Set(text.split('\n').map((l) => l.trim()).filter((l) => l !== ''))];
  return lines.join('; ').replace(/:$/, '');
}

/** Recursive listing; hidden entries (dot-names) are ignored, symlinks followed once. */
async function listFolder(root: string): Promise<Listing> {
  const files: FileEntry[] = [];
  const topDirs: string[] = [];
  const skipped: SkippedFile[] = [];
  let rootReal: string;
  try {
    rootReal = await realpath(root);
  } catch (err) {
    throw new FolderReadError(root, errorMessage(err), { cause: err });
  }
  const visited = new Set<string>([rootReal]);
  const stack: { abs: string; rel: string }[] = [{ abs: root, rel: '' }];
  while (stack.length > 0) {
    const dir = stack.pop() as { abs: string; rel: string };
    let entries: Dirent[];
    try {
      entries = await readdir(dir.abs, { withFileTypes: true });
    } catch (err) {
      if (dir.rel === '') throw new FolderReadError(root, errorMessage(err), { cause: err });
      skipped.push({ path: `${dir.rel}/`, reason: `cannot list folder: ${errorMessage(err)}` });
      continue;
    }
    // Sorted, so when one folder is reachable twice (via a symlink) the same path wins everywhere.
    entries.sort((a, b) => byCodeUnits(a.name, b.name));
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue; // .DS_Store, .git, editor files: not data
      const abs = join(dir.abs, entry.name);
      const rel = dir.rel === '' ? entry.name : `${dir.rel}/${entry.name}`;
      let isDir = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        try {
          const target = await stat(abs);
          isDir = target.isDirectory();
          isFile = target.isFile();
        } catch (err) {
          skipped.push({ path: rel, reason: `broken symbolic link: ${errorMessage(err)}` });
          continue;
        }
      }
      if (isDir) {
        let real: string;
        try {
          real = await realpath(abs);
        } catch (err) {
          skipped.push({ path: `${rel}/`, reason: `cannot resolve folder: ${errorMessage(err)}` });
          continue;
        }
        if (visited.has(real)) {
          skipped.push({ path: `${rel}/`, reason: 'folder already visited (symbolic link cycle or duplicate)' });
          continue;
        }
        visited.add(real);
        if (dir.rel === '') topDirs.push(entry.name);
        stack.push({ abs, rel });
      } else if (isFile) {
        files.push({ rel, abs });
      } else {
        skipped.push({ path: rel, reason: 'not a regular file' });
      }
    }
  }
  files.sort((a, b) => byCodeUnits(a.rel, b.rel));
  topDirs.sort(byCodeUnits);
  return { files, topDirs, skipped };
}

type LoadResult = { readonly pixels: Uint8Array } | { readonly reason: string };

async function loadFile(file: FileEntry, o: ResolvedDecodeOptions): Promise<LoadResult> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file.abs);
  } catch (err) {
    return { reason: `cannot read file: ${errorMessage(err)}` };
  }
  const format = sniffImageFormat(bytes);
  if (format === null) {
    const ext = extname(file.abs).toLowerCase();
    if (bytes.length === 0) return { reason: 'empty file' };
    if (IMAGE_EXTENSIONS.has(ext)) return { reason: `corrupt: ${ext} file whose content is not PNG or JPEG` };
    return { reason: 'not a PNG or JPEG image' };
  }
  try {
    return { pixels: await decodeResolved(bytes, o) };
  } catch (err) {
    // Report sharp's own words when it is the cause, without our "Could not decode" prefix.
    const inner = err instanceof Error && err.cause !== undefined ? err.cause : err;
    return { reason: `cannot decode ${format}: ${errorMessage(inner)}` };
  }
}

function resolveClasses(options: ImageFolderOptions, topDirs: readonly string[], root: string): string[] | null {
  if (options.classNames !== undefined) {
    const names = options.classNames;
    if (!Array.isArray(names) || names.some((n) => typeof n !== 'string' || n === '' || n.includes('/'))) {
      throw new FolderInvalidOptionError('classNames must be non-empty folder names without "/"');
    }
    if (new Set(names).size !== names.length) throw new FolderInvalidOptionError('classNames has duplicates');
    if (names.length > MAX_CLASSES) throw new FolderTooManyClassesError(root, names.length);
    return [...names];
  }
  if (options.labeled !== true) return null;
  if (topDirs.length > MAX_CLASSES) throw new FolderTooManyClassesError(root, topDirs.length);
  return [...topDirs];
}

/**
 * Read every PNG/JPEG under `root` (recursively, sorted by path), decoded to the given size and
 * channels. Unusable files land in `skipped`; the call only throws for a missing root folder or
 * invalid options.
 */
export async function readImageFolder(root: string, options: ImageFolderOptions): Promise<FolderDataset> {
  const o = resolveDecodeOptions(options);
  const concurrency = options.concurrency ?? Math.max(1, Math.min(4, availableParallelism()));
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new FolderInvalidOptionError(`concurrency must be an integer >= 1, got ${String(concurrency)}`);
  }
  const rootAbs = resolve(root);
  let rootIsDir = false;
  try {
    rootIsDir = (await stat(rootAbs)).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ENOTDIR') {
      throw new FolderReadError(rootAbs, errorMessage(err), { cause: err });
    }
  }
  if (!rootIsDir) throw new FolderNotFoundError(rootAbs);

  const listing = await listFolder(rootAbs);
  const classNames = resolveClasses(options, listing.topDirs, rootAbs);
  const classIndex = new Map(classNames?.map((name, i) => [name, i]) ?? []);
  const skipped = [...listing.skipped];

  // Decide labels before decoding, so files that would be dropped anyway are never decoded.
  const work: { file: FileEntry; label: number }[] = [];
  for (const file of listing.files) {
    if (classNames === null) {
      work.push({ file, label: 0 });
      continue;
    }
    const slash = file.rel.indexOf('/');
    if (slash < 0) {
      skipped.push({ path: file.rel, reason: 'not inside a class sub-folder (labels come from first-level folders)' });
      continue;
    }
    const cls = classIndex.get(file.rel.slice(0, slash));
    if (cls === undefined) {
      skipped.push({ path: file.rel, reason: `folder "${file.rel.slice(0, slash)}" is not one of classNames` });
      continue;
    }
    work.push({ file, label: cls });
  }

  // A small worker pool: sharp decodes off the main thread, but unbounded parallelism would hold
  // every file in memory at once.
  const results = new Array<LoadResult>(work.length);
  let nextJob = 0;
  const worker = async (): Promise<void> => {
    for (let i = nextJob++; i < work.length; i = nextJob++) {
      results[i] = await loadFile((work[i] as { file: FileEntry }).file, o);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, work.length) }, worker));

  const size = o.height * o.width * o.channels;
  const ok = results.filter((r): r is { pixels: Uint8Array } => 'pixels' in r).length;
  const images = new Uint8Array(ok * size);
  const labels = classNames === null ? null : new Uint8Array(ok);
  const paths: string[] = [];
  results.forEach((r, i) => {
    const job = work[i] as { file: FileEntry; label: number };
    if ('reason' in r) {
      skipped.push({ path: job.file.rel, reason: r.reason });
      return;
    }
    images.set(r.pixels, paths.length * size);
    if (labels !== null) labels[paths.length] = job.label;
    paths.push(job.file.rel);
  });
  skipped.sort((a, b) => byCodeUnits(a.path, b.path));

  return {
    images,
    labels,
    count: paths.length,
    height: o.height,
    width: o.width,
    channels: o.channels,
    classNames: classNames ?? [],
    root: rootAbs,
    paths,
    skipped,
  };
}
