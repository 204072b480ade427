// `fedclr coordinator --eval-data DIR --eval-every K`: the main-thread side of the evaluation
// worker (coordinator-eval-worker.ts). After every K-th committed round (and the last one) the
// new global encoder is sent to the worker; its linear probe and kNN accuracy are added to the
// round (metrics evalLinearProbe, evalKnn, evalMs) when they arrive, so no round waits for them.
// If rounds outpace evaluation, only the newest waiting checkpoint is kept (each skip is logged).
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { CoordinatorHandle } from '@fedclr/coordinator';
import { UsageError } from './errors.js';
import type { EvalWorkerData, EvalWorkerReply } from './coordinator-eval-worker.js';

export class CoordinatorEvaluation {
  private busy = false;
  /** Rounds whose checkpoint is read on the next turn (attach): drain() waits for them too. */
  private scheduled = 0;
  private waiting: { roundId: number; weights: Float32Array } | undefined;
  private idleWaiters: (() => void)[] = [];

  private constructor(
    private readonly worker: Worker,
    private readonly logger: Logger,
    private record: (roundId: number, metrics: Record<string, number>) => void,
  ) {
    worker.on('message', (m: EvalWorkerReply) => this.onReply(m));
    worker.on('error', (err) => logger.error({ err }, 'the evaluation worker failed; no further evaluation'));
  }

  /** Starts the worker and waits until it has read the folder (a bad folder is a usage error). */
  static async start(data: EvalWorkerData, logger: Logger): Promise<CoordinatorEvaluation> {
    const worker = new Worker(new URL('./coordinator-eval-worker.js', import.meta.url), { workerData: data });
    const first = await new Promise<EvalWorkerReply>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    if (first.type !== 'ready') {
      await worker.terminate();
      throw new UsageError(`--eval-data ${data.dir}: ${first.type === 'load-failed' ? first.message : 'the evaluation worker did not start'}`);
    }
    logger.info({ dir: data.dir, probeImages: first.train, testImages: first.test, classes: first.classes, backend: first.backend }, 'evaluation data loaded (linear probe + kNN in a worker thread)');
    return new CoordinatorEvaluation(worker, logger, () => undefined);
  }

  /** Evaluates handle's committed rounds: every `every`-th and the run's last. */
  attach(handle: CoordinatorHandle, every: number): void {
    this.record = (roundId, metrics) => handle.recordRoundMetrics(roundId, metrics);
    handle.events.on('round-completed', (s) => {
      const done = handle.status().completedRounds + 1; // the engine adopts the model after this event
      if (done % every !== 0 && done < handle.config.rounds) return;
      // The engine adopts the committed model right after this event: read it on the next turn.
      // Counted until then: the run's last round ends with drain(), called before that turn.
      this.scheduled++;
      setImmediate(() => {
        this.scheduled--;
        const m = handle.globalModel();
        if (m.roundId === s.roundId) this.submit(s.roundId, new Float32Array(m.weights));
        else this.logger.warn({ roundId: s.roundId, modelRound: m.roundId }, 'the committed model moved on before it could be evaluated: skipped');
        this.settle();
      });
    });
  }

  submit(roundId: number, weights: Float32Array): void {
    if (this.busy) {
      if (this.waiting !== undefined) this.logger.warn({ skipped: this.waiting.roundId, next: roundId }, 'evaluation is slower than the rounds: skipping a waiting checkpoint');
      this.waiting = { roundId, weights };
      return;
    }
    this.busy = true;
    this.worker.postMessage({ roundId, weights }, [weights.buffer as ArrayBuffer]);
  }

  /** Resolves once nothing is being evaluated, waiting or about to be submitted (or after timeoutMs). */
  async drain(timeoutMs: number): Promise<void> {
    if (!this.busy && this.scheduled === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.logger.warn({ timeoutMs }, 'stopping without waiting longer for the evaluation in progress');
          resolve();
        }, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }

  private onReply(m: EvalWorkerReply): void {
    if (m.type === 'result') {
      this.logger.info({ roundId: m.roundId, linearProbe: m.linearProbe, knn: m.knn, evalMs: m.evalMs }, 'checkpoint evaluated');
      try {
        this.record(m.roundId, { evalLinearProbe: m.linearProbe, evalKnn: m.knn, evalMs: m.evalMs });
      } catch (err) {
        this.logger.error({ err, roundId: m.roundId }, 'could not record the evaluation');
      }
    } else if (m.type === 'error') {
      this.logger.error({ roundId: m.roundId, error: m.message }, 'evaluation failed');
    }
    this.busy = false;
    const next = this.waiting;
    this.waiting = undefined;
    if (next !== undefined) this.submit(next.roundId, next.weights);
    this.settle();
  }

  /** Wakes drain()'s waiters once nothing is evaluated, waiting or scheduled. */
  private settle(): void {
    if (!this.busy && this.scheduled === 0) for (const w of this.idleWaiters.splice(0)) w();
  }
}
