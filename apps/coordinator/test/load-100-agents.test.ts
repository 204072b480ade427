// Load run: one coordinator serves 100 connected lightweight agents (in-process socket.io
// clients, no training: the fake trainer's seeded noise as the update) with 100k parameters
// through 5 plain rounds on loopback. Skipped unless FEDCLR_LOAD=1 (it keeps both cores busy
// for a while); run it with
//   FEDCLR_LOAD=1 node --test apps/coordinator/dist/test/load-100-agents.test.js
// Knobs: FEDCLR_LOAD_AGENTS (100), FEDCLR_LOAD_PARAMS (100000), FEDCLR_LOAD_ROUNDS (5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pino } from 'pino';
import { createFakeTrainer, startAgent, type AgentHandle } from '@fedclr/agent';
import { startCoordinator } from '../src/coordinator.js';
import type { RoundSummary } from '../src/engine.js';
import { tempDir, trust, withTimeout } from './harness.js';

const enabled = process.env['FEDCLR_LOAD'] === '1';
const AGENTS = Number(process.env['FEDCLR_LOAD_AGENTS'] ?? 100);
const PARAMS = Number(process.env['FEDCLR_LOAD_PARAMS'] ?? 100_000);
const ROUNDS = Number(process.env['FEDCLR_LOAD_ROUNDS'] ?? 5);

test(`load: ${AGENTS} agents x ${PARAMS} parameters x ${ROUNDS} rounds on loopback`, { skip: !enabled && 'set FEDCLR_LOAD=1 to run' }, async () => {
  const dir = tempDir('fedclr-load-');
  const cols = 1000;
  const rows = Math.ceil(PARAMS / cols);
  const manifest = [{ name: 'encoder/kernel', shape: [rows, cols], dtype: 'float32' as const }];
  const weights = new Float32Array(rows * cols).map((_, i) => Math.sin(i) * 0.05);
  const level = process.env['FEDCLR_LOG_LEVEL'] ?? 'warn';
  const coordinator = await startCoordinator(
    {
      stateDir: join(dir, 'coordinator'),
      port: 0,
      rounds: ROUNDS,
      minCohort: AGENTS,
      maxCohort: AGENTS,
      deadlineMs: 120_000,
      quorum: { fraction: 1, minCount: AGENTS },
      maxAgents: AGENTS + 10,
      heartbeatIntervalMs: 5000,
      handshakeTimeoutMs: 60_000,
      enrolment: { mode: 'open' },
      logLevel: 'warn',
      aggregation: 'plain',
    },
    { initialModel: { architecture: 'load-test', manifest, weights } },
  );
  const summaries: RoundSummary[] = [];
  coordinator.events.on('round-completed', (s) => summaries.push(s));
  const failures: string[] = [];
  coordinator.events.on('round-failed', (s) => failures.push(`${s.roundId}: ${s.reason}`));
  coordinator.events.on('update-rejected', (r) => failures.push(`rejected ${r.agentId}: ${r.reason}`));
  const logger = pino({ level, base: { svc: 'agent' } });
  let peakRss = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 100);
  const t0 = performance.now();
  const agents: AgentHandle[] = [];
  try {
    for (let i = 0; i < AGENTS; i++) {
      agents.push(
        await startAgent({
          coordinatorUrl: coordinator.url,
          stateDir: join(dir, `agent-${i}`),
          agentId: `load-${i}`,
          trainer: createFakeTrainer({ seed: i, exampleCount: 50 + i, scale: 0.001 }),
          logger,
          connectTimeoutMs: 60_000,
          ...trust(coordinator.publicKey),
        }),
      );
    }
    const tConnected = performance.now();
    const completed = await withTimeout(coordinator.finished, 600_000, 'the load run');
    const tDone = performance.now();
    const exits = await Promise.all(agents.map((a) => withTimeout(a.done, 30_000, 'agents to exit')));
    clearInterval(sampler);
    assert.equal(completed, ROUNDS);
    assert.deepEqual(failures, []);
    assert.equal(summaries.length, ROUNDS);
    assert.ok(summaries.every((s) => s.metrics['included'] === AGENTS), 'every agent in every round');
    assert.ok(exits.every((e) => e.reason === 'completed'));
    const m = coordinator.metrics;
    const report = {
      agents: AGENTS,
      parameters: rows * cols,
      rounds: ROUNDS,
      startAgentsMs: Math.round(tConnected - t0),
      totalMs: Math.round(tDone - t0),
      roundMs: summaries.map((s) => s.durationMs),
      meanRoundMs: Math.round(summaries.reduce((a, s) => a + s.durationMs, 0) / summaries.length),
      bytesReceivedMiB: +(m.bytesIn.get() / 2 ** 20).toFixed(1),
      bytesSentMiB: +(m.bytesOut.get() / 2 ** 20).toFixed(1),
      peakRssMiB: Math.round(peakRss / 2 ** 20),
    };
    console.log(`LOAD ${JSON.stringify(report)}`);
  } finally {
    clearInterval(sampler);
    await Promise.all(agents.map((a) => a.close()));
    await coordinator.close();
  }
});
