// End to end: `fedclr simulate --agents-per-process 3`: six agents in two `fedclr agent-host`
// processes on a small slice of Fashion-MNIST, a cohort of 4 sampled each round, two plain rounds
// of one local step. Each hosted agent connects with its own identity and token, trains its own
// share holding a training slot from simulate, and uploads; one log per host, every line naming
// its agent.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertNoProcessesLeft, BIN } from './helpers.js';

interface Report {
  config: Record<string, unknown>;
  data: { clientImages: number[] };
  completedRounds: number;
  rounds: { round: number; participants: number; cohort: number; examples: number; loss: number }[];
  timing: { slots: { capacity: number; granted: number; maxHeld: number; freedOnExit: number } };
}

interface Summary {
  agentId: string;
  exit: string;
  updatesSent: number;
  images: number;
}

const CLIENTS = 6;
const PER_HOST = 3;
const COHORT = 4;
const ROUNDS = 2;

describe('fedclr simulate --agents-per-process', () => {
  let dir: string;
  let out: string;
  let stderr = '';
  let code: number | null = null;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedclr-sim-hosts-'));
    out = join(dir, 'run');
    const args = [
      BIN, 'simulate', '--clients', String(CLIENTS), '--agents-per-process', String(PER_HOST), '--cohort', String(COHORT), '--rounds', String(ROUNDS),
      '--limit', '512', '--steps-per-round', '1', '--batch', '32', '--widths', '8,16,32', '--eval-workers', '0', '--train-slots', '2', '--seed', '3',
      '--out', out, '--json', '--verbose',
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const hostLog = (h: number): string[] => readFileSync(join(out, 'logs', `host-${h}.log`), 'utf8').split('\n').filter((l) => l.startsWith('{'));
  const summaries = (h: number): Summary[] => hostLog(h).map((l) => JSON.parse(l) as Summary & { level?: number }).filter((l) => l.level === undefined && typeof l.updatesSent === 'number');

  it('completes every round with a full cohort', () => {
    assert.equal(code, 0, stderr);
    const r = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    assert.equal(r.config['agentsPerProcess'], PER_HOST);
    assert.equal(r.config['agentWorkers'], 1); // hosted agents train in a worker thread
    assert.equal(r.completedRounds, ROUNDS);
    for (const x of r.rounds) {
      assert.equal(x.participants, COHORT, JSON.stringify(x));
      assert.equal(x.examples, COHORT * 32);
      assert.ok(x.loss > 0 && Number.isFinite(x.loss));
    }
    // Every update trained under a slot granted by simulate to its host.
    assert.equal(r.timing.slots.granted, COHORT * ROUNDS);
    assert.ok(r.timing.slots.maxHeld <= 2);
    assert.equal(r.timing.slots.freedOnExit, 0);
  });

  it('ran two hosts of three agents, one log each, no per-agent processes, and stopped them all', () => {
    const logs = readdirSync(join(out, 'logs')).sort();
    assert.deepEqual(logs, ['coordinator.log', 'host-0.log', 'host-1.log']);
    assert.deepEqual(summaries(0).map((s) => s.agentId), ['sim-0', 'sim-1', 'sim-2']);
    assert.deepEqual(summaries(1).map((s) => s.agentId), ['sim-3', 'sim-4', 'sim-5']);
    for (let i = 0; i < CLIENTS; i++) assert.ok(existsSync(join(out, 'agents', `agent-${i}`, 'identity.json')), `agent-${i}'s own identity`);
    assertNoProcessesLeft(out);
  });

  it('each hosted agent completed on its own share, and every cohort member trained and uploaded', () => {
    const r = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    const all = [...summaries(0), ...summaries(1)];
    assert.equal(all.length, CLIENTS);
    all.forEach((s, i) => {
      assert.equal(s.exit, 'completed', JSON.stringify(s));
      assert.equal(s.images, r.data.clientImages[i], `${s.agentId} trains on its own share`);
    });
    assert.equal(all.reduce((n, s) => n + s.updatesSent, 0), COHORT * ROUNDS);
    // A cohort of 4 cannot fit in one host of 3: both hosts trained in every round.
    for (const h of [0, 1]) assert.ok(summaries(h).some((s) => s.updatesSent > 0), `host-${h} trained`);
    // Every agent that uploaded logged the recipe it trained, under its own id, once per update.
    for (const h of [0, 1]) {
      const plans = hostLog(h)
        .map((l) => JSON.parse(l) as { msg?: string; agentId?: string })
        .filter((l) => l.msg === "training the coordinator's recipe");
      for (const s of summaries(h)) assert.equal(plans.filter((p) => p.agentId === s.agentId).length, s.updatesSent, s.agentId);
    }
  });
});
