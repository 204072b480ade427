// Reader for a folder of PNG/JPEG images (an agent's private data, or a labeled holdout).
// Every file is decoded with sharp to the model's input size and channel count. Files that cannot
// be used are skipped and reported with a category and a reason: one bad photo must not stop an
// agent. A folder whose decoded images would not fit the memory limit is refused before any
// decoding, naming the limit.
import { constants as bufferConstants } from 'node:buffer';
import { readFile, stat } from 'node:fs/promises';
import { availableParallelism, freemem } from 'node:os';
import { extname, resolve } from 'node:path';
import type { ImageDataset } from './dataset.js';
import {
  FolderInvalidOptionError,
  FolderNotFoundError,
  FolderReadError,
  FolderTooLargeError,
  FolderTooManyClassesError,
} from './errors.js';
import { byCodeUnits, listFolder, type FileEntry } from './folder-listing.js';
import { decodeResolved, errorMessage, resolveDecodeOptions, sniffImageFormat, type DecodeOptions, type ResolvedDecodeOptions } from './image-decode.js';
import type { SkipCategory, SkippedFile } from './skipped.js';

export interface ImageFolderOptions extends DecodeOptions {
  /** Label each image by its first-level sub-folder (class names sorted). Default false. */
  readonly labeled?: boolean;
  /**
   * Fixed class list (implies labeled): index = position. Use it so a holdout folder maps classes
   * exactly like the training folder; images in folders not listed are skipped.
   */
  readonly classNames?: readonly string[];
  /**
   * Read only these files ('/'-separated paths relative to the root, as `paths` reports them):
   * one agent's share of a folder. Other files are not considered (nor reported); a listed file
   * that is not there is reported as unreadable.
   */
  readonly files?: readonly string[];
  /** Images decoded at once; default min(4, available cores). */
  readonly concurrency?: number;
  /**
   * Most bytes the decoded images may take (count x height x width x channels); a folder above it
   * is refused before decoding (FEDCLR_DATA_FOLDER_TOO_LARGE). Default defaultMaxDecodedBytes().
   */
  readonly maxBytes?: number;
  /** Largest file read, in bytes; a larger one is skipped as too-large. Default 256 MiB. */
  readonly maxFileBytes?: number;
}

export type { SkippedFile } from './skipped.js';

export interface FolderDataset extends ImageDataset {
  /** Absolute path of the folder read. */
  readonly root: string;
  /** Relative path of each image, aligned with images and labels; sorted. */
  readonly paths: readonly string[];
  /** Every file or folder that was not used, with why; sorted by path. */
  readonly skipped: readonly SkippedFile[];
}

const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set(['.png', '.jpg', '.jpeg', '.jpe', '.jfif']);
const MAX_CLASSES = 256;
const DEFAULT_MAX_FILE_BYTES = 256 * 2 ** 20;

/**
 * The default limit on decoded bytes: half the memory available now, and at most the largest
 * typed array this Node allows (the images are held in one).
 */
export function defaultMaxDecodedBytes(): number {
  return Math.min(bufferConstants.MAX_LENGTH, Math.floor(freemem() / 2));
}

type LoadResult = { readonly pixels: Uint8Array } | { readonly category: SkipCategory; readonly reason: string };

/** The category of a decoder failure, from sharp's words. */
function decodeFailure(message: string): SkipCategory {
  if (/pixel limit|too large|exceeds/i.test(message)) return 'too-large';
  if (/unsupported|decoder produced/i.test(message)) return 'unsupported';
  return 'corrupt';
}

async function loadFile(file: FileEntry, o: ResolvedDecodeOptions, maxFileBytes: number): Promise<LoadResult> {
  let bytes: Uint8Array;
  try {
    const { size } = await stat(file.abs);
    if (size > maxFileBytes) return { category: 'too-large', reason: `file of ${size} bytes is above the ${maxFileBytes}-byte limit per image` };
    bytes = await readFile(file.abs);
  } catch (err) {
    return { category: 'unreadable', reason: `cannot read file: ${errorMessage(err)}` };
  }
  const format = sniffImageFormat(bytes);
  if (format === null) {
    const ext = extname(file.abs).toLowerCase();
    if (bytes.length === 0) return { category: 'not-an-image', reason: 'empty file' };
    if (IMAGE_EXTENSIONS.has(ext)) return { category: 'corrupt', reason: `${ext} file whose content is not PNG or JPEG` };
    return { category: 'not-an-image', reason: 'not a PNG or JPEG image' };
  }
  try {
    return { pixels: await decodeResolved(bytes, o) };
  } catch (err) {
    // Report sharp's own words when it is the cause, without our "Could not decode" prefix.
    const inner = err instanceof Error && err.cause !== undefined ? err.cause : err;
    const message = errorMessage(inner);
    return { category: decodeFailure(message), reason: `cannot decode ${format}: ${message}` };
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

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw new FolderInvalidOptionError(`${name} must be an integer >= 1, got ${String(value)}`);
  return value;
}

/** The listed files (options.files) among those found; listed ones not found are reported. */
function selectFiles(found: FileEntry[], wanted: readonly string[] | undefined, skipped: SkippedFile[]): FileEntry[] {
  if (wanted === undefined) return found;
  if (!Array.isArray(wanted) || wanted.some((p) => typeof p !== 'string' || p === '')) throw new FolderInvalidOptionError('files must be non-empty relative paths');
  const want = new Set(wanted);
  const selected = found.filter((f) => want.delete(f.rel));
  for (const rel of want) skipped.push({ path: rel, category: 'unreadable', reason: 'listed in files, but not found (nor readable) under the folder' });
  return selected;
}

/** Each file with its label (0 when unlabeled); files outside the classes are reported. */
function labelFiles(files: readonly FileEntry[], classNames: string[] | null, skipped: SkippedFile[]): { file: FileEntry; label: number }[] {
  if (classNames === null) return files.map((file) => ({ file, label: 0 }));
  const classIndex = new Map(classNames.map((name, i) => [name, i]));
  const work: { file: FileEntry; label: number }[] = [];
  for (const file of files) {
    const slash = file.rel.indexOf('/');
    if (slash < 0) {
      skipped.push({ path: file.rel, category: 'unlabeled', reason: 'not inside a class sub-folder (labels come from first-level folders)' });
      continue;
    }
    const cls = classIndex.get(file.rel.slice(0, slash));
    if (cls === undefined) {
      skipped.push({ path: file.rel, category: 'unlabeled', reason: `folder "${file.rel.slice(0, slash)}" is not one of classNames` });
      continue;
    }
    work.push({ file, label: cls });
  }
  return work;
}

async function checkedRoot(root: string): Promise<string> {
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
  return rootAbs;
}

/**
 * Read every PNG/JPEG under `root` (recursively, sorted by path), decoded to the given size and
 * channels. Unusable files land in `skipped`; the call only throws for a missing root folder,
 * invalid options, or a folder above the memory limit.
 */
export async function readImageFolder(root: string, options: ImageFolderOptions): Promise<FolderDataset> {
  const o = resolveDecodeOptions(options);
  const concurrency = positiveInteger('concurrency', options.concurrency, Math.max(1, Math.min(4, availableParallelism())));
  const maxBytes = positiveInteger('maxBytes', options.maxBytes, defaultMaxDecodedBytes());
  const maxFileBytes = positiveInteger('maxFileBytes', options.maxFileBytes, DEFAULT_MAX_FILE_BYTES);
  const rootAbs = await checkedRoot(root);

  const listing = await listFolder(rootAbs);
  const classNames = resolveClasses(options, listing.topDirs, rootAbs);
  const skipped = [...listing.skipped];
  // Decide labels before decoding, so files that would be dropped anyway are never decoded.
  const work = labelFiles(selectFiles(listing.files, options.files, skipped), classNames, skipped);

  // Every candidate counted (some may turn out unreadable): refuse before holding any of them.
  const size = o.height * o.width * o.channels;
  if (work.length * size > maxBytes) throw new FolderTooLargeError(rootAbs, work.length, `${o.height}x${o.width}x${o.channels}`, work.length * size, maxBytes);

  // A small worker pool: sharp decodes off the main thread, but unbounded parallelism would hold
  // every file in memory at once.
  const results = new Array<LoadResult>(work.length);
  let nextJob = 0;
  const worker = async (): Promise<void> => {
    for (let i = nextJob++; i < work.length; i = nextJob++) {
      results[i] = await loadFile((work[i] as { file: FileEntry }).file, o, maxFileBytes);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, work.length) }, worker));

  const ok = results.filter((r): r is { pixels: Uint8Array } => 'pixels' in r).length;
  const images = new Uint8Array(ok * size);
  const labels = classNames === null ? null : new Uint8Array(ok);
  const paths: string[] = [];
  results.forEach((r, i) => {
    const job = work[i] as { file: FileEntry; label: number };
    if (!('pixels' in r)) {
      skipped.push({ path: job.file.rel, category: r.category, reason: r.reason });
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
