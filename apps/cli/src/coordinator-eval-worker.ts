// The coordinator's evaluation worker (a worker thread, so that encoding images and fitting the
// linear probe never hold up the coordinator's event loop): loads the labeled folder once
// (--eval-data: class sub-folders; a seeded stratified split, --eval-test-fraction held out as the
// test set), then scores each global encoder it is sent: linear probe + kNN, as `fedclr eval`.
import { parentPort, workerData } from 'node:worker_threads';
import { evaluateRepresentation } from '@fedclr/contrastive';
import { initBackend, type GraphSpec } from '@fedclr/tensor';
import { encodeSplit } from './commands/eval.js';
import { FolderReader, labeledFolderSplits } from './folders.js';

export interface EvalWorkerData {
  readonly dir: string;
  readonly height: number;
  readonly width: number;
  readonly channels: 1 | 3;
  readonly testFraction: number;
  readonly seed: number;
  readonly k: number;
  readonly spec: GraphSpec;
}

export type EvalWorkerReply =
  | { type: 'ready'; train: number; test: number; classes: number; backend: string }
  | { type: 'load-failed'; message: string }
  | { type: 'result'; roundId: number; linearProbe: number; knn: number; evalMs: number }
  | { type: 'error'; roundId: number; message: string };

const port = parentPort;
if (port === null) throw new Error('coordinator-eval-worker runs as a worker thread');
const data = workerData as EvalWorkerData;
const post = (m: EvalWorkerReply): void => port.postMessage(m);

try {
  const backend = await initBackend();
  const reader = new FolderReader({}, 'coordinator --eval-data', () => undefined);
  const splits = await labeledFolderSplits(reader, { train: data.dir }, { height: data.height, width: data.width, channels: data.channels }, { testFraction: data.testFraction, seed: data.seed });
  post({ type: 'ready', train: splits.train.count, test: splits.test.count, classes: splits.train.classNames.length, backend: backend.name });
  // One evaluation at a time: the main thread sends the next one only after this answer.
  port.on('message', (m: { roundId: number; weights: Float32Array }) => {
    const started = performance.now();
    void (async () => {
      try {
        const train = await encodeSplit(data.spec, m.weights, splits.train, 1);
        const test = await encodeSplit(data.spec, m.weights, splits.test, 1);
        const r = await evaluateRepresentation(
          { features: train.features, labels: splits.train.labels, dim: train.dim },
          { features: test.features, labels: splits.test.labels, dim: test.dim },
          { knn: { k: data.k }, numClasses: splits.train.classNames.length },
        );
        post({ type: 'result', roundId: m.roundId, linearProbe: r.linearProbe, knn: r.knn, evalMs: Math.round(performance.now() - started) });
      } catch (err) {
        post({ type: 'error', roundId: m.roundId, message: (err as Error).message });
      }
    })();
  });
} catch (err) {
  post({ type: 'load-failed', message: (err as Error).message });
}
