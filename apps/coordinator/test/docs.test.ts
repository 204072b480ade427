// The README documents every error code of the catalog.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { COORDINATOR_ERROR_CODES } from '../src/errors.js';

test('README lists every FEDCLR_COORD_* code', () => {
  const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
  const missing = Object.values(COORDINATOR_ERROR_CODES).flat().filter((code) => !readme.includes(`\`${code}\``));
  assert.deepEqual(missing, []);
});
