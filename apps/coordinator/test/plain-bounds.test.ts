// Plain mode's server-side bounds: each update's L2 norm is clipped to maxUpdateNorm and example
// counts above maxExampleCount are refused, so one agent cannot take over the global model. Each
// attack is also run against a weakened configuration (no bound), where it does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig } from '../src/config.js';
import { maxUpdateNormFor, type EngineAction, type EngineSettings, type RoundEngine } from '../src/engine.js';
import { deltaFor, makeEngine, ofType, sends, TEST_SETTINGS, updateMessage } from './helpers.js';

const DEFAULTS = resolveConfig({ stateDir: 'x' });

function l2(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += ((a[i] as number) - (b[i] as number)) ** 2;
  return Math.sqrt(s);
}

/** One plain round: honest agent 'a' and attacker 'b'; returns how far the global model moved. */
function round(settings: Partial<EngineSettings>, attack: { scale: number; exampleCount: number }): { moved: number; rejected: string[]; actions: EngineAction[]; engine: RoundEngine } {
  const { engine, manifest, weights } = makeEngine({ minCohort: 2, maxCohort: 2, quorum: { fraction: 0.5, minCount: 1 }, ...settings });
  const actions: EngineAction[] = [];
  actions.push(...engine.handle({ type: 'start' }, 0), ...engine.handle({ type: 'agent-ready', agentId: 'a' }, 0), ...engine.handle({ type: 'agent-ready', agentId: 'b' }, 0));
  const v = engine.globalModel.modelVersion;
  const n = weights.length;
  actions.push(...engine.handle({ type: 'update', agentId: 'a', message: updateMessage(1, v, manifest, deltaFor(n, 0, 0.01), 100) }, 1));
  const evil = deltaFor(n, 1, 1);
  let norm = 0;
  for (const x of evil) norm += x * x;
  for (let i = 0; i < n; i++) evil[i] = ((evil[i] as number) / Math.sqrt(norm)) * attack.scale;
  actions.push(...engine.handle({ type: 'update', agentId: 'b', message: updateMessage(1, v, manifest, evil, attack.exampleCount) }, 2));
  assert.equal(ofType(actions, 'commit').length, 1, 'the round commits');
  actions.push(...engine.handle({ type: 'commit-done', roundId: 1 }, 3));
  return { moved: l2(engine.globalModel.weights, weights), rejected: sends(actions, 'update-rejected').map((s) => String(s.message['reason'])), actions, engine };
}

const clipped = { ...TEST_SETTINGS.roundConfig, clipNorm: 1 };

test('an update of norm 1e20 moves the model by at most the server bound (the round clipNorm); without the bound it takes over', () => {
  const bounded = round({ roundConfig: clipped, maxUpdateNorm: DEFAULTS.maxUpdateNorm, maxExampleCount: DEFAULTS.maxExampleCount }, { scale: 1e20, exampleCount: 100 });
  assert.deepEqual(bounded.rejected, []);
  assert.ok(bounded.moved <= 1 * (1 + 1e-5), `moved ${bounded.moved} > the bound 1`);
  const commit = ofType(bounded.actions, 'commit')[0];
  assert.equal(commit?.record.summary.metrics['clippedUpdates'], 1, 'the attacker was clipped (and only it)');
  // Weakened: no effective bound.
  const weak = round({ roundConfig: clipped, maxUpdateNorm: 1e30, maxExampleCount: DEFAULTS.maxExampleCount }, { scale: 1e20, exampleCount: 100 });
  assert.ok(weak.moved > 1e19, `without the bound the attacker moves the model by ${weak.moved}`);
});

test('an exampleCount of 1e9 is refused under the default maxExampleCount (100000); raised to 1e10, it dominates the average', () => {
  assert.equal(DEFAULTS.maxExampleCount, 100_000);
  const bounded = round({ roundConfig: clipped, maxUpdateNorm: DEFAULTS.maxUpdateNorm, maxExampleCount: DEFAULTS.maxExampleCount }, { scale: 1, exampleCount: 1e9 });
  assert.deepEqual(bounded.rejected, ['invalid-message']);
  // Only the honest update (norm of deltaFor(n, 0, 0.01) ~ 0.2) moved the model.
  assert.ok(bounded.moved < 0.3, `moved ${bounded.moved}`);
  const weak = round({ roundConfig: clipped, maxUpdateNorm: 1e30, maxExampleCount: 1e10 }, { scale: 100, exampleCount: 1e9 });
  assert.deepEqual(weak.rejected, []);
  assert.ok(weak.moved > 99, `the 1e9-weighted attacker moves the model by ${weak.moved}`);
});

test('maxUpdateNorm auto: clipNorm (a plain DP round adds its noise after the clip); without clipNorm the global model norm (>= 1); a number is taken as is', () => {
  const w = new Float32Array(10_000).fill(0.1); // norm 10
  assert.ok(Math.abs(maxUpdateNormFor('auto', { clipNorm: 2 }, w) - 2) < 1e-5);
  assert.ok(Math.abs(maxUpdateNormFor('auto', { clipNorm: 0 }, w) - 10) < 1e-3);
  assert.equal(maxUpdateNormFor('auto', { clipNorm: 0 }, new Float32Array(4)), 1);
  assert.equal(maxUpdateNormFor(3.5, { clipNorm: 2 }, w), 3.5);
  // Without clipNorm (the auto bound is the model's norm), a 1e20 update still cannot move it further.
  const r = round({ maxUpdateNorm: 'auto', maxExampleCount: DEFAULTS.maxExampleCount }, { scale: 1e20, exampleCount: 100 });
  assert.ok(r.moved <= Math.max(1, l2(r.engine.globalModel.weights, new Float32Array(r.engine.globalModel.weights.length))) * 2, `moved ${r.moved}`);
  assert.ok(r.moved < 10, `moved ${r.moved}`);
});

test('config: maxUpdateNorm must be "auto" or a positive number', () => {
  assert.equal(DEFAULTS.maxUpdateNorm, 'auto');
  assert.equal(resolveConfig({ stateDir: 'x', maxUpdateNorm: 5 }).maxUpdateNorm, 5);
  assert.throws(() => resolveConfig({ stateDir: 'x', maxUpdateNorm: 0 }), /maxUpdateNorm/);
  assert.throws(() => resolveConfig({ stateDir: 'x', maxUpdateNorm: Number.POSITIVE_INFINITY }), /FEDCLR_COORD_CONFIG_INVALID|maxUpdateNorm/);
});
