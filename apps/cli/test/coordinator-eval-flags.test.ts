// fedclr simulate --eval-data DIR [--eval-every K] and --refusers R: the evaluation flags are
// handed to the coordinator simulate starts (which parses them as its own), refused early with
// the flag's name when they cannot work; --refusers is refused where its agents could not refuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCoordinatorArgs } from '../src/commands/coordinator.js';
import { parseSimulateArgs, simulateCommand } from '../src/commands/simulate.js';
import { coordinatorEvalFlags, coordinatorEvalFromFlags } from '../src/coordinator-eval-flags.js';

const usage = (re: RegExp) => (e: unknown) => (e as { code?: string }).code === 'FEDCLR_CLI_USAGE' && re.test((e as Error).message);

test('simulate --eval-data DIR [--eval-every K] becomes the coordinator\'s --eval-data DIR --eval-every K (default 1)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedclr-eval-flags-'));
  try {
    const byDefault = coordinatorEvalFromFlags(parseSimulateArgs(['--eval-data', dir]));
    assert.deepEqual(byDefault, { dir, every: 1 });
    const every3 = coordinatorEvalFromFlags(parseSimulateArgs(['--eval-data', dir, '--eval-every', '3']));
    assert.deepEqual(coordinatorEvalFlags(every3), ['--eval-data', dir, '--eval-every', '3']);
    // What fedclr coordinator reads of them: the same folder and period.
    const coordinator = parseCoordinatorArgs(coordinatorEvalFlags(every3));
    assert.equal(coordinator['eval-data'], dir);
    assert.equal(coordinator['eval-every'], '3');
    // Without --eval-data nothing is passed; --eval-every stays simulate's own.
    assert.equal(coordinatorEvalFromFlags(parseSimulateArgs(['--eval-every', '2'])), undefined);
    assert.deepEqual(coordinatorEvalFlags(undefined), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('simulate --eval-data: a missing folder, a file, or --eval-every 0 is refused, naming the flag', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedclr-eval-flags-'));
  try {
    const file = join(dir, 'images.txt');
    writeFileSync(file, 'not a folder');
    assert.throws(() => coordinatorEvalFromFlags(parseSimulateArgs(['--eval-data', join(dir, 'missing')])), usage(/--eval-data .*missing is not a readable directory/));
    assert.throws(() => coordinatorEvalFromFlags(parseSimulateArgs(['--eval-data', file])), usage(/--eval-data .*images\.txt is not a directory/));
    assert.throws(() => coordinatorEvalFromFlags(parseSimulateArgs(['--eval-data', dir, '--eval-every', '0'])), usage(/--eval-every 0 does not go with --eval-data/));
    assert.throws(() => coordinatorEvalFromFlags(parseSimulateArgs(['--eval-data', dir, '--eval-every', 'often'])), usage(/--eval-every must be an integer >= 0, got 'often'/));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('simulate --refusers: only with plain aggregation, and fewer than the clients (refused before any process starts)', async () => {
  const quiet = (): void => undefined;
  await assert.rejects(simulateCommand(['--clients', '4', '--aggregation', 'secure', '--refusers', '1'], quiet, quiet), usage(/--refusers needs --aggregation plain/));
  await assert.rejects(simulateCommand(['--clients', '4', '--refusers', '4'], quiet, quiet), usage(/--refusers 4 must be below --clients 4/));
  await assert.rejects(simulateCommand(['--clients', '4', '--refusers=-1'], quiet, quiet), usage(/--refusers must be an integer >= 0, got '-1'/));
  await assert.rejects(simulateCommand(['--clients', '4', '--eval-data', '/nonexistent/fedclr-eval'], quiet, quiet), usage(/--eval-data \/nonexistent\/fedclr-eval is not a readable directory/));
});
