// End to end, as an operator would run it: `fedclr simulate --aggregation secure` forks a real
// coordinator and real agent processes on loopback, which train the contrastive encoder on
// Fashion-MNIST slices and aggregate with SecAgg+ (consistency round included). One run is
// honest; in the other one agent is a red team (`--byzantine 1`: garbage encrypted shares in
// every round), and every round must complete without it, the coordinator naming the proof.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../apps/cli/bin/fedclr.js', import.meta.url));

interface Report {
  config: Record<string, unknown>;
  completedRounds: number;
  rounds: { round: number; participants: number; cohort: number; examples: number; excluded: { agentId: string; status: string; reason: string | null }[] }[];
  linearProbe: number;
  model: { changed: boolean; relativeChange: number };
}

async function simulate(dir: string, extra: readonly string[]): Promise<{ code: number | null; stderr: string; report: () => Report }> {
  const out = join(dir, 'run');
  const args = [
    BIN, 'simulate', '--clients', '5', '--partition', 'iid', '--limit', '640', '--rounds', '2', '--steps-per-round', '2',
    '--batch', '32', '--widths', '8,16,32', '--aggregation', 'secure', '--eval-workers', '0', '--seed', '3', '--train-slots', '1',
    '--out', out, '--json', ...extra,
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  return { code, stderr, report: () => JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report };
}

describe('secure federation with real contrastive training', () => {
  let dir: string;
  let run: Awaited<ReturnType<typeof simulate>>;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedclr-e2e-secure-'));
    run = await simulate(dir, []);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('completes every round with every agent inside the secure sum, and the model learns', () => {
    assert.equal(run.code, 0, run.stderr);
    const r = run.report();
    assert.equal(r.config['aggregation'], 'secure');
    assert.equal(r.completedRounds, 2);
    for (const round of r.rounds) {
      assert.equal(round.participants, 5);
      assert.deepEqual(round.excluded, []);
      assert.equal(round.examples, 5 * 2 * 32, 'the masked example counts sum exactly');
    }
    assert.ok(r.model.changed && r.model.relativeChange > 0);
    assert.ok(r.linearProbe > 0.3, `probe ${r.linearProbe}`);
  });
});

describe('secure federation with a byzantine agent (garbage shares every round)', () => {
  let dir: string;
  let run: Awaited<ReturnType<typeof simulate>>;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedclr-e2e-byzantine-'));
    run = await simulate(dir, ['--byzantine', '1']);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('completes every round without it; the coordinator records the proof as the reason', () => {
    assert.equal(run.code, 0, run.stderr);
    const r = run.report();
    assert.equal(r.config['byzantine'], 1);
    assert.equal(r.completedRounds, 2);
    for (const round of r.rounds) {
      assert.equal(round.participants, 4, `round ${round.round}`);
      assert.equal(round.examples, 4 * 2 * 32);
      assert.equal(round.excluded.length, 1);
      const [excluded] = round.excluded;
      assert.equal(excluded?.agentId, 'sim-4');
      assert.match(excluded?.reason ?? '', /excluded for misbehaviour \(bad-share\)/);
    }
  });
});
