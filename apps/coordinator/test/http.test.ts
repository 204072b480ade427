// HTTP routes return data that fits their declared schemas; errors are catalogued JSON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pino } from 'pino';
import { decodeFrame } from '@fedclr/protocol';
import { createFakeTrainer, startAgent } from '@fedclr/agent';
import { AgentsSchema, HealthSchema, ModelInfoSchema, RoundDetailSchema, RoundsPageSchema, StatusSchema } from '../src/http.js';
import { FileModelStore } from '../src/model-store.js';
import { schemaProblem } from './helpers.js';
import { startTestCoordinator, tempDir, trust, withTimeout } from './harness.js';

async function getJson(url: string): Promise<{ status: number; body: unknown; type: string | null }> {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type'), body: await res.json() };
}

function assertFits(schema: unknown, value: unknown, what: string): void {
  const problem = schemaProblem(schema, value);
  assert.equal(problem, undefined, `${what}: ${problem}`);
}

test('HTTP routes: health, status, rounds (paginated), round detail, model, metrics', async () => {
  const dir = tempDir();
  const { coordinator, manifest } = await startTestCoordinator({ stateDir: join(dir, 'coordinator'), rounds: 3, minCohort: 2, maxCohort: 2, keepLastK: 2 });
  const base = coordinator.url;
  try {
    // Before any round.
    let r = await getJson(`${base}/health`);
    assert.equal(r.status, 200);
    assertFits(HealthSchema, r.body, '/health');
    r = await getJson(`${base}/api/status`);
    assertFits(StatusSchema, r.body, '/api/status (idle)');
    assert.equal((r.body as { round: unknown }).round, null);

    const logger = pino({ level: process.env['FEDCLR_LOG_LEVEL'] ?? 'warn' });
    const agents = await Promise.all(
      [0, 1].map((i) =>
        startAgent({ coordinatorUrl: base, stateDir: join(dir, `a${i}`), trainer: createFakeTrainer({ seed: i, delayMs: 100 }), logger, ...trust(coordinator.publicKey) }),
      ),
    );
    // During a round.
    await new Promise<void>((resolve) => coordinator.events.once('round-started', () => resolve()));
    r = await getJson(`${base}/api/status`);
    assertFits(StatusSchema, r.body, '/api/status (running)');
    const running = r.body as { phase: string; agents: { ready: number } };
    assert.ok(['collecting', 'committing', 'waiting'].includes(running.phase));
    assert.equal(running.agents.ready, 2);
    r = await getJson(`${base}/api/agents`);
    assertFits(AgentsSchema, r.body, '/api/agents');
    assert.equal((r.body as { items: unknown[] }).items.length, 2);
    await withTimeout(coordinator.finished, 15_000, 'three rounds');
    await Promise.all(agents.map((a) => withTimeout(a.done, 5000, 'agents to exit')));

    assert.deepEqual(await new FileModelStore({ dir: join(dir, 'coordinator', 'checkpoints') }).list(), [2, 3], 'keeps the last K checkpoints');
    r = await getJson(`${base}/api/rounds`);
    assert.equal(r.status, 200);
    assertFits(RoundsPageSchema, r.body, '/api/rounds');
    const page = r.body as { items: { roundId: number; status: string }[]; total: number; limit: number; offset: number };
    assert.equal(page.total, 3);
    assert.deepEqual(page.items.map((i) => i.roundId), [3, 2, 1], 'newest first');
    assert.ok(page.items.every((i) => i.status === 'completed'));
    r = await getJson(`${base}/api/rounds?limit=1&offset=1`);
    assertFits(RoundsPageSchema, r.body, '/api/rounds?limit=1&offset=1');
    assert.deepEqual((r.body as typeof page).items.map((i) => i.roundId), [2]);
    r = await getJson(`${base}/api/rounds?limit=0`);
    assert.equal(r.status, 400);
    r = await getJson(`${base}/api/rounds/2`);
    assertFits(RoundDetailSchema, r.body, '/api/rounds/2');
    assert.equal((r.body as { participants: unknown[] }).participants.length, 2);
    r = await getJson(`${base}/api/rounds/99`);
    assert.equal(r.status, 404);
    assert.equal((r.body as { code: string }).code, 'FEDCLR_COORD_ROUND_NOT_FOUND');

    r = await getJson(`${base}/api/model/info`);
    assertFits(ModelInfoSchema, r.body, '/api/model/info');
    const info = r.body as { modelVersion: string; completedRounds: number; manifest: unknown };
    assert.equal(info.completedRounds, 3);
    assert.deepEqual(info.manifest, manifest);

    // /api/model is the tfjs layers model (here unavailable: this coordinator has no graph spec);
    // the tensor frame moved to /api/model/frame.
    const redirect = await fetch(`${base}/api/model`, { redirect: 'manual' });
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get('location'), '/api/model/model.json');
    r = await getJson(`${base}/api/model/model.json`);
    assert.equal(r.status, 404);
    assert.equal((r.body as { code: string }).code, 'FEDCLR_COORD_LAYERS_MODEL_UNAVAILABLE');
    const res = await fetch(`${base}/api/model/frame`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    assert.equal(res.headers.get('x-fedclr-model-version'), info.modelVersion);
    const frame = decodeFrame(new Uint8Array(await res.arrayBuffer()), { expectedHash: info.modelVersion, checkFinite: true });
    assert.deepEqual(frame.manifest, manifest);

    const m = await fetch(`${base}/metrics`);
    assert.match(m.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await m.text();
    assert.match(text, /^fedclr_rounds_completed_total 3$/m);
    assert.match(text, /^fedclr_updates_accepted_total 6$/m);
    assert.match(text, /^fedclr_round_duration_seconds_count 3$/m);
    assert.match(text, /^fedclr_bytes_received_total \d+$/m);
    assert.match(text, /^fedclr_bytes_sent_total \d+$/m);
    assert.match(text, /^fedclr_agents_connected \d+$/m);
    // prom-client: conventional types, stage durations, and the process/nodejs default series.
    assert.match(text, /^# TYPE fedclr_rounds_completed_total counter$/m);
    assert.match(text, /^# TYPE fedclr_round_duration_seconds histogram$/m);
    assert.match(text, /^# TYPE fedclr_agents_ready gauge$/m);
    assert.match(text, /^fedclr_rounds_started_total 3$/m);
    assert.match(text, /^fedclr_round_stage_duration_seconds_count\{stage="collecting"\} 3$/m);
    assert.match(text, /^fedclr_round_stage_duration_seconds_count\{stage="committing"\} 3$/m);
    assert.match(text, /^nodejs_eventloop_lag_seconds /m);
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      // Prometheus' metric and label name grammar.
      assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/, `exposition line: ${line}`);
    }
  } finally {
    await coordinator.close();
  }
});
