// MoCo on an agent: the queue of negatives belongs to the agent's run, not to one round.
//
// At the start of every round (FedMoCo as in Zhuang et al.'s FedSSL code, EasyFL
// applications/fedssl/client.py: the key encoder is reset to the received model, the queue stays):
// - the key encoder is reset to the round's global weights. Only the online encoder is averaged
//   (the key encoder is never uploaded), and an agent sampled every few rounds would otherwise
//   carry a key encoder rounds behind the global one, and its own drift on non-IID data;
// - the queue is kept while the run is the same: the same coordinator (its identity key: a
//   coordinator's run id and key both live in its state dir), architecture and queue size, and
//   round ids that do not go back. Its keys come from last round's key encoder, close to this
//   round's global model; they are negatives only, and are all replaced within queue/batch steps.
//   Anything else starts an empty queue.
import { MocoState } from '@fedclr/contrastive';

export class MocoRounds {
  private run: { lineage: string; round: number; state: MocoState } | undefined;

  /** The current run's state (undefined before the first MoCo round). */
  get current(): MocoState | undefined {
    return this.run?.state;
  }

  /** The state `round` trains with: the run's queue (or a fresh one of `queueSize`), its key encoder set to `globalWeights`. */
  stateFor(round: number, lineage: string, queueSize: number, globalWeights: Float32Array): MocoState {
    const key = `${lineage}|${queueSize}|${globalWeights.length}`;
    // An equal round id is the same round started again (the queue is still this run's).
    if (this.run === undefined || this.run.lineage !== key || round < this.run.round) this.run = { lineage: key, round, state: new MocoState(queueSize) };
    this.run.round = round;
    this.run.state.resetKey(globalWeights);
    return this.run.state;
  }
}
