// MoCo on an agent: the queue is kept between the rounds of one run and the key encoder reset
// to each round's global weights; another coordinator, architecture or an earlier round id
// starts afresh. The recipe's moco block travels on the wire.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { initialState, recipeModelSpec } from '@fedclr/contrastive';
import type { ImageDataset } from '@fedclr/data';
import type { RoundConfig, RoundRecipe } from '@fedclr/protocol';
import { initBackend } from '@fedclr/tensor';
import { createContrastiveTrainer, protocolManifest, roundRecipe, wireRecipe } from '../src/contrastive-trainer.js';
import { MocoRounds } from '../src/moco-rounds.js';

function dataset(count: number): ImageDataset {
  let s = 91;
  const images = new Uint8Array(count * 12 * 12).map(() => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s >>> 24));
  return { images, labels: null, count, height: 12, width: 12, channels: 1, classNames: [] };
}

const wire: RoundRecipe = {
  model: { encoder: 'convnet-s', widths: [4, 8, 8], head: { hidden: 8, out: 8 }, input: { height: 12, width: 12, channels: 1 } },
  augment: { viewSize: 8, cropMin: 0.5, strength: 0.3 },
  weightDecay: 0,
  moco: { momentum: 0.9, queueSize: 12 },
};
const config: RoundConfig = {
  localEpochs: 1,
  batchSize: 8,
  learningRate: 0.01,
  optimizer: 'adam',
  loss: 'moco',
  temperature: 0.2,
  fedproxMu: 0,
  clipNorm: 0,
  deadlineMs: 60_000,
  aggregation: 'plain',
  cohortSize: 2,
  seed: 5,
  recipe: wire,
};

describe('MoCo between rounds', () => {
  const spec = recipeModelSpec(roundRecipe(config, wire).model);
  const manifest = protocolManifest(spec);
  let global: Float32Array;
  before(async () => {
    await initBackend({ prefer: 'wasm' });
    global = initialState(spec, 3).params;
  });

  it('keeps the run\'s state while the lineage stays and rounds do not go back; resets the key encoder every round', () => {
    const rounds = new MocoRounds();
    const a = rounds.stateFor(1, 'coord-a', 8, Float32Array.from([1, 2]));
    assert.deepEqual(Array.from(a.key as Float32Array), [1, 2]);
    const again = rounds.stateFor(3, 'coord-a', 8, Float32Array.from([5, 6]));
    assert.equal(again, a, 'the same run: the same queue');
    assert.deepEqual(Array.from(a.key as Float32Array), [5, 6], 'the key encoder is the new global model');
    assert.equal(rounds.stateFor(3, 'coord-a', 8, Float32Array.from([5, 6])), a, 'a round started again');
    assert.notEqual(rounds.stateFor(2, 'coord-a', 8, Float32Array.from([5, 6])), a, 'an earlier round id: another run');
    const b = rounds.current;
    assert.notEqual(rounds.stateFor(4, 'coord-b', 8, Float32Array.from([5, 6])), b, 'another coordinator');
    const c = rounds.current;
    assert.notEqual(rounds.stateFor(5, 'coord-b', 6, Float32Array.from([5, 6])), c, 'another queue size');
    const d = rounds.current;
    assert.notEqual(rounds.stateFor(6, 'coord-b', 6, Float32Array.from([5, 6, 7])), d, 'another model');
  });

  it('trains MoCo rounds: the queue carries over, the key encoder starts each round from the global weights', async () => {
    const moco = new MocoRounds();
    // 20 images: the queue is capped at 10 (half), below the recipe's 12.
    const trainer = createContrastiveTrainer({ dataset: dataset(20), moco });
    const input = { manifest, config, lineage: 'coordinator-key' };
    const first = await trainer.train({ ...input, round: 1, globalWeights: global.slice() }, new AbortController().signal);
    const state = moco.current;
    assert.ok(state !== undefined);
    assert.equal(state.queueSize, 10);
    assert.equal(state.queue?.length, 10, 'two steps of 8 keys filled the queue of 10');
    assert.ok(Number.isFinite(first.metrics['loss']));
    const afterFirst = state.queue?.snapshot();
    // The next round starts from the (new) global model: here the first round's weights.
    const second = await trainer.train({ ...input, round: 2, globalWeights: first.weights.slice() }, new AbortController().signal);
    assert.equal(moco.current, state, 'the same run keeps its state');
    assert.deepEqual([first.metrics['mocoQueued'], second.metrics['mocoQueued']], [0, 10], 'round 2 began with round 1\'s keys');
    assert.notDeepEqual(state.queue?.snapshot().data, afterFirst?.data, 'round 2 enqueued its keys');
    // The key encoder began round 2 as round 2's global weights: after 2 steps it is m²·global + (1 - m²)·(a mix of the online weights), closer to them than round 1's start.
    const key = state.key as Float32Array;
    let toSecondStart = 0;
    let toFirstStart = 0;
    for (let i = 0; i < key.length; i++) {
      toSecondStart += ((key[i] as number) - (first.weights[i] as number)) ** 2;
      toFirstStart += ((key[i] as number) - (global[i] as number)) ** 2;
    }
    assert.ok(toSecondStart < toFirstStart, `key encoder ${Math.sqrt(toSecondStart)} from round 2's start, ${Math.sqrt(toFirstStart)} from round 1's`);
    assert.ok(Number.isFinite(second.metrics['loss']));
    await trainer.train({ ...input, lineage: 'another-coordinator', round: 3, globalWeights: global.slice() }, new AbortController().signal);
    assert.notEqual(moco.current, state, 'another coordinator: a fresh queue');
  });

  it('the moco block round-trips through the wire recipe, and NT-Xent recipes carry none', () => {
    const recipe = roundRecipe(config, wire);
    assert.equal(recipe.loss, 'moco');
    assert.deepEqual(recipe.moco, { momentum: 0.9, queueSize: 12 });
    assert.deepEqual(wireRecipe(recipe), wire);
    const { moco: _moco, ...plain } = wire;
    assert.equal(wireRecipe(roundRecipe({ ...config, loss: 'ntxent' }, plain)).moco, undefined);
  });
});
