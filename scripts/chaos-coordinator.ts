// One coordinator process of the chaos harness (forked by chaos-run.ts, SIGKILLed and forked
// again by it): the real startCoordinator on the harness's state dir and port, reporting its
// rounds over IPC. Its one test hook is a CheckpointExporter (the public plug-in point of the
// checkpoint write, nothing in the product path): it announces the write and holds it open for
// `checkpointHoldMs`, so that the orchestrator can kill the process mid-checkpoint.
import { startCoordinator, type CheckpointExporter, type CoordinatorConfig } from '@fedclr/coordinator';
import { chaosModel } from './chaos-model.js';

export interface ChaosCoordinatorArgs {
  readonly config: CoordinatorConfig;
  readonly parameters: number;
  readonly checkpointHoldMs: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as ChaosCoordinatorArgs;
const report = (msg: Record<string, unknown>): void => {
  process.send?.(msg);
};

const announcer: CheckpointExporter = {
  name: 'chaos-announce',
  async write(checkpoint) {
    report({ event: 'checkpoint-write', roundId: checkpoint.roundId });
    await new Promise((resolve) => setTimeout(resolve, args.checkpointHoldMs));
  },
};

const { manifest, weights } = chaosModel(args.parameters);
const c = await startCoordinator(args.config, { initialModel: { architecture: 'chaos-dense', manifest, weights }, exporters: [announcer] });
report({ event: 'listening', url: c.url, publicKey: c.publicKey, pid: process.pid, completedRounds: c.status().completedRounds });
c.events.on('round-started', (r) => report({ event: 'round-started', roundId: r.roundId, cohort: r.cohort.length, t: Date.now() }));
c.events.on('round-completed', (s) => report({ event: 'round-completed', roundId: s.roundId, durationMs: s.durationMs, included: s.metrics['included'], t: Date.now() }));
c.events.on('round-failed', (s) => report({ event: 'round-failed', roundId: s.roundId, status: s.status, reason: s.reason, t: Date.now() }));
void c.finished.then(async (completed) => {
  report({ event: 'finished', completed });
  // Agents hear 'shutdown{completed}' with the finish; give the messages a moment, then exit.
  await new Promise((resolve) => setTimeout(resolve, 500));
  await c.close();
  process.exit(0);
});
