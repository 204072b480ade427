#!/usr/bin/env node
// Runs every compiled test file (packages/*, apps/*, test/) with node's built-in test runner.
// Node 20's runner takes no globs, so the files are found here.
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const roots = [];
for (const group of ['packages', 'apps']) {
  const dir = join(root, group);
  if (!existsSync(dir)) continue;
  for (const name of readdirSync(dir)) roots.push(join(dir, name, 'dist', 'test'));
}
roots.push(join(root, 'test', 'dist'));

function collect(dir, out) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) collect(path, out);
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const filter = process.argv.slice(2);
let files = roots.flatMap((dir) => collect(dir, []));
if (filter.length > 0) files = files.filter((f) => filter.some((word) => f.includes(word)));
if (files.length === 0) {
  console.error('run-tests: no compiled test files found; run `npm run build` first');
  process.exit(1);
}
console.log(`run-tests: ${files.length} files: ${files.map((f) => relative(root, f)).join(' ')}`);
const result = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
  env: { ...process.env, FEDCLR_LOG_LEVEL: process.env.FEDCLR_LOG_LEVEL ?? 'warn' },
});
process.exit(result.status ?? 1);
