// End to end: `fedclr simulate` as real processes (one coordinator, three agents on loopback) on a
// small slice of Fashion-MNIST: two plain rounds of one local step each, then the evaluation. The
// recipe flags (--widths, --crop-min, --view-size, --fedprox-mu) reach the coordinator and every
// agent, and the default cosine schedule lowers the learning rate from round 1 to round 2; with
// --train-slots 1 the agents train one at a time, each holding the simulation's single slot.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_FINAL_FRACTION, lrFactor } from '@fedclr/coordinator';
import { loadModel } from '@fedclr/tensor';
import { assertNoProcessesLeft, BIN } from './helpers.js';


interface Report {
  config: Record<string, unknown>;
  data: { trainImages: number; holdoutImages: number; testImages: number; clientImages: number[]; evaluation: string };
  completedRounds: number;
  stoppedBy: string;
  rounds: {
    round: number;
    participants: number;
    cohort: number;
    loss: number;
    learningRate: number;
    examples: number;
    wallMs: number;
    trainMs: number;
    agentTrainMs: number;
    slotWaitMs: number;
    nonTrainingMs: number;
    nonTrainingShare: number;
  }[];
  evaluations: { afterRound: number; linearProbe: number; knn: number }[];
  linearProbe: number;
  knn: number;
  model: { initialVersion: string; finalVersion: string; changed: boolean; relativeChange: number; checkpoint: string };
  timing: { meanNonTrainingShare: number; totalMs: number; slots: { capacity: number; granted: number; maxHeld: number; freedOnExit: number } };
}

describe('fedclr simulate', () => {
  let dir: string;
  let out: string;
  let stdout = '';
  let stderr = '';
  let code: number | null = null;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedclr-sim-'));
    out = join(dir, 'run');
    const args = [
      BIN, 'simulate', '--clients', '3', '--partition', 'dirichlet', '--alpha', '0.5', '--limit', '512', '--rounds', '2',
      '--steps-per-round', '1', '--batch', '32', '--aggregation', 'plain', '--eval-every', '1', '--eval-workers', '0',
      '--seed', '7', '--widths', '8,16,32', '--crop-min', '0.3', '--view-size', '20', '--fedprox-mu', '0.01', '--train-slots', '1', '--out', out, '--json',
      '--verbose', // info logs: each agent logs the recipe it trains, each round
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('exits 0 and prints the report last on stdout, as written to --out', () => {
    assert.equal(code, 0, stderr);
    const printed = JSON.parse(stdout.trim().split('\n').pop() as string) as Report;
    const written = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    assert.deepEqual(printed, written);
  });

  it('reports the config, the split, one record per round with its time split, and the evaluation', () => {
    const r = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    assert.equal(r.config['clients'], 3);
    assert.equal(r.config['aggregation'], 'plain');
    assert.equal(r.config['serverLr'], 2); // simulate's FedAvg server step by default
    assert.deepEqual(r.config['partition'], { kind: 'dirichlet', alpha: 0.5 });
    assert.deepEqual(r.config['widths'], [8, 16, 32]);
    assert.equal(r.config['cropMin'], 0.3);
    assert.equal(r.config['viewSize'], 20);
    assert.deepEqual(r.config['lrSchedule'], { kind: 'cosine', finalFraction: 0.05 });
    assert.equal(r.config['fedproxMu'], 0.01);
    assert.match(String(r.config['architecture']), /^convnet-s-8-16-32\+/);
    assert.equal(r.data.trainImages, 512);
    // No holdout by default: the agents share the whole train split, the probe fits on its labels.
    assert.equal(r.data.holdoutImages, 0);
    assert.equal(r.data.testImages, 512);
    assert.equal(r.data.clientImages.reduce((a, b) => a + b, 0), 512);
    assert.match(r.data.evaluation, /fitted on the labeled train images/);
    assert.equal(r.completedRounds, 2);
    assert.equal(r.stoppedBy, 'rounds');
    assert.deepEqual(r.rounds.map((x) => x.round), [1, 2]);
    // cosine over --rounds 2 from the default --lr 0.004, at each round's midpoint (1/4 and 3/4 of the run)
    assert.equal(r.config['lr'], 0.004);
    const cosine = { kind: 'cosine', finalFraction: DEFAULT_FINAL_FRACTION } as const;
    const expected = [0.004 * lrFactor(cosine, 0.25), 0.004 * lrFactor(cosine, 0.75)];
    r.rounds.forEach((x, i) => assert.ok(Math.abs(x.learningRate - (expected[i] as number)) < 1e-12, `round ${x.round}: lr ${x.learningRate}`));
    for (const x of r.rounds) {
      assert.equal(x.participants, 3);
      assert.equal(x.cohort, 3);
      assert.equal(x.examples, 3 * 32); // one step of 32 images per agent
      assert.ok(x.loss > 0 && Number.isFinite(x.loss));
      assert.ok(x.trainMs > 0 && x.wallMs >= x.trainMs, JSON.stringify(x));
      assert.equal(x.nonTrainingMs, x.wallMs - x.trainMs);
      assert.ok(x.nonTrainingShare >= 0 && x.nonTrainingShare < 1);
    }
    assert.ok(r.timing.meanNonTrainingShare >= 0 && r.timing.meanNonTrainingShare < 1);
    // --train-slots 1: every local training held the one slot, so two of the three agents waited
    // each round, and the loops ran one after another (their union is at least the longest)
    assert.equal(r.config['trainSlots'], 1);
    assert.equal(r.config['agentMinutesPerRound'], 2.6667); // 0.8 x the 600 s deadline, in 3 waves
    assert.deepEqual(r.timing.slots, { capacity: 1, granted: 6, maxHeld: 1, freedOnExit: 0 });
    for (const x of r.rounds) {
      assert.ok(x.slotWaitMs > 0, JSON.stringify(x));
      assert.ok(x.agentTrainMs > 0 && x.trainMs >= x.agentTrainMs, JSON.stringify(x));
    }
    // --eval-every 1: one evaluation per round; the final numbers are the last one's
    assert.deepEqual(r.evaluations.map((e) => e.afterRound), [1, 2]);
    assert.equal(r.linearProbe, r.evaluations[1]?.linearProbe);
    for (const v of [r.linearProbe, r.knn]) assert.ok(v > 0.1 && v <= 1, `accuracy ${v} (10 classes)`);
  });

  it('changed the global model and checkpointed it in the tfjs layers format', async () => {
    const r = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    assert.equal(r.model.changed, true);
    assert.notEqual(r.model.finalVersion, r.model.initialVersion);
    assert.ok(r.model.relativeChange > 0);
    assert.match(r.model.checkpoint, /checkpoints\/round-00000002\/tfjs$/);
    const model = JSON.parse(readFileSync(join(r.model.checkpoint, 'model.json'), 'utf8')) as { format: string; userDefinedMetadata: { fedclr: { info: Record<string, unknown> } } };
    assert.equal(model.format, 'layers-model');
    assert.equal(model.userDefinedMetadata.fedclr.info['modelVersion'], r.model.finalVersion);
    assert.equal(model.userDefinedMetadata.fedclr.info['completedRounds'], 2);
    const loaded = await loadModel(r.model.checkpoint);
    assert.equal(loaded.weights.length, r.config['parameters']);
    // --widths 8,16,32: the federation trained that convnet-s (every agent built the same model,
    // or no update would have matched the coordinator's manifest).
    assert.deepEqual(loaded.spec.nodes.filter((n) => n.op === 'conv').map((n) => (n.op === 'conv' ? n.filters : 0)), [8, 16, 32]);
  });

  it('every agent trained with the recipe the coordinator sent (--crop-min 0.3, --view-size 20, --widths 8,16,32)', () => {
    for (const name of ['agent-0', 'agent-1', 'agent-2']) {
      const plans = readFileSync(join(out, 'logs', `${name}.log`), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg?: string; recipe?: { augment: unknown; model: { widths: number[] }; batchSize: number } })
        .filter((l) => l.msg === "training the coordinator's recipe");
      assert.ok(plans.length >= 1, name);
      for (const plan of plans) {
        assert.deepEqual(plan.recipe?.augment, { cropMin: 0.3, viewSize: 20, strength: 0.5 }, name);
        assert.deepEqual(plan.recipe?.model.widths, [8, 16, 32], name);
      }
    }
  });

  it('left every process stopped and a log per process', () => {
    for (const name of ['coordinator', 'agent-0', 'agent-1', 'agent-2']) assert.ok(existsSync(join(out, 'logs', `${name}.log`)), name);
    assertNoProcessesLeft(out);
  });
});
