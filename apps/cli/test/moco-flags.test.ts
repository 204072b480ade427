// --loss moco (issue 13): the same flag and MoCo hyperparameters in train, coordinator and
// simulate; the coordinator's config (loss and wire recipe) is one it accepts and sends.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RECIPE_DEFAULTS } from '@fedclr/contrastive';
import { resolveConfig } from '@fedclr/coordinator';
import { wireRecipe } from '@fedclr/agent';
import { coordinatorRecipe, parseCoordinatorArgs } from '../src/commands/coordinator.js';
import { parseSimulateArgs, simulateRecipe } from '../src/commands/simulate.js';
import { parseTrainArgs, trainRecipe } from '../src/commands/train.js';

const GRAY28 = { height: 28, width: 28, channels: 1 };

describe('--loss moco', () => {
  it('selects MoCo with the recipe defaults, or the given momentum and queue, in every command', () => {
    for (const argv of [['--loss', 'moco'], ['--loss', 'moco', '--moco-momentum', '0.9', '--moco-queue', '1024']]) {
      const expected = argv.length > 2 ? { momentum: 0.9, queueSize: 1024 } : RECIPE_DEFAULTS.moco;
      for (const recipe of [trainRecipe(parseTrainArgs(argv), GRAY28), coordinatorRecipe(parseCoordinatorArgs(argv)), simulateRecipe(parseSimulateArgs(argv))]) {
        assert.equal(recipe.loss, 'moco');
        assert.deepEqual(recipe.moco, expected);
      }
    }
    assert.deepEqual(RECIPE_DEFAULTS.moco, { momentum: 0.99, queueSize: 4096 });
    const plain = trainRecipe(parseTrainArgs([]), GRAY28);
    assert.equal(plain.loss, 'ntxent');
    assert.equal(plain.moco, undefined);
  });

  it('refuses an unknown loss, MoCo flags without --loss moco, and out-of-range values', () => {
    assert.throws(() => trainRecipe(parseTrainArgs(['--loss', 'byol']), GRAY28), /--loss must be one of ntxent, dcl, moco, triplet, margin, supcon, got 'byol'/);
    assert.throws(() => trainRecipe(parseTrainArgs(['--moco-queue', '16']), GRAY28), /--moco-queue goes with --loss moco/);
    assert.throws(() => trainRecipe(parseTrainArgs(['--loss', 'moco', '--moco-momentum', '1']), GRAY28), /moco\.momentum: expected a number in \[0, 1\)/);
    assert.throws(() => trainRecipe(parseTrainArgs(['--loss', 'moco', '--moco-queue', '100000']), GRAY28), /moco\.queueSize/);
  });

  it("the coordinator's config carries loss moco and the recipe's moco block, and the coordinator accepts it", () => {
    const recipe = coordinatorRecipe(parseCoordinatorArgs(['--loss', 'moco', '--moco-queue', '2048']));
    const wire = wireRecipe(recipe);
    assert.deepEqual(wire.moco, { momentum: 0.99, queueSize: 2048 });
    const config = resolveConfig({ stateDir: 'x', training: { loss: recipe.loss }, recipe: wire });
    assert.equal(config.training.loss, 'moco');
    assert.deepEqual(config.recipe?.moco, { momentum: 0.99, queueSize: 2048 });
  });
});
