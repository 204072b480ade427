// A backend with its own native threads (tfjs-node) trains in-process: no worker thread loads its addon.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { engineWorkers } from '../src/index.js';

describe('engine worker threads by backend', () => {
  it('tfjs-node (native threads) trains in-process whatever --workers says', () => {
    assert.equal(engineWorkers(2, { parallelism: 'native' }), 0);
    assert.equal(engineWorkers(undefined, { parallelism: 'native' }), 0);
  });
  it('wasm and cpu (one thread each) split the batch over the requested workers', () => {
    assert.equal(engineWorkers(2, { parallelism: 'worker-threads' }), 2);
    assert.equal(engineWorkers(0, { parallelism: 'worker-threads' }), 0);
    assert.equal(engineWorkers(3, undefined), 3);
  });
});
