// tfjs-node runs TensorFlow's own threads: it must never load inside a worker thread (a training
// replica, the coordinator's evaluation), even when FEDCLR_BACKEND=node names the process's backend.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';

interface Reply {
  name?: string;
  reason?: string;
  parallelism?: string;
  error?: string;
  message?: string;
}

function inWorker(options: { prefer?: string; env?: Record<string, string> }): Promise<Reply> {
  const worker = new Worker(new URL('./fixtures/backend-in-worker.js', import.meta.url), {
    workerData: { prefer: options.prefer },
    env: { ...process.env, ...(options.env ?? {}) },
  });
  return new Promise((resolve, reject) => {
    worker.once('message', (m: Reply) => {
      void worker.terminate();
      resolve(m);
    });
    worker.once('error', reject);
  });
}

describe('backend choice in worker threads', () => {
  it('skips tfjs-node without trying to load it, and says why', async () => {
    const reply = await inWorker({ env: { FEDCLR_BACKEND: '' } });
    assert.equal(reply.name, 'wasm');
    assert.equal(reply.parallelism, 'worker-threads');
    assert.match(reply.reason ?? '', /tfjs-node is kept out of worker threads/);
  });

  it('FEDCLR_BACKEND=node names the process backend: a worker thread takes the next one', async () => {
    const reply = await inWorker({ env: { FEDCLR_BACKEND: 'node' } });
    assert.equal(reply.name, 'wasm');
    assert.match(reply.reason ?? '', /kept out of worker threads/);
  });

  it('refuses an explicit request for tfjs-node in a worker thread, naming the reason', async () => {
    const reply = await inWorker({ prefer: 'node' });
    assert.equal(reply.error, 'FEDCLR_TENSOR_BACKEND_UNAVAILABLE');
    assert.match(reply.message ?? '', /worker threads/);
  });
});
