// Recursive, sorted listing of an image folder: regular files to consider, first-level folders
// (the classes of a labeled read), and every entry that cannot be used, with why.
import type { Dirent } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FolderReadError } from './errors.js';
import { errorMessage } from './image-decode.js';
import type { SkippedFile } from './skipped.js';

export interface FileEntry {
  /** '/'-separated, relative to the root. */
  readonly rel: string;
  readonly abs: string;
}

export interface Listing {
  readonly files: FileEntry[];
  readonly topDirs: string[];
  readonly skipped: SkippedFile[];
}

export function byCodeUnits(a: string, b: string): number {
  // Plain code-unit order, not localeCompare: the same on every machine and locale.
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Recursive listing; hidden entries (dot-names) are ignored, symlinks followed once. */
export async function listFolder(root: string): Promise<Listing> {
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
      skipped.push({ path: `${dir.rel}/`, category: 'unreadable', reason: `cannot list folder: ${errorMessage(err)}` });
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
          skipped.push({ path: rel, category: 'unreadable', reason: `broken symbolic link: ${errorMessage(err)}` });
          continue;
        }
      }
      if (isDir) {
        let real: string;
        try {
          real = await realpath(abs);
        } catch (err) {
          skipped.push({ path: `${rel}/`, category: 'unreadable', reason: `cannot resolve folder: ${errorMessage(err)}` });
          continue;
        }
        if (visited.has(real)) {
          skipped.push({ path: `${rel}/`, category: 'duplicate', reason: 'folder already visited (symbolic link cycle or duplicate)' });
          continue;
        }
        visited.add(real);
        if (dir.rel === '') topDirs.push(entry.name);
        stack.push({ abs, rel });
      } else if (isFile) {
        files.push({ rel, abs });
      } else {
        skipped.push({ path: rel, category: 'not-an-image', reason: 'not a regular file' });
      }
    }
  }
  files.sort((a, b) => byCodeUnits(a.rel, b.rel));
  topDirs.sort(byCodeUnits);
  return { files, topDirs, skipped };
}
