// Crash and restart of a real coordinator process (test/fixtures/coordinator-proc.js) with agents
// (the agent library, fake trainer) in this process: a coordinator killed (SIGKILL) after round 2
// resumes from round 2's model and loses nothing that completed; SIGTERM shuts down gracefully;
// and close() of an in-process coordinator mid-round, then a restart from the same state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pino } from 'pino';
import { createFakeTrainer, startAgent, type AgentHandle } from '@fedclr/agent';
import { FileModelStore, StateDb } from '@fedclr/coordinator';
import { COORDINATOR_SCRIPT, MODEL, forkProc, freePort, startTestCoordinator, tempDir, trust, withTimeout, type IpcProc } from './processes.js';

const agentLogger = pino({ level: process.env['FEDCLR_LOG_LEVEL'] ?? 'warn', base: { svc: 'agent' } });

async function agentsFor(url: string, dir: string, n: number, delayMs: number, coordinatorKey: string): Promise<AgentHandle[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      startAgent({
        coordinatorUrl: url,
        stateDir: join(dir, `agent-${i}`),
        agentId: `agent-${i}`,
        trainer: createFakeTrainer({ seed: i, exampleCount: 10 + i, delayMs }),
        reconnect: { initialDelayMs: 50, maxDelayMs: 300, jitter: 0.5 },
        logger: agentLogger,
        ...trust(coordinatorKey),
      }),
    ),
  );
}

test('a coordinator killed after round 2 restarts at round 3 from round 2\'s model, losing nothing that completed', async () => {
  const dir = tempDir();
  const stateDir = join(dir, 'coordinator');
  const port = await freePort();
  const config = {
    stateDir,
    port,
    rounds: 4,
    minCohort: 2,
    maxCohort: 2,
    deadlineMs: 10_000,
    deadlineGraceMs: 200,
    retryDelayMs: 100,
    keepLastK: 10,
    logLevel: 'warn',
    aggregation: 'plain',
    enrolment: { mode: 'open' },
  };
  const arg = { config, model: MODEL };
  let proc: IpcProc = forkProc(COORDINATOR_SCRIPT, arg);
  const listening = await proc.next((m) => m['event'] === 'listening', 15_000, 'coordinator listening');
  const url = String(listening['url']);
  const agents = await agentsFor(url, dir, 2, 150, String(listening['publicKey']));
  let round2Version: string;
  try {
    const done2 = await proc.next((m) => m['event'] === 'round-completed' && m['roundId'] === 2, 20_000, 'round 2 to complete');
    proc.child.kill('SIGKILL'); // crash: no shutdown, no goodbye
    await proc.exited;
    round2Version = String(done2['modelVersion']);

    // What survived on disk:
    const db = new StateDb(join(stateDir, 'coordinator.db'));
    const completed = db.completedRoundIds();
    const running = db.listRounds(10, 0).items.filter((r) => r.status === 'running').map((r) => r.id);
    db.close();
    assert.deepEqual(completed, [1, 2]);
    assert.ok(running.every((id) => id === 3), `only round 3 can have been running at the crash; got ${running}`);
    const store = new FileModelStore({ dir: join(stateDir, 'checkpoints') });
    assert.equal((await store.load(2))?.modelVersion, round2Version);

    // Restart on the same port; the agents reconnect by themselves (backoff).
    proc = forkProc(COORDINATOR_SCRIPT, arg);
    const again = await proc.next((m) => m['event'] === 'listening', 15_000, 'coordinator listening again');
    const status = again['status'] as { completedRounds: number; modelVersion: string; modelRound: number };
    assert.equal(status.completedRounds, 2);
    assert.equal(status.modelRound, 2);
    assert.equal(status.modelVersion, round2Version, 'resumed with round 2\'s model');
    const next = await proc.next((m) => m['event'] === 'round-started', 20_000, 'the next round to start');
    assert.equal(next['baseModelVersion'], round2Version, 'the third round trains from round 2\'s model');
    assert.ok(Number(next['roundId']) >= 3, 'round ids never go back');
    const third = await proc.next((m) => m['event'] === 'round-completed', 20_000, 'the third round to complete');
    assert.equal(third['roundId'], next['roundId']);
    await proc.next((m) => m['event'] === 'round-completed' && Number(m['roundId']) > Number(third['roundId']), 20_000, 'the fourth round');

    const db2 = new StateDb(join(stateDir, 'coordinator.db'));
    const rows = db2.listRounds(20, 0).items.reverse();
    db2.close();
    const completedRows = rows.filter((r) => r.status === 'completed');
    assert.deepEqual(completedRows.map((r) => r.completedRounds), [1, 2, 3, 4]);
    assert.equal(completedRows[2]?.baseModelVersion, round2Version);
    for (const r of rows) assert.notEqual(r.status, 'running');
    const exits = await Promise.all(agents.map((a) => withTimeout(a.done, 10_000, 'agents to exit')));
    assert.ok(exits.every((e) => e.reason === 'completed'));
  } finally {
    await Promise.all(agents.map((a) => a.close()));
    if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
    await proc.exited;
  }
});

test('SIGTERM: the coordinator process aborts the round, tells agents it is restarting, closes the DB and exits 0', async () => {
  const dir = tempDir();
  const stateDir = join(dir, 'coordinator');
  const proc = forkProc(COORDINATOR_SCRIPT, {
    config: { stateDir, port: 0, rounds: 5, minCohort: 2, maxCohort: 2, deadlineMs: 30_000, handleSignals: true, logLevel: 'warn', aggregation: 'plain', enrolment: { mode: 'open' } },
    model: MODEL,
  });
  const listening = await proc.next((m) => m['event'] === 'listening', 15_000, 'coordinator listening');
  const agents = await agentsFor(String(listening['url']), dir, 2, 20_000, String(listening['publicKey']));
  try {
    await proc.next((m) => m['event'] === 'round-started', 10_000, 'round 1 to start');
    const shutdownSeen = Promise.all(
      agents.map(
        (a) =>
          new Promise<string>((resolve) => {
            a.events.once('shutdown', (m) => resolve(`${m.reason}:${m.reconnectAfterMs}`));
          }),
      ),
    );
    proc.child.kill('SIGTERM');
    const failed = await proc.next((m) => m['event'] === 'round-failed', 5000, 'the round to be aborted');
    assert.equal(failed['status'], 'aborted');
    const exit = await withTimeout(proc.exited, 10_000, 'the coordinator to exit');
    assert.equal(exit.code, 0);
    assert.deepEqual(await withTimeout(shutdownSeen, 5000, 'agents to get shutdown'), ['restarting:2000', 'restarting:2000']);
    const db = new StateDb(join(stateDir, 'coordinator.db'));
    const r1 = db.getRound(1);
    db.close();
    assert.equal(r1?.status, 'aborted');
  } finally {
    await Promise.all(agents.map((a) => a.close()));
    if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
  }
});

test('close() mid-round aborts it cleanly; agents stop; a restart continues from the same state', async () => {
  const dir = tempDir();
  const stateDir = join(dir, 'coordinator');
  const first = await startTestCoordinator({ stateDir, rounds: 3, minCohort: 2, maxCohort: 2, deadlineMs: 30_000 });
  const agents = await agentsFor(first.coordinator.url, dir, 2, 20_000, first.coordinator.publicKey);
  await new Promise<void>((resolve) => first.coordinator.events.once('round-started', () => resolve()));
  await first.coordinator.close();
  const exits = await Promise.all(agents.map((a) => withTimeout(a.done, 5000, 'agents to stop')));
  assert.deepEqual(exits.map((e) => e.reason), ['stopping', 'stopping']);
  const second = await startTestCoordinator({ stateDir, rounds: 3, minCohort: 2, maxCohort: 2, deadlineMs: 30_000 });
  try {
    const s = second.coordinator.status();
    assert.equal(s.completedRounds, 0);
    assert.equal(s.modelVersion, first.coordinator.globalModel().modelVersion);
  } finally {
    await second.coordinator.close();
  }
});
