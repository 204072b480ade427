// The probe head file: fitted on labeled features with a stratified holdout, read back from its
// JSON, applied as softmax probabilities; malformed heads are refused naming the field.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '@fedclr/tensor';
import { fitProbeHead, gaussianBlobs, linearProbeProbabilities, parseProbeHead, predictLinearProbe, probeHeadModel } from '../src/index.js';

const model = { architecture: 'test', input: { height: 4, width: 4, channels: 1 }, fingerprint: 'a'.repeat(64) };

describe('probe head', () => {
  before(async () => {
    await initBackend({ prefer: 'wasm' });
  });

  it('fits on separable classes, scores the holdout, and round-trips through JSON', async () => {
    const set = gaussianBlobs({ count: 300, dim: 6, classes: 3, seed: 2 });
    const head = await fitProbeHead(set, ['cat', 'dog', 'owl'], model, '/photos', { holdout: 0.2, seed: 1 });
    assert.equal(head.fit.holdoutCount, 60);
    assert.equal(head.fit.fitCount, 240);
    assert.ok((head.fit.holdoutAccuracy ?? 0) > 0.95, `holdout accuracy ${head.fit.holdoutAccuracy}`);
    const back = parseProbeHead(JSON.stringify(head), 'head.json');
    assert.deepEqual(back, head);
    const m = probeHeadModel(back);
    const p = linearProbeProbabilities(m, set.features, 300);
    const predicted = predictLinearProbe(m, set.features, 300);
    for (let i = 0; i < 300; i++) {
      const row = Array.from(p.subarray(i * 3, i * 3 + 3));
      assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5);
      assert.equal(row.indexOf(Math.max(...row)), predicted[i]);
    }
  });

  it('without a holdout, scores nothing held out; a class without images is an error', async () => {
    const set = gaussianBlobs({ count: 60, dim: 4, classes: 2, seed: 3 });
    const head = await fitProbeHead(set, ['a', 'b'], model, 's', { holdout: 0 });
    assert.equal(head.fit.holdoutAccuracy, null);
    await assert.rejects(fitProbeHead(set, ['a', 'b', 'c'], model, 's'), { code: 'FEDCLR_EVAL_INVALID_LABELS', message: /no images of class c/ });
  });

  it('refuses malformed heads with FEDCLR_EVAL_HEAD_FILE', async () => {
    const set = gaussianBlobs({ count: 40, dim: 3, classes: 2, seed: 4 });
    const good = await fitProbeHead(set, ['a', 'b'], model, 's', { holdout: 0 });
    const bad: [unknown, RegExp][] = [
      ['{', /not JSON/],
      [{ ...good, format: 'x' }, /format/],
      [{ ...good, weights: good.weights.slice(1) }, /weights/],
      [{ ...good, std: good.std.map(() => 0) }, /std must be positive/],
      [{ ...good, model: {} }, /fingerprint/],
    ];
    for (const [value, message] of bad) {
      assert.throws(() => parseProbeHead(typeof value === 'string' ? value : JSON.stringify(value), 'h.json'), { code: 'FEDCLR_EVAL_HEAD_FILE', message });
    }
  });
});
