// The skipped-file report of an image folder: every file or folder the reader did not use, with
// a stable category (for counting and for scripts) and a message (for people).

/**
 * Why a file was not used. Stable names, in this order in summaries:
 * - unreadable: the file or folder could not be read, listed or resolved (permissions, I/O, a
 *   broken symbolic link, a listed file that is not there);
 * - not-an-image: empty, or content that is neither PNG nor JPEG, or not a regular file;
 * - corrupt: an image by name or by its first bytes that does not decode (truncated, garbled);
 * - unsupported: a PNG/JPEG the decoder reads, but not into the size and channels asked for
 *   (an image mode it cannot convert);
 * - too-large: the file or its pixel count is above the reader's per-image limits;
 * - unlabeled: a labeled read, and the file is outside every class sub-folder that is read;
 * - duplicate: a folder reached a second time (a symbolic-link cycle or a second link).
 */
export const SKIP_CATEGORIES = ['unreadable', 'not-an-image', 'corrupt', 'unsupported', 'too-large', 'unlabeled', 'duplicate'] as const;
export type SkipCategory = (typeof SKIP_CATEGORIES)[number];

export interface SkippedFile {
  /** Path relative to the root folder, '/'-separated; a folder ends with '/'. */
  readonly path: string;
  readonly category: SkipCategory;
  /** What was wrong, in words. */
  readonly reason: string;
}

export interface SkipSummary {
  readonly total: number;
  /** Skipped files per category, every category present (0 when none). */
  readonly byCategory: Readonly<Record<SkipCategory, number>>;
}

export function summarizeSkipped(skipped: readonly SkippedFile[]): SkipSummary {
  const byCategory = Object.fromEntries(SKIP_CATEGORIES.map((c) => [c, 0])) as Record<SkipCategory, number>;
  for (const s of skipped) byCategory[s.category] += 1;
  return { total: skipped.length, byCategory };
}

/**
 * A few lines for a log: the counts by category, then the first `examples` files with their
 * reasons. Empty when nothing was skipped.
 */
export function formatSkipped(root: string, skipped: readonly SkippedFile[], examples = 5): string[] {
  if (skipped.length === 0) return [];
  const { byCategory } = summarizeSkipped(skipped);
  const counts = SKIP_CATEGORIES.filter((c) => byCategory[c] > 0).map((c) => `${byCategory[c]} ${c}`);
  const lines = [`skipped ${skipped.length} files under ${root}: ${counts.join(', ')}`];
  for (const s of skipped.slice(0, examples)) lines.push(`  ${s.path}: [${s.category}] ${s.reason}`);
  if (skipped.length > examples) lines.push(`  ... and ${skipped.length - examples} more`);
  return lines;
}
