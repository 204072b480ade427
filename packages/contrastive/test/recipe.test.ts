// The training recipe: its defaults are the measured ones, it builds the same model and
// augmentation the entry points used before it existed, it refuses what cannot run (naming the
// field), and the README documents every error code of the package.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { initBackend } from '@fedclr/tensor';
import * as errors from '../src/errors.js';
import * as evalErrors from '../src/eval/errors.js';
import {
  checkRecipe,
  isMocoLoss,
  RECIPE_DEFAULTS,
  recipePairLoss,
  contrastiveModel,
  defaultLossRecipe,
  describeLoss,
  RECIPE_LOSS_LABELS,
  RECIPE_LOSSES,
  recipeLoss,
  convnetS,
  defaultFederatedRecipe,
  defaultRecipe,
  gray28Config,
  recipeAugmentConfig,
  recipeModelSpec,
  recipeOptimizer,
  simclrRgbConfig,
  withProjectionHead,
  type Recipe,
} from '../src/index.js';

const GRAY28 = { height: 28, width: 28, channels: 1 };
const RGB32 = { height: 32, width: 32, channels: 3 };

function code(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: Error & { code?: string }) => err.code === 'FEDCLR_CONTRASTIVE_INVALID_RECIPE' && pattern.test(err.message));
}

describe('the training recipe', () => {
  it('central and federated defaults differ only in the view size (16 px vs 20 px for 28 px grayscale)', () => {
    const central = defaultRecipe(GRAY28, 'central');
    const federated = defaultFederatedRecipe(GRAY28);
    assert.equal(central.augment.viewSize, 16);
    assert.equal(federated.augment.viewSize, 20);
    const { lrSchedule, serverLr, localEpochs, ...local } = federated;
    assert.deepEqual({ ...local, augment: { ...local.augment, viewSize: 16 } }, central);
    assert.deepEqual([lrSchedule, serverLr, localEpochs], [{ kind: 'cosine', finalFraction: 0.05 }, 2, 1]);
    assert.deepEqual(defaultRecipe(RGB32, 'federated').augment, { viewSize: 32, cropMin: 0.08, strength: 0.5 });
  });

  it('builds the models the commands built before the recipe existed', () => {
    assert.deepEqual(recipeModelSpec(defaultRecipe(GRAY28, 'central').model), contrastiveModel('convnet-s', GRAY28));
    assert.deepEqual(recipeModelSpec(defaultRecipe(RGB32, 'central').model), contrastiveModel('resnet-s', RGB32));
    const narrow = { ...defaultRecipe(GRAY28, 'central').model, widths: [8, 16, 32], head: { hidden: 32, out: 128 } };
    assert.deepEqual(recipeModelSpec(narrow), withProjectionHead(convnetS({ ...GRAY28, widths: [8, 16, 32] }), 32, { hidden: 32, out: 128 }));
  });

  it("builds the augmentation train used before (gray: crops of 40-100% at the view size; RGB: SimCLR's without blur)", () => {
    const gray = recipeAugmentConfig(defaultRecipe(GRAY28, 'central').augment, 1);
    const g = gray28Config();
    assert.deepEqual(gray, { ...g, crop: { ...(g.crop as object), scale: [0.4, 1], size: [16, 16] } });
    const rgb = recipeAugmentConfig(defaultRecipe(RGB32, 'central').augment, 3);
    const r = simclrRgbConfig({ strength: 0.5, blur: false });
    assert.deepEqual(rgb, { ...r, crop: { ...(r.crop as object), scale: [0.08, 1], size: [32, 32] } });
  });

  it('gives each optimizer name one meaning', () => {
    assert.deepEqual(recipeOptimizer('adam', 0.1), { kind: 'adam', weightDecay: 0.1 });
    assert.deepEqual(recipeOptimizer('sgd', 0), { kind: 'sgd', momentum: 0, weightDecay: 0 });
    assert.deepEqual(recipeOptimizer('momentum', 0), { kind: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 0 });
  });

  it('refuses a recipe it cannot run, naming the field (FEDCLR_CONTRASTIVE_INVALID_RECIPE)', () => {
    const ok = defaultRecipe(GRAY28, 'federated');
    checkRecipe(ok);
    const bad = (patch: (r: Recipe) => Recipe, pattern: RegExp) => code(() => checkRecipe(patch(ok)), pattern);
    bad((r) => ({ ...r, model: { ...r.model, encoder: 'vit' as 'convnet-s' } }), /model\.encoder: expected one of convnet-s, resnet-s, got 'vit'/);
    bad((r) => ({ ...r, model: { ...r.model, widths: [32, 64] } }), /model\.widths: expected 3 integers/);
    bad((r) => ({ ...r, model: { ...r.model, input: { ...r.model.input, channels: 2 } } }), /model\.input\.channels: expected 1 or 3, got 2/);
    bad((r) => ({ ...r, augment: { ...r.augment, viewSize: 29 } }), /augment\.viewSize: expected an integer between 4 and the image side 28, got 29/);
    bad((r) => ({ ...r, augment: { ...r.augment, cropMin: 0 } }), /augment\.cropMin/);
    bad((r) => ({ ...r, optimizer: 'rmsprop' as 'adam' }), /optimizer: expected one of adam, sgd, momentum/);
    bad((r) => ({ ...r, loss: 'infonce' as 'ntxent' }), /loss: expected one of ntxent, dcl, moco, triplet, margin, supcon, got 'infonce'/);
    bad((r) => ({ ...r, loss: 'triplet' }), /margin: expected a number in \[0, 4\] for loss 'triplet', got undefined/);
    bad((r) => ({ ...r, loss: 'triplet', margin: 0.2 }), /mining: expected one of all, hard, semi-hard for loss 'triplet'/);
    bad((r) => ({ ...r, loss: 'margin', margin: 5 }), /margin: expected a number in \[0, 4\]/);
    bad((r) => ({ ...r, margin: 0.2 }), /margin: loss 'ntxent' takes no margin/);
    bad((r) => ({ ...r, loss: 'margin', margin: 1, mining: 'hard' }), /mining: loss 'margin' takes no mining/);
    bad((r) => ({ ...r, loss: 'supcon', temperature: 0 }), /temperature: expected a number in \(0, 100\]/);
    checkRecipe({ ...ok, loss: 'moco', moco: { momentum: 0, queueSize: 0 } });
    bad((r) => ({ ...r, loss: 'moco', moco: { momentum: 1, queueSize: 4096 } }), /moco\.momentum: expected a number in \[0, 1\)/);
    bad((r) => ({ ...r, loss: 'moco', moco: { momentum: 0.99, queueSize: 65537 } }), /moco\.queueSize/);
    bad((r) => ({ ...r, batchSize: 1 }), /batchSize/);
    code(() => recipeModelSpec({ ...ok.model, head: { hidden: 0, out: 8 } }), /model\.head/);
  });
});

describe('the losses of the recipe', () => {
  it('one name list; each loss with its own defaults (margin and mining only where they apply)', () => {
    assert.deepEqual([...RECIPE_LOSSES], ['ntxent', 'dcl', 'moco', 'triplet', 'margin', 'supcon']);
    assert.deepEqual(defaultLossRecipe('ntxent'), { loss: 'ntxent', temperature: 0.2 });
    assert.deepEqual(defaultLossRecipe('dcl'), { loss: 'dcl', temperature: 0.2 });
    assert.deepEqual(defaultLossRecipe('supcon'), { loss: 'supcon', temperature: 0.1 });
    assert.deepEqual(defaultLossRecipe('triplet'), { loss: 'triplet', temperature: 0.2, margin: 0.2, mining: 'semi-hard' });
    assert.deepEqual(defaultLossRecipe('margin'), { loss: 'margin', temperature: 0.2, margin: 1 });
    for (const loss of RECIPE_LOSSES) {
      const recipe = defaultRecipe(GRAY28, 'central', loss);
      checkRecipe(recipe);
      const { margin: _m, mining: _k, moco: _o, ...rest } = recipe;
      assert.deepEqual({ ...rest, ...defaultLossRecipe('ntxent') }, defaultRecipe(GRAY28, 'central'), `${loss}: only the loss fields differ`);
      assert.deepEqual(recipe.moco, loss === 'moco' ? RECIPE_DEFAULTS.moco : undefined, `${loss}: the moco block only for moco`);
    }
    assert.deepEqual(Object.keys(RECIPE_LOSS_LABELS).sort(), [...RECIPE_LOSSES].sort());
    assert.deepEqual(RECIPE_LOSSES.filter((l) => RECIPE_LOSS_LABELS[l] !== 'none'), ['triplet', 'margin', 'supcon']);
  });

  it("builds every loss: 'moco' a MoCo loss (momentum key encoder, queue capped at half the images), the others pair losses", async () => {
    await initBackend({ prefer: 'cpu' });
    const moco = recipeLoss(defaultLossRecipe('moco'), 1000);
    assert.ok(isMocoLoss(moco));
    assert.equal(moco.momentum, RECIPE_DEFAULTS.moco.momentum);
    assert.equal(moco.temperature, 0.2);
    const custom = recipeLoss({ ...defaultLossRecipe('moco'), moco: { momentum: 0.9, queueSize: 256 } }, 100_000);
    assert.ok(isMocoLoss(custom));
    assert.equal(custom.momentum, 0.9);
    assert.throws(() => recipePairLoss(defaultLossRecipe('moco')), /'moco' is not a pair loss/);
    for (const loss of RECIPE_LOSSES.filter((l) => l !== 'moco')) {
      assert.equal(typeof recipePairLoss(defaultLossRecipe(loss)).valueAndGradient, 'function', `${loss} has a closed-form gradient`);
    }
    assert.equal(recipePairLoss(defaultLossRecipe('supcon')).labels, 'required');
    assert.equal(recipePairLoss(defaultLossRecipe('triplet')).labels, 'optional');
    assert.equal(recipePairLoss(defaultLossRecipe('ntxent')).labels, undefined);
  });

  it('describes a loss for the logs, saying whether it trains label-aware or label-free', () => {
    assert.equal(describeLoss(defaultLossRecipe('triplet'), true), "triplet (margin 0.2, semi-hard mining), label-aware: positives are the rows of the anchor's class");
    assert.equal(describeLoss(defaultLossRecipe('margin'), false), "margin (margin 1), label-free: the positive is the other view of the anchor's image, negatives the other images' views");
    assert.equal(describeLoss(defaultLossRecipe('ntxent'), false), 'ntxent (temperature 0.2), label-free');
  });
});

describe('the README', () => {
  it('lists every error code of the package', () => {
    const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
    const codes = Object.values({ ...errors, ...evalErrors })
      .map((ctor) => (new (ctor as unknown as new (...args: unknown[]) => { code: string })('a', 'b', 'c', 'd')).code)
      .sort();
    assert.ok(codes.length >= 15, `${codes.length} codes`);
    for (const c of codes) assert.ok(readme.includes(`\`${c}\``), `README.md does not document ${c}`);
  });
});
