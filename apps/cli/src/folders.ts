// Image folders as the fedclr commands read them: the memory limit (--max-memory), the
// skipped-file summary on stderr and the full skipped-file report as JSON (--skipped-report).
import { rename, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  createRng,
  defaultMaxDecodedBytes,
  formatSkipped,
  readImageFolder,
  stratifiedSplit,
  subsetDataset,
  summarizeSkipped,
  type FolderDataset,
  type ImageFolderOptions,
  type LabeledImageDataset,
  type SkippedFile,
  type SkipSummary,
} from '@fedclr/data';
import { numberOption } from './common.js';
import { MemoryLimitError, UsageError } from './errors.js';

export const FOLDER_FLAG_OPTIONS = {
  'skipped-report': { type: 'string' },
  'max-memory': { type: 'string' },
} as const;

/** The flags of a command that reads Fashion-MNIST or labeled folders (eval, simulate). */
export const LABELED_FOLDER_OPTIONS = {
  dataset: { type: 'string' },
  data: { type: 'string' },
  'test-data': { type: 'string' },
  'test-fraction': { type: 'string' },
  size: { type: 'string' },
  channels: { type: 'string' },
  ...FOLDER_FLAG_OPTIONS,
} as const;

/** LABELED_FOLDER_OPTIONS' combinations: the folder flags need --data, which excludes --dataset. */
export function checkLabeledFolderFlags(values: Record<string, unknown>): void {
  if (values['data'] === undefined) {
    for (const flag of ['test-data', 'test-fraction', 'size', 'channels', 'skipped-report', 'max-memory']) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag} goes with --data DIR${flag === 'size' || flag === 'channels' ? ' (Fashion-MNIST images are 28x28x1)' : ''}`);
    }
    return;
  }
  if (values['dataset'] !== undefined) throw new UsageError('give --dataset or --data, not both');
  if (values['test-data'] !== undefined && values['test-fraction'] !== undefined) throw new UsageError('give --test-data DIR2 or --test-fraction F, not both');
}

/** The help lines of FOLDER_FLAG_OPTIONS, descriptions starting at `column` (as the command's other flags). */
export function folderFlagsHelp(column: number): string {
  const rows: [string, string[]][] = [
    ['--skipped-report FILE', ['write every skipped file (path, category, reason) of the folders read as JSON;', 'stderr gets the counts by category and the first few']],
    ['--max-memory MB', ['most memory the decoded images may take (default: half the available memory);', 'a larger folder is refused before decoding, naming the limit']],
  ];
  return rows.flatMap(([flag, [first, ...rest]]) => [`  ${flag}`.padEnd(column) + first, ...rest.map((l) => ' '.repeat(column) + l)]).join('\n');
}

const MIB = 2 ** 20;

export interface FolderReport {
  readonly root: string;
  /** What the folder was read as, e.g. 'train', 'test', 'agent data'. */
  readonly role: string;
  readonly images: number;
  readonly summary: SkipSummary;
  readonly skipped: readonly SkippedFile[];
}

/**
 * Reads the image folders of one command with its --max-memory limit, logs each folder's
 * skipped-file summary, and writes the whole report to --skipped-report FILE after each read.
 */
export class FolderReader {
  private readonly reports: FolderReport[] = [];
  private readonly reportPath: string | undefined;
  readonly maxBytes: number;

  constructor(
    values: Record<string, unknown>,
    private readonly command: string,
    private readonly log: (line: string) => void,
  ) {
    const mb = numberOption(values, 'max-memory', undefined);
    this.maxBytes = mb === undefined ? defaultMaxDecodedBytes() : Math.floor(mb * MIB);
    const report = values['skipped-report'];
    this.reportPath = typeof report === 'string' ? resolve(report) : undefined;
  }

  /**
   * One folder, decoded at `options`; `share` (default 1) is the fraction of the memory limit
   * its bytes may take (a command that holds another copy of the pixels passes less).
   */
  async read(dir: string, role: string, options: Omit<ImageFolderOptions, 'maxBytes'>, share = 1): Promise<FolderDataset> {
    let folder: FolderDataset;
    try {
      folder = await readImageFolder(dir, { ...options, maxBytes: Math.max(1, Math.floor(this.maxBytes * share)) });
    } catch (err) {
      if ((err as { code?: string }).code === 'FEDCLR_DATA_FOLDER_TOO_LARGE') throw new MemoryLimitError((err as Error).message, (this.maxBytes / MIB).toFixed(0), { cause: err });
      throw err;
    }
    for (const line of formatSkipped(folder.root, folder.skipped)) this.log(line);
    this.reports.push({ root: folder.root, role, images: folder.count, summary: summarizeSkipped(folder.skipped), skipped: folder.skipped });
    await this.writeReport();
    return folder;
  }

  /** Written whole to a temporary file, then renamed: a reader never sees half a report. */
  private async writeReport(): Promise<void> {
    if (this.reportPath === undefined) return;
    const tmp = `${this.reportPath}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify({ command: this.command, folders: this.reports }, null, 2)}\n`);
    await rename(tmp, this.reportPath);
  }
}

export interface LabeledSplits {
  readonly train: LabeledImageDataset;
  readonly test: LabeledImageDataset;
  /** The train folder (absolute) and the path under it of each train image, aligned with train. */
  readonly trainRoot: string;
  readonly trainPaths: readonly string[];
  /** How the test set was made, for reports. */
  readonly testSource: string;
}

/** --test-fraction F: the share of each class held out as the test set, in (0, 1). */
export function testFractionOption(values: Record<string, unknown>): number {
  const f = numberOption(values, 'test-fraction', 0.2) as number;
  if (f >= 1) throw new UsageError(`--test-fraction must be in (0, 1), got ${f}`);
  return f;
}

/**
 * Labeled train and test sets from folders, labels from first-level sub-folders: the test
 * folder's classes are mapped by the train folder's class names (a class the train folder lacks
 * is skipped as unlabeled); without a test folder, a seeded stratified split of the train folder.
 */
export async function labeledFolderSplits(
  reader: FolderReader,
  dirs: { readonly train: string; readonly test?: string | undefined },
  input: { readonly height: number; readonly width: number; readonly channels: 1 | 3 },
  split: { readonly testFraction: number; readonly seed: number },
  share = 1,
): Promise<LabeledSplits> {
  const decode = { height: input.height, width: input.width, channels: input.channels };
  const folder = (await reader.read(dirs.train, dirs.test === undefined ? 'train and test (split)' : 'train', { ...decode, labeled: true }, share)) as FolderDataset & LabeledImageDataset;
  if (folder.classNames.length < 2) throw new UsageError(`${dirs.train} needs at least 2 class sub-folders (labels come from first-level folder names), found ${folder.classNames.length}`);
  if (folder.count < 4) throw new UsageError(`${folder.count} readable labeled images under ${dirs.train}; evaluation needs at least 4`);
  if (dirs.test !== undefined) {
    const test = (await reader.read(dirs.test, 'test', { ...decode, classNames: folder.classNames }, share)) as FolderDataset & LabeledImageDataset;
    if (test.count === 0) throw new UsageError(`no readable image under ${dirs.test} is in a class folder of ${dirs.train} (${folder.classNames.join(', ')})`);
    return { train: folder, test, trainRoot: folder.root, trainPaths: folder.paths, testSource: `folder ${test.root}` };
  }
  const parts = stratifiedSplit(folder.labels, split.testFraction, createRng(`fedclr-folder-split:${split.seed}`));
  return {
    train: subsetDataset(folder, parts.train),
    test: subsetDataset(folder, parts.test),
    trainRoot: folder.root,
    trainPaths: parts.train.map((i) => folder.paths[i] as string),
    testSource: `${parts.test.length} images (${(split.testFraction * 100).toFixed(0)}% of each class, split seed ${split.seed}) held out of ${folder.root}`,
  };
}
