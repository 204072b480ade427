// The contrastive LocalTrainer on a tiny dataset: it trains (the weights change), counts the
// images it trained on, honours the abort signal, refuses rounds it cannot do, does FedProx, and
// trains only while holding its gate's slot.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { convnetS, initialState, recipeAugmentConfig, recipeModelSpec, withProjectionHead } from '@fedclr/contrastive';
import type { ImageDataset } from '@fedclr/data';
import type { RoundConfig, RoundRecipe } from '@fedclr/protocol';
import { initBackend, manifestOfSpec } from '@fedclr/tensor';
import type { Logger } from 'pino';
import { createContrastiveTrainer, protocolManifest, roundRecipe, wireRecipe, type TrainingPlan } from '../src/contrastive-trainer.js';
import { isAgentError } from '../src/errors.js';
import type { TrainingGate } from '../src/trainer.js';

function dataset(count: number): ImageDataset {
  let s = 91;
  const images = new Uint8Array(count * 12 * 12).map(() => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s >>> 24));
  return { images, labels: null, count, height: 12, width: 12, channels: 1, classNames: [] };
}

const spec = withProjectionHead(convnetS({ height: 12, width: 12, channels: 1, widths: [4, 8, 8] }), 8, { hidden: 8, out: 8 });
const manifest = protocolManifest(spec);

const CONFIG: RoundConfig = {
  localEpochs: 1,
  batchSize: 8,
  learningRate: 0.01,
  optimizer: 'adam',
  loss: 'ntxent',
  temperature: 0.5,
  fedproxMu: 0,
  clipNorm: 0,
  deadlineMs: 60_000,
  aggregation: 'plain',
  cohortSize: 3,
  seed: 5,
};

const augment = { crop: { scale: [0.5, 1] as [number, number] }, flip: { p: 0.5 } };

describe('createContrastiveTrainer', () => {
  let global: Float32Array;
  before(async () => {
    await initBackend({ prefer: 'wasm' });
    global = initialState(spec, 3).params;
  });

  it('trains the global weights for the round and reports images, loss, steps and speed', async () => {
    const trainer = createContrastiveTrainer({ dataset: dataset(20), spec, augment });
    const progress: number[] = [];
    const input = global.slice();
    const out = await trainer.train({ round: 1, globalWeights: input, manifest, config: CONFIG }, new AbortController().signal, (f) => progress.push(f));
    assert.equal(out.weights.length, global.length);
    let changed = 0;
    for (let i = 0; i < global.length; i++) if (out.weights[i] !== global[i]) changed++;
    assert.ok(changed > global.length / 2, `only ${changed} of ${global.length} weights changed`);
    // 20 images, batch 8: one epoch is 2 steps (the remainder is dropped)
    assert.equal(out.metrics['steps'], 2);
    assert.equal(out.exampleCount, 16);
    assert.equal(out.metrics['epochs'], 1);
    assert.ok(Number.isFinite(out.metrics['loss']) && (out.metrics['loss'] as number) > 0);
    assert.ok((out.metrics['imagesPerSec'] as number) > 0);
    assert.ok((out.metrics['trainMs'] as number) >= 0 && (out.metrics['setupMs'] as number) >= 0);
    assert.deepEqual(progress, [0.5, 1]);
  });

  it('stops at the per-round step cap and caps the batch at the local image count', async () => {
    const trainer = createContrastiveTrainer({ dataset: dataset(6), spec, augment, maxStepsPerRound: 1 });
    const out = await trainer.train({ round: 2, globalWeights: global.slice(), manifest, config: { ...CONFIG, localEpochs: 5 } }, new AbortController().signal);
    assert.equal(out.metrics['steps'], 1);
    assert.equal(out.metrics['batchSize'], 6);
    assert.equal(out.exampleCount, 6);
  });

  it('rejects when aborted before or during training', async () => {
    const trainer = createContrastiveTrainer({ dataset: dataset(40), spec, augment });
    const early = new AbortController();
    early.abort(new Error('deadline'));
    await assert.rejects(trainer.train({ round: 3, globalWeights: global.slice(), manifest, config: CONFIG }, early.signal), /deadline/);

    const during = new AbortController();
    let steps = 0;
    const started = trainer.train({ round: 4, globalWeights: global.slice(), manifest, config: { ...CONFIG, localEpochs: 50 } }, during.signal, () => {
      if (++steps === 1) during.abort();
    });
    await assert.rejects(started, (err) => isAgentError(err, 'FEDCLR_AGENT_ROUND_ABORTED'));
    assert.equal(steps, 1);
  });

  it('refuses a mismatched model, a loss this build does not train, and a loss that needs labels it does not use', async () => {
    const trainer = createContrastiveTrainer({ dataset: dataset(20), spec, augment });
    const signal = new AbortController().signal;
    const other = protocolManifest(withProjectionHead(convnetS({ height: 12, width: 12, channels: 1, widths: [4, 8, 16] }), 16, { hidden: 8, out: 8 }));
    await assert.rejects(trainer.train({ round: 5, globalWeights: global.slice(), manifest: other, config: CONFIG }, signal), (err) => isAgentError(err, 'FEDCLR_AGENT_ROUND_UNSUPPORTED') && /model mismatch/.test((err as Error).message));
    const refused = (pattern: RegExp) => (err: unknown) => isAgentError(err, 'FEDCLR_AGENT_RECIPE_REFUSED') && pattern.test((err as Error).message);
    await assert.rejects(trainer.train({ round: 6, globalWeights: global.slice(), manifest, config: { ...CONFIG, loss: 'supcon', temperature: 0.1 } }, signal), refused(/loss 'supcon' needs class labels and this agent trains without them/));
    // Labels are opt-in, and then the images must have them.
    assert.throws(() => createContrastiveTrainer({ dataset: dataset(20), spec, useLabels: true }), (err) => isAgentError(err, 'FEDCLR_AGENT_CONFIG_INVALID') && /labelled images/.test((err as Error).message));
    assert.throws(() => createContrastiveTrainer({ dataset: { ...dataset(4), height: 28, width: 28 }, spec }), (err) => isAgentError(err, 'FEDCLR_AGENT_CONFIG_INVALID'));
  });

  it('trains the round\'s loss: supcon on its labels when it opts in; triplet label-aware with labels, label-free without; moco label-free', async () => {
    const labelled = { ...dataset(16), labels: Uint8Array.from({ length: 16 }, (_, i) => i % 3), classNames: ['a', 'b', 'c'] };
    const plans: TrainingPlan[] = [];
    const withLabels = createContrastiveTrainer({ dataset: labelled, spec, augment, useLabels: true, onPlan: (p) => plans.push(p) });
    const withoutLabels = createContrastiveTrainer({ dataset: labelled, spec, augment, onPlan: (p) => plans.push(p) });
    const signal = new AbortController().signal;
    const round = (trainer: ReturnType<typeof createContrastiveTrainer>, config: RoundConfig) => trainer.train({ round: 7, globalWeights: global.slice(), manifest, config }, signal);
    const supcon = await round(withLabels, { ...CONFIG, loss: 'supcon', temperature: 0.1 });
    assert.equal(supcon.metrics['steps'], 2);
    const triplet: RoundConfig = { ...CONFIG, loss: 'triplet', margin: 0.2, mining: 'semi-hard' };
    const aware = await round(withLabels, triplet);
    const free = await round(withoutLabels, triplet);
    // MoCo trains (label-free: an agent that opts in to its labels does not use them for it).
    const moco = await round(withLabels, { ...CONFIG, loss: 'moco', temperature: 0.2 });
    assert.equal(moco.metrics['steps'], 2);
    assert.equal(moco.metrics['mocoQueued'], 0, 'the first MoCo round of a run starts with an empty queue');
    assert.ok(Number.isFinite(moco.metrics['loss']));
    assert.deepEqual(plans.map((p) => [p.loss.loss, p.labelled]), [['supcon', true], ['triplet', true], ['triplet', false], ['moco', false]]);
    assert.deepEqual(plans[1]?.loss, { loss: 'triplet', temperature: 0.5, margin: 0.2, mining: 'semi-hard' });
    let differ = 0;
    for (let i = 0; i < global.length; i++) differ = Math.max(differ, Math.abs((aware.weights[i] as number) - (free.weights[i] as number)));
    assert.ok(differ > 1e-5, 'label-aware and label-free triplet trained the same weights: the labels were not used');
    assert.ok(Number.isFinite(aware.metrics['loss']) && Number.isFinite(free.metrics['loss']));
  });

  it('trains with FedProx (fedproxMu > 0): each step is pulled towards the global weights by lr·mu·(w - global)', async () => {
    // Plain SGD (momentum 0), so a step is w - lr·g; 16 images of batch 8: a round is 2 steps.
    const sgd: RoundConfig = { ...CONFIG, optimizer: 'sgd', learningRate: 0.05 };
    const mu = 4;
    const signal = new AbortController().signal;
    const round = (trainer: ReturnType<typeof createContrastiveTrainer>, config: RoundConfig) => trainer.train({ round: 8, globalWeights: global.slice(), manifest, config }, signal);
    const trainer = createContrastiveTrainer({ dataset: dataset(16), spec, augment });
    const afterOneStep = (await round(createContrastiveTrainer({ dataset: dataset(16), spec, augment, maxStepsPerRound: 1 }), sgd)).weights;
    const plain = (await round(trainer, sgd)).weights;
    const prox = await round(trainer, { ...sgd, fedproxMu: mu });
    assert.equal(prox.metrics['steps'], 2);
    assert.equal(prox.exampleCount, 16);
    // Step 1 starts at the global weights (no pull); step 2 sees the same loss gradient in both
    // runs, plus, with FedProx, mu·(w1 - global) on trainable weights only.
    const trainable = manifestOfSpec(spec).tensors.flatMap((t) => Array.from({ length: t.shape.reduce((a, b) => a * b, 1) }, () => t.trainable));
    let largest = 0;
    for (let i = 0; i < global.length; i++) {
      const pull = trainable[i] ? 0.05 * mu * ((afterOneStep[i] as number) - (global[i] as number)) : 0;
      largest = Math.max(largest, Math.abs(pull));
      const expected = (plain[i] as number) - pull;
      assert.ok(Math.abs((prox.weights[i] as number) - expected) < 1e-5, `weight ${i} (${trainable[i] ? 'trainable' : 'statistic'}): ${prox.weights[i]} vs ${expected}`);
    }
    assert.ok(largest > 1e-3, `the pull is measurable (largest ${largest})`);
  });

  describe('with a training gate', () => {
    /** A gate that grants after `waitMs` (or only on abort: never) and records what happens. */
    function recordingGate(waitMs: number | 'never'): TrainingGate & { log: string[]; released: { trainMs: number }[] } {
      const log: string[] = [];
      const released: { trainMs: number }[] = [];
      return {
        log,
        released,
        acquire(signal) {
          log.push('acquire');
          return new Promise((resolve, reject) => {
            const onAbort = (): void => {
              clearTimeout(timer);
              log.push('withdrawn');
              reject(signal.reason as Error);
            };
            const grant = (): void => {
              signal.removeEventListener('abort', onAbort);
              log.push('granted');
              resolve({
                release(report) {
                  log.push('release');
                  released.push(report);
                },
              });
            };
            const timer = waitMs === 'never' ? undefined : setTimeout(grant, waitMs);
            signal.addEventListener('abort', onAbort, { once: true });
          });
        },
      };
    }

    it('trains while holding the slot, releases it with the loop time, and counts the wait only as slotWaitMs', async () => {
      const gate = recordingGate(300);
      const trainer = createContrastiveTrainer({ dataset: dataset(20), spec, augment, gate });
      const progress: string[] = [];
      const started = performance.now();
      const out = await trainer.train({ round: 9, globalWeights: global.slice(), manifest, config: CONFIG }, new AbortController().signal, () => progress.push(gate.log.join(',')));
      const elapsed = performance.now() - started;
      assert.deepEqual(gate.log, ['acquire', 'granted', 'release']);
      assert.ok(progress.every((p) => p === 'acquire,granted'), 'every step ran while the slot was held');
      assert.deepEqual(gate.released, [{ trainMs: out.metrics['trainMs'] }]);
      const { trainMs, setupMs, slotWaitMs } = out.metrics as Record<string, number>;
      assert.ok((slotWaitMs as number) >= 290, `slotWaitMs ${slotWaitMs}`);
      assert.ok((trainMs as number) + (setupMs as number) <= elapsed - (slotWaitMs as number) + 2, `train ${trainMs} + setup ${setupMs} + wait ${slotWaitMs} vs ${elapsed.toFixed(0)} ms in all`);
      assert.equal(out.metrics['steps'], 2);
    });

    it('releases the slot when training fails or is aborted, and withdraws when aborted while waiting', async () => {
      const failing = recordingGate(0);
      const trainer = createContrastiveTrainer({ dataset: dataset(20), spec, augment, gate: failing });
      // An invalid learning rate: trainContrastive itself throws, after the slot was granted.
      await assert.rejects(trainer.train({ round: 10, globalWeights: global.slice(), manifest, config: { ...CONFIG, learningRate: -1 } }, new AbortController().signal), /learningRate/);
      assert.deepEqual(failing.log, ['acquire', 'granted', 'release']);
      assert.deepEqual(failing.released, [{ trainMs: 0 }]);

      const aborted = recordingGate(0);
      const during = new AbortController();
      let steps = 0;
      const abortedTrainer = createContrastiveTrainer({ dataset: dataset(40), spec, augment, gate: aborted });
      await assert.rejects(
        abortedTrainer.train({ round: 11, globalWeights: global.slice(), manifest, config: { ...CONFIG, localEpochs: 50 } }, during.signal, () => {
          if (++steps === 1) during.abort();
        }),
        (err) => isAgentError(err, 'FEDCLR_AGENT_ROUND_ABORTED'),
      );
      assert.deepEqual(aborted.log, ['acquire', 'granted', 'release']);
      assert.ok((aborted.released[0]?.trainMs ?? -1) >= 0);

      const never = recordingGate('never');
      const waiting = new AbortController();
      const pending = createContrastiveTrainer({ dataset: dataset(20), spec, augment, gate: never }).train({ round: 12, globalWeights: global.slice(), manifest, config: CONFIG }, waiting.signal);
      setTimeout(() => waiting.abort(new Error('deadline')), 50);
      await assert.rejects(pending, (err) => isAgentError(err, 'FEDCLR_AGENT_ROUND_ABORTED') && /deadline/.test((err as Error).message));
      assert.deepEqual(never.log, ['acquire', 'withdrawn']);
    });

    it('takes the wait off the round budget: the loop still ends before the deadline, or does not start', async () => {
      const budgets: number[] = [];
      const logger = { debug: (o: { minutes?: number }) => o.minutes !== undefined && budgets.push(o.minutes * 60_000) } as unknown as Logger;
      // deadline 1 s x 0.8 = 800 ms for the loop, minus the 400 ms spent waiting for the slot
      const gate = recordingGate(400);
      const trainer = createContrastiveTrainer({ dataset: dataset(20), spec, augment, gate, logger });
      const config: RoundConfig = { ...CONFIG, deadlineMs: 1000, localEpochs: 1_000_000 };
      const out = await trainer.train({ round: 13, globalWeights: global.slice(), manifest, config }, new AbortController().signal);
      assert.equal(budgets.length, 1);
      assert.ok((budgets[0] as number) <= 400 + 1 && (budgets[0] as number) > 0, `budget ${budgets[0]} ms`);
      assert.ok((out.metrics['steps'] as number) >= 1);
      assert.deepEqual(gate.log, ['acquire', 'granted', 'release']);

      // waiting past deadlineFraction of the deadline: no training at all, and the slot is given back
      const late = recordingGate(300);
      const lateTrainer = createContrastiveTrainer({ dataset: dataset(20), spec, augment, gate: late, deadlineFraction: 0.2 });
      await assert.rejects(
        lateTrainer.train({ round: 14, globalWeights: global.slice(), manifest, config }, new AbortController().signal),
        (err) => isAgentError(err, 'FEDCLR_AGENT_TRAINING_FAILED') && /no time left/.test((err as Error).message),
      );
      assert.deepEqual(late.log, ['acquire', 'granted', 'release']);
      assert.deepEqual(late.released, [{ trainMs: 0 }]);
    });
  });
});

describe('createContrastiveTrainer: the round recipe', () => {
  const wire: RoundRecipe = {
    model: { encoder: 'convnet-s', widths: [4, 8, 8], head: { hidden: 8, out: 8 }, input: { height: 12, width: 12, channels: 1 } },
    augment: { viewSize: 8, cropMin: 0.5, strength: 0.3 },
    weightDecay: 0.001,
  };
  const config: RoundConfig = { ...CONFIG, optimizer: 'momentum', recipe: wire };
  let global: Float32Array;
  before(async () => {
    await initBackend({ prefer: 'wasm' });
    global = initialState(spec, 3).params;
  });

  it("builds its model, augmentation and optimizer from the round's recipe and trains exactly that", async () => {
    const plans: TrainingPlan[] = [];
    const shapes: string[] = [];
    const trainer = createContrastiveTrainer({
      dataset: async (input) => {
        shapes.push(`${input.height}x${input.width}x${input.channels}`);
        return dataset(20);
      },
      maxStepsPerRound: 1,
      onPlan: (p) => plans.push(p),
    });
    const out = await trainer.train({ round: 1, globalWeights: global.slice(), manifest, config }, new AbortController().signal);
    assert.equal(out.metrics['steps'], 1);
    await trainer.train({ round: 2, globalWeights: global.slice(), manifest, config }, new AbortController().signal);
    assert.deepEqual(shapes, ['12x12x1'], 'the loader reads the images once, at the recipe input size');
    const plan = plans[0] as TrainingPlan;
    assert.deepEqual(plan.recipe, roundRecipe(config, wire));
    assert.deepEqual(plan.recipe, {
      model: wire.model, augment: wire.augment, optimizer: 'momentum', learningRate: 0.01, weightDecay: 0.001, batchSize: 8, loss: 'ntxent', temperature: 0.5,
    });
    assert.deepEqual(plan.spec, recipeModelSpec(plan.recipe.model));
    assert.deepEqual(protocolManifest(plan.spec), manifest);
    assert.deepEqual(plan.augment, recipeAugmentConfig(wire.augment, 1));
    assert.deepEqual((plan.augment?.crop as { scale: unknown; size: unknown }).scale, [0.5, 1]);
    assert.deepEqual((plan.augment?.crop as { scale: unknown; size: unknown }).size, [8, 8]);
    assert.deepEqual(plan.optimizer, { kind: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 0.001 });
    // The wire form round-trips.
    assert.deepEqual(wireRecipe(plan.recipe), wire);
  });

  it('refuses a recipe it cannot run, naming the problem (FEDCLR_AGENT_RECIPE_REFUSED)', async () => {
    const signal = new AbortController().signal;
    const refused = (pattern: RegExp) => (err: unknown) => isAgentError(err, 'FEDCLR_AGENT_RECIPE_REFUSED') && pattern.test((err as Error).message);
    const fixed = createContrastiveTrainer({ dataset: dataset(20) });
    const train = (trainer: ReturnType<typeof createContrastiveTrainer>, c: RoundConfig) => trainer.train({ round: 7, globalWeights: global.slice(), manifest, config: c }, signal);
    // No recipe, and no fixed spec to fall back on.
    await assert.rejects(train(fixed, CONFIG), refused(/carries no recipe/));
    // A fixed dataset (a simulated client) cannot take another input size.
    const big28 = { ...wire, model: { ...wire.model, input: { height: 28, width: 28, channels: 1 } } };
    const other = protocolManifest(recipeModelSpec({ ...big28.model, encoder: 'convnet-s' }));
    await assert.rejects(fixed.train({ round: 8, globalWeights: new Float32Array(other.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0)), manifest: other, config: { ...config, recipe: big28 } }, signal), refused(/takes 28x28x1 images; this agent's images are 12x12x1/));
    await assert.rejects(train(fixed, { ...config, recipe: { ...wire, model: { ...wire.model, encoder: 'vit' } } }), refused(/recipe\.model\.encoder: expected one of convnet-s, resnet-s, got 'vit'/));
    await assert.rejects(train(fixed, { ...config, recipe: { ...wire, augment: { ...wire.augment, viewSize: 20 } } }), refused(/recipe\.augment\.viewSize: expected an integer between 4 and the image side 12, got 20/));
    await assert.rejects(train(fixed, { ...config, recipe: { ...wire, model: { ...wire.model, widths: [4, 8] } } }), refused(/recipe\.model\.widths/));
    // A recipe whose model is not the round's weights is a model mismatch.
    await assert.rejects(train(fixed, { ...config, recipe: { ...wire, model: { ...wire.model, widths: [4, 8, 16] } } }), (err) => isAgentError(err, 'FEDCLR_AGENT_ROUND_UNSUPPORTED') && /model mismatch/.test((err as Error).message));
  });
});
