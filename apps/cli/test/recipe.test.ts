// One recipe (issue 12, item 5): train, coordinator and simulate take their defaults from
// @fedclr/contrastive's recipe; a flag means the same in every command; help texts state the
// recipe's numbers; and an agent trains exactly the recipe its coordinator sent.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultFederatedRecipe, defaultLossRecipe, defaultRecipe, recipeOptimizer, RECIPE_DEFAULTS, RECIPE_LOSSES, RECIPE_MININGS, type LossRecipe, type Recipe } from '@fedclr/contrastive';
import { resolveConfig } from '@fedclr/coordinator';
import { LOSSES, MININGS } from '@fedclr/protocol';
import { main } from '../src/main.js';
import { grayPng } from './png.js';
import { coordinatorRecipe, parseCoordinatorArgs } from '../src/commands/coordinator.js';
import { parseSimulateArgs, simulateRecipe } from '../src/commands/simulate.js';
import { parseTrainArgs, trainRecipe } from '../src/commands/train.js';

const BIN = fileURLToPath(new URL('../../bin/fedclr.js', import.meta.url));
const GRAY28 = { height: 28, width: 28, channels: 1 };
const RGB32 = { height: 32, width: 32, channels: 3 };

async function help(command: string): Promise<string> {
  const out: string[] = [];
  assert.equal(await main([command, '--help'], (l) => out.push(l), () => undefined), 0);
  return out.join('\n');
}

/** The loss part of a recipe. */
function lossOf(r: LossRecipe): LossRecipe {
  return { loss: r.loss, temperature: r.temperature, ...(r.margin !== undefined ? { margin: r.margin } : {}), ...(r.mining !== undefined ? { mining: r.mining } : {}) };
}

/** The local part of a recipe (what one training run uses), without its view size. */
function local(r: Recipe): Omit<Recipe, 'augment'> & { augment: Omit<Recipe['augment'], 'viewSize'> } {
  const { viewSize: _v, ...augment } = r.augment;
  return { model: r.model, augment, optimizer: r.optimizer, learningRate: r.learningRate, weightDecay: r.weightDecay, batchSize: r.batchSize, ...lossOf(r) };
}

describe('the recipe is the default of train, coordinator and simulate', () => {
  it("parses each command's defaults and finds the recipe object", () => {
    assert.deepEqual(trainRecipe(parseTrainArgs([]), GRAY28), defaultRecipe(GRAY28, 'central'));
    assert.deepEqual(trainRecipe(parseTrainArgs([]), RGB32), defaultRecipe(RGB32, 'central'));
    assert.deepEqual(coordinatorRecipe(parseCoordinatorArgs([])), defaultFederatedRecipe(GRAY28));
    assert.deepEqual(coordinatorRecipe(parseCoordinatorArgs(['--size', '32', '--channels', '3'])), defaultFederatedRecipe(RGB32));
    assert.deepEqual(simulateRecipe(parseSimulateArgs([])), defaultFederatedRecipe(GRAY28));
    // Central and federated training differ only in the view size (the documented rule).
    assert.deepEqual(local(trainRecipe(parseTrainArgs([]), GRAY28)), local(coordinatorRecipe(parseCoordinatorArgs([]))));
  });

  it('keeps the measured numbers (README: 0.8843 central, 0.8671 federated)', () => {
    const central = trainRecipe(parseTrainArgs([]), GRAY28);
    assert.deepEqual(central.model, { encoder: 'convnet-s', widths: [32, 64, 512], head: { hidden: 512, out: 128 }, input: GRAY28 });
    assert.deepEqual(central.augment, { viewSize: 16, cropMin: 0.4, strength: 0.5 });
    assert.deepEqual([central.optimizer, central.learningRate, central.batchSize, central.temperature, central.loss, central.weightDecay], ['adam', 4e-3, 64, 0.2, 'ntxent', 0]);
    assert.deepEqual(RECIPE_DEFAULTS.centralSchedule, { warmupFraction: 0.02, finalFraction: 0 });
    const federated = coordinatorRecipe(parseCoordinatorArgs([]));
    assert.equal(federated.augment.viewSize, 20);
    assert.deepEqual(federated.lrSchedule, { kind: 'cosine', finalFraction: 0.05 });
    assert.equal(federated.serverLr, 2);
    assert.equal(federated.localEpochs, 1);
    assert.deepEqual(defaultRecipe(RGB32, 'central').model, { encoder: 'resnet-s', widths: [32, 64, 128, 256], head: { hidden: 256, out: 128 }, input: RGB32 });
    assert.deepEqual(defaultRecipe(RGB32, 'central').augment, { viewSize: 32, cropMin: 0.08, strength: 0.5 });
  });

  it("the coordinator library's training defaults are the recipe's", () => {
    const { training } = resolveConfig({ stateDir: 'x' });
    const r = defaultRecipe(GRAY28, 'federated');
    assert.deepEqual(
      { batchSize: training.batchSize, learningRate: training.learningRate, optimizer: training.optimizer, loss: training.loss, temperature: training.temperature },
      { batchSize: r.batchSize, learningRate: r.learningRate, optimizer: r.optimizer, loss: r.loss, temperature: r.temperature },
    );
  });
});

describe('one loss list, and each loss with the same defaults, in train, coordinator, simulate and on the wire', () => {
  it('the recipe, the protocol and the coordinator library share the loss and mining names', () => {
    assert.deepEqual([...LOSSES], [...RECIPE_LOSSES]);
    assert.deepEqual([...MININGS], [...RECIPE_MININGS]);
    assert.deepEqual([...RECIPE_LOSSES], ['ntxent', 'dcl', 'moco', 'triplet', 'margin', 'supcon']);
  });

  it('--loss L gives the loss with its own defaults in every command and in the coordinator library', () => {
    for (const loss of RECIPE_LOSSES) {
      const expected = defaultLossRecipe(loss);
      const flags = ['--loss', loss];
      assert.deepEqual(lossOf(trainRecipe(parseTrainArgs(flags), GRAY28)), expected, `train --loss ${loss}`);
      assert.deepEqual(lossOf(coordinatorRecipe(parseCoordinatorArgs(flags))), expected, `coordinator --loss ${loss}`);
      assert.deepEqual(lossOf(simulateRecipe(parseSimulateArgs(flags))), expected, `simulate --loss ${loss}`);
      assert.deepEqual(lossOf(resolveConfig({ stateDir: 'x', training: { loss } }).training as LossRecipe), expected, `the coordinator library's training.loss ${loss}`);
      assert.deepEqual(trainRecipe(parseTrainArgs(flags), GRAY28), defaultRecipe(GRAY28, 'central', loss), 'nothing else changes');
    }
    const tuned = ['--loss', 'triplet', '--margin', '0.5', '--mining', 'hard'];
    for (const r of [trainRecipe(parseTrainArgs(tuned), GRAY28), coordinatorRecipe(parseCoordinatorArgs(tuned)), simulateRecipe(parseSimulateArgs(tuned))]) {
      assert.deepEqual(lossOf(r), { loss: 'triplet', temperature: RECIPE_DEFAULTS.temperature, margin: 0.5, mining: 'hard' });
    }
    assert.deepEqual(lossOf(coordinatorRecipe(parseCoordinatorArgs([]), { training: { loss: 'margin', margin: 0.8 } })), { loss: 'margin', temperature: RECIPE_DEFAULTS.temperature, margin: 0.8 }, '--config training.loss and margin');
  });

  it("takes moco in every command (MoCo trains: its momentum and queue beside the loss's flags), and refuses parameters a loss does not use", () => {
    for (const r of [trainRecipe(parseTrainArgs(['--loss', 'moco']), GRAY28), coordinatorRecipe(parseCoordinatorArgs(['--loss', 'moco'])), simulateRecipe(parseSimulateArgs(['--loss', 'moco']))]) {
      assert.equal(r.loss, 'moco');
      assert.equal(r.temperature, RECIPE_DEFAULTS.losses.moco.temperature);
      assert.deepEqual(r.moco, RECIPE_DEFAULTS.moco);
    }
    assert.throws(() => trainRecipe(parseTrainArgs(['--loss', 'moco', '--margin', '0.2']), GRAY28), /--margin goes with --loss triplet, margin; --loss moco does not use it/);
    assert.throws(() => trainRecipe(parseTrainArgs(['--loss', 'triplet', '--moco-momentum', '0.9']), GRAY28), /--moco-momentum goes with --loss moco; --loss triplet does not use it/);
    assert.throws(() => coordinatorRecipe(parseCoordinatorArgs(['--loss', 'margin', '--mining', 'hard'])), /--mining goes with --loss triplet; --loss margin does not use it/);
    assert.throws(() => simulateRecipe(parseSimulateArgs(['--loss', 'triplet', '--temperature', '0.1'])), /--temperature goes with --loss ntxent, dcl, moco, supcon; --loss triplet does not use it/);
  });

  it('every help text lists the losses and their defaults', async () => {
    for (const command of ['train', 'coordinator', 'simulate']) {
      const text = await help(command);
      assert.match(text, /--loss ntxent\|dcl\|moco\|triplet\|margin\|supcon/);
      assert.match(text, /triplet: --margin 0\.2 --mining semi-hard; margin: margin\s+contrastive, --margin 1; supcon: Supervised Contrastive, --temperature 0\.1/);
      assert.match(text, /--mining all\|hard\|semi-hard/);
    }
    assert.match(await help('agent'), /--labels folders\|dataset/);
  });
});

describe('one meaning per flag', () => {
  it('--optimizer sgd is plain SGD and --optimizer momentum Nesterov momentum 0.9, in every command', () => {
    for (const [kind, expected] of [
      ['sgd', { kind: 'sgd', momentum: 0, weightDecay: 0 }],
      ['momentum', { kind: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 0 }],
    ] as const) {
      const recipes = [trainRecipe(parseTrainArgs(['--optimizer', kind]), GRAY28), coordinatorRecipe(parseCoordinatorArgs(['--optimizer', kind])), simulateRecipe(parseSimulateArgs(['--optimizer', kind]))];
      for (const r of recipes) {
        assert.equal(r.optimizer, kind);
        assert.equal(r.learningRate, RECIPE_DEFAULTS.learningRates[kind]);
        assert.deepEqual(recipeOptimizer(r.optimizer, r.weightDecay), expected);
      }
    }
  });

  it('the same recipe flags give the same recipe in train, coordinator and simulate', () => {
    const flags = ['--widths', '16,32,64', '--view-size', '12', '--crop-min', '0.3', '--strength', '0.7', '--batch', '32', '--lr', '0.002', '--temperature', '0.3', '--weight-decay', '0.0001'];
    const train = trainRecipe(parseTrainArgs(flags), GRAY28);
    const coordinator = coordinatorRecipe(parseCoordinatorArgs(flags));
    const simulate = simulateRecipe(parseSimulateArgs(flags));
    assert.deepEqual(train.augment, { viewSize: 12, cropMin: 0.3, strength: 0.7 });
    assert.deepEqual(train.model.widths, [16, 32, 64]);
    assert.deepEqual(train.model.head, { hidden: 64, out: 128 });
    for (const r of [coordinator, simulate]) assert.deepEqual({ ...local(r), augment: r.augment }, { ...local(train), augment: train.augment });
  });

  it("fedclr coordinator: --config's model, training, lrSchedule and strategy come between the recipe and the flags", () => {
    const file = { model: { widths: [8, 16, 32] }, training: { batchSize: 32, learningRate: 0.01 }, lrSchedule: { kind: 'cosine' as const, finalFraction: 0.2 }, strategy: { name: 'fedavg' as const, lr: 1 } };
    const fromFile = coordinatorRecipe(parseCoordinatorArgs([]), file);
    assert.deepEqual([fromFile.model.widths, fromFile.batchSize, fromFile.learningRate, fromFile.lrSchedule, fromFile.serverLr], [[8, 16, 32], 32, 0.01, { kind: 'cosine', finalFraction: 0.2 }, 1]);
    assert.equal(fromFile.temperature, RECIPE_DEFAULTS.temperature, 'what the file does not set stays the recipe default');
    const flags = coordinatorRecipe(parseCoordinatorArgs(['--batch', '16', '--server-lr', '3', '--lr-schedule', 'constant']), file);
    assert.deepEqual([flags.batchSize, flags.serverLr, flags.lrSchedule, flags.learningRate], [16, 3, { kind: 'constant' }, 0.01]);
    // Another strategy keeps its own server step.
    assert.equal(coordinatorRecipe(parseCoordinatorArgs(['--strategy', 'fedadam'])).serverLr, 0.1);
  });

  it('every help text states the recipe defaults', async () => {
    const train = await help('train');
    const coordinator = await help('coordinator');
    const simulate = await help('simulate');
    for (const text of [train, coordinator, simulate]) {
      assert.match(text, /--batch 64 --lr 0\.004 --temperature 0\.2 --weight-decay 0/);
      assert.match(text, /adam \(default\); sgd: plain SGD; momentum: SGD with Nesterov momentum 0\.9/);
      assert.match(text, /default 0\.4 grayscale, 0\.08 RGB/);
    }
    assert.match(train, /default 4\/7 of the side for grayscale, 16 px for 28 px images/);
    for (const text of [coordinator, simulate]) {
      assert.match(text, /default 5\/7 of the side for grayscale, 20 px for 28 px images/);
      assert.match(text, /default 2 with fedavg|defaults: fedavg 2/);
    }
    assert.doesNotMatch(await help('agent'), /as fedclr train|must match/);
  });
});

function waitFor(stream: NodeJS.ReadableStream, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; got:\n${text}`)), timeoutMs);
    stream.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (pattern.test(text)) {
        clearTimeout(timer);
        resolve(text);
      }
    });
  });
}

/** The coordinator's key line and its (asynchronously written) recipe log line, in either order. */
const BANNER = /^(?=[\s\S]*coordinator public key [0-9a-f]{64})(?=[\s\S]*"msg":"the training recipe, sent to the agents with every round"\}\n)/;

/** The first pino JSON line of `text` whose msg is `msg`. */
function logLine(text: string, msg: string): Record<string, unknown> {
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as Record<string, unknown>;
    if (entry['msg'] === msg) return entry;
  }
  throw new Error(`no log line '${msg}' in:\n${text}`);
}


describe('fedclr agent trains the recipe its coordinator sent', () => {
  it('a coordinator with a non-default recipe, an agent with no recipe flag: the agent trains exactly that recipe', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedclr-recipe-'));
    const started: ChildProcess[] = [];
    const start = (args: string[]): { child: ChildProcess; stdout: () => string; stderr: () => string; exit: Promise<number | null> } => {
      const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      started.push(child);
      let out = '';
      let err = '';
      child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
      return { child, stdout: () => out, stderr: () => err, exit: new Promise((r) => child.once('exit', (code) => r(code))) };
    };
    const recipeFlags = ['--widths', '8,16,32', '--view-size', '12', '--crop-min', '0.5', '--strength', '0.3', '--batch', '16', '--lr', '0.01', '--temperature', '0.3', '--optimizer', 'momentum', '--weight-decay', '0.0001', '--lr-schedule', 'constant'];
    try {
      const coordinator = start(['coordinator', '--state', join(dir, 'c'), '--port', '0', '--open-enrolment', '--aggregation', 'plain', '--min-cohort', '1', '--rounds', '1', '--deadline', '120', '--log-level', 'info', '--json', ...recipeFlags]);
      const banner = await waitFor(coordinator.child.stderr as NodeJS.ReadableStream, BANNER, 30_000);
      const key = /coordinator public key ([0-9a-f]{64})/.exec(banner)?.[1] as string;
      const sent = logLine(banner, 'the training recipe, sent to the agents with every round');
      const url = sent['url'] as string;
      const expected = coordinatorRecipe(parseCoordinatorArgs(recipeFlags));
      assert.deepEqual(sent['recipe'], expected, 'the coordinator runs the recipe its flags ask for');
      const agent = start([
        'agent', '--coordinator', url, '--coordinator-key', key, '--allow-plain', '--min-cohort', '1', '--dataset', 'fashion-mnist', '--client', '0/1', '--limit', '64',
        '--state', join(dir, 'a'), '--workers', '0', '--steps-per-round', '1', '--log-level', 'info', '--json',
      ]);
      assert.equal(await coordinator.exit, 0, coordinator.stderr());
      const summary = JSON.parse(coordinator.stdout().trim().split('\n').pop() as string) as { completedRounds: number };
      assert.equal(summary.completedRounds, 1, 'the round the agent trained completed');
      assert.equal(await agent.exit, 0, agent.stderr());
      const plan = logLine(agent.stderr(), "training the coordinator's recipe");
      const { lrSchedule: _s, serverLr: _l, localEpochs: _e, ...localRecipe } = expected;
      assert.deepEqual(plan['recipe'], localRecipe, 'the agent trained exactly the recipe the coordinator sent');
      assert.equal(plan['model'], 'convnet-s-8-16-32+mlp32-128');
    } finally {
      for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a coordinator's supcon recipe: an agent without labels refuses the round and the coordinator records why", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedclr-recipe-'));
    const started: ChildProcess[] = [];
    const start = (args: string[]): { child: ChildProcess; stderr: () => string } => {
      const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      started.push(child);
      let err = '';
      child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
      return { child, stderr: () => err };
    };
    try {
      const coordinator = start(['coordinator', '--state', join(dir, 'c'), '--port', '0', '--open-enrolment', '--aggregation', 'plain', '--min-cohort', '1', '--rounds', '1', '--deadline', '120', '--log-level', 'info', '--loss', 'supcon', '--widths', '4,8,8', '--batch', '8']);
      const banner = await waitFor(coordinator.child.stderr as NodeJS.ReadableStream, BANNER, 30_000);
      const key = /coordinator public key ([0-9a-f]{64})/.exec(banner)?.[1] as string;
      const sent = logLine(banner, 'the training recipe, sent to the agents with every round');
      assert.deepEqual([(sent['recipe'] as Recipe).loss, (sent['recipe'] as Recipe).temperature], ['supcon', 0.1]);
      const url = sent['url'] as string;
      const agent = start(['agent', '--coordinator', url, '--coordinator-key', key, '--allow-plain', '--min-cohort', '1', '--dataset', 'fashion-mnist', '--client', '0/1', '--limit', '64', '--state', join(dir, 'a'), '--workers', '0', '--log-level', 'info']);
      // The round fails without the agent's update; the reason it gave is the participant's.
      let reason: string | undefined;
      for (let i = 0; i < 600 && reason === undefined; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const rounds = (await (await fetch(`${url}/api/rounds`)).json()) as { items: { roundId: number }[] };
        for (const { roundId } of rounds.items) {
          const detail = (await (await fetch(`${url}/api/rounds/${roundId}`)).json()) as { participants: { reason: string | null }[] };
          reason = detail.participants.find((p) => p.reason !== null)?.reason ?? undefined;
        }
      }
      assert.match(reason ?? '(none recorded)', /^FEDCLR_AGENT_RECIPE_REFUSED: Round \d+: this agent cannot run the coordinator's training recipe: loss 'supcon' needs class labels and this agent trains without them/);
      assert.match(agent.stderr(), /"msg":"round refused"/);
    } finally {
      for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fedclr agent --coordinator URL --data DIR needs nothing else: it reads its PNG folder at the size the coordinator sent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedclr-recipe-'));
    const started: ChildProcess[] = [];
    const start = (args: string[]): { child: ChildProcess; stdout: () => string; stderr: () => string; exit: Promise<number | null> } => {
      const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      started.push(child);
      let out = '';
      let err = '';
      child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
      return { child, stdout: () => out, stderr: () => err, exit: new Promise((r) => child.once('exit', (code) => r(code))) };
    };
    try {
      const photos = join(dir, 'photos', 'nested');
      mkdirSync(photos, { recursive: true });
      // 12 images of 24 px: stripes of different periods and phases.
      for (let i = 0; i < 12; i++) writeFileSync(join(photos, `img-${i}.png`), grayPng(24, 24, (x, y) => (((x + i) >> (i % 3)) + y * (i % 4)) % 2 === 0 ? 220 : 30));
      const coordinator = start([
        'coordinator', '--state', join(dir, 'c'), '--port', '0', '--open-enrolment', '--aggregation', 'plain', '--min-cohort', '1', '--rounds', '1', '--deadline', '120', '--log-level', 'info', '--json',
        '--size', '16', '--channels', '1', '--widths', '4,8,8', '--view-size', '12', '--batch', '8',
      ]);
      const banner = await waitFor(coordinator.child.stderr as NodeJS.ReadableStream, BANNER, 30_000);
      const key = /coordinator public key ([0-9a-f]{64})/.exec(banner)?.[1] as string;
      const url = logLine(banner, 'the training recipe, sent to the agents with every round')['url'] as string;
      const agent = start(['agent', '--coordinator', url, '--coordinator-key', key, '--allow-plain', '--min-cohort', '1', '--data', join(dir, 'photos'), '--state', join(dir, 'a'), '--workers', '0', '--steps-per-round', '1', '--log-level', 'info', '--json']);
      assert.equal(await coordinator.exit, 0, coordinator.stderr());
      assert.equal((JSON.parse(coordinator.stdout().trim().split('\n').pop() as string) as { completedRounds: number }).completedRounds, 1);
      assert.equal(await agent.exit, 0, agent.stderr());
      assert.deepEqual(logLine(agent.stderr(), "reading the image folder at the coordinator's input size")['input'], { height: 16, width: 16, channels: 1 });
      const plan = logLine(agent.stderr(), "training the coordinator's recipe") as { recipe: { model: { input: unknown; widths: number[] }; augment: { viewSize: number } } };
      assert.deepEqual(plan.recipe.model.input, { height: 16, width: 16, channels: 1 });
      assert.deepEqual(plan.recipe.model.widths, [4, 8, 8]);
      assert.equal(plan.recipe.augment.viewSize, 12);
      assert.equal((JSON.parse(agent.stdout().trim().split('\n').pop() as string) as { images: number }).images, 12);
    } finally {
      for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
