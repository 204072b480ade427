// The dashboard's routes: its static files are public (they hold no data), while /api/run,
// /api/checkpoints and the live stream /api/events follow the read routes' rule (here: a
// coordinator that needs the token on reads, as off loopback). The stream replays the event log
// and carries stage changes as they happen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createFakeTrainer, startAgent } from '@fedclr/agent';
import { pino } from 'pino';
import { CheckpointsSchema, RunSchema } from '../src/dashboard.js';
import { schemaProblem } from './helpers.js';
import { startTestCoordinator, tempDir, trust, withTimeout } from './harness.js';

/** Reads `res`'s SSE stream until `until(text so far)`; returns the text. */
async function readStream(res: Response, until: (text: string) => boolean, timeoutMs: number): Promise<string> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  const read = async (): Promise<string> => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return text;
      text += decoder.decode(value, { stream: true });
      if (until(text)) return text;
    }
  };
  try {
    return await withTimeout(read(), timeoutMs, 'the event stream');
  } finally {
    await reader.cancel();
  }
}

test('dashboard: public page, token-guarded data and event stream; the stream replays rounds and sends stages', async () => {
  const dir = tempDir();
  const stateDir = join(dir, 'coordinator');
  const { coordinator } = await startTestCoordinator({ stateDir, rounds: 2, minCohort: 2, maxCohort: 2, http: { publicRead: false } });
  const base = coordinator.url;
  const token = readFileSync(join(stateDir, 'admin-token'), 'utf8').trim();
  const auth = { authorization: `Bearer ${token}` };
  const logger = pino({ level: process.env['FEDCLR_LOG_LEVEL'] ?? 'warn' });
  const agents: Awaited<ReturnType<typeof startAgent>>[] = [];
  try {
    for (const path of ['/', '/index.html', '/dashboard.js', '/charts.js', '/dashboard.css']) {
      const r = await fetch(`${base}${path}`);
      assert.equal(r.status, 200, `${path} is public`);
    }
    assert.match(await (await fetch(`${base}/`)).text(), /<script src="\/dashboard.js">/);
    for (const path of ['/api/run', '/api/checkpoints', '/api/events', '/api/status']) {
      const r = await fetch(`${base}${path}`);
      assert.equal(r.status, 401, `${path} needs the token`);
      assert.equal(((await r.json()) as { code: string }).code, 'FEDCLR_COORD_UNAUTHORIZED');
    }
    // A file that is not the dashboard's is not served, and not public either.
    assert.equal((await fetch(`${base}/package.json`)).status, 401);
    assert.equal((await fetch(`${base}/package.json`, { headers: auth })).status, 404);

    const run = (await (await fetch(`${base}/api/run`, { headers: auth })).json()) as { aggregation: string; threatModel: string[]; model: { architecture: string } };
    assert.equal(schemaProblem(RunSchema, run), undefined);
    assert.equal(run.aggregation, 'plain');
    assert.equal(run.model.architecture, 'test-mlp');
    assert.ok(run.threatModel.some((l) => l.includes('plain aggregation')));

    // Live: subscribe, then start agents; the stream carries the round's start and its stages.
    const live = await fetch(`${base}/api/events`, { headers: auth });
    assert.equal(live.status, 200);
    assert.match(live.headers.get('content-type') ?? '', /^text\/event-stream/);
    for (const i of [0, 1]) {
      agents.push(await startAgent({ coordinatorUrl: base, stateDir: join(dir, `a${i}`), trainer: createFakeTrainer({ seed: i, delayMs: 50 }), logger, ...trust(coordinator.publicKey) }));
    }
    const text = await readStream(live, (t) => t.includes('event: round-completed'), 20_000);
    assert.match(text, /event: round-started\ndata: \{[^\n]*"roundId":1/);
    assert.match(text, /event: stage\ndata: \{[^\n]*"phase":"collecting"/);
    assert.match(text, /event: update-accepted\n/);
    await withTimeout(coordinator.finished, 20_000, 'the run');

    // An evaluation that lands after the commit joins the round's metrics and the live log.
    coordinator.recordRoundMetrics(2, { evalLinearProbe: 0.75, evalKnn: 0.5, bogus: Number.NaN });
    const r2 = (await (await fetch(`${base}/api/rounds/2`, { headers: auth })).json()) as { round: { metrics: Record<string, number> } };
    assert.equal(r2.round.metrics['evalLinearProbe'], 0.75);
    assert.equal(r2.round.metrics['evalKnn'], 0.5);
    assert.equal('bogus' in r2.round.metrics, false, 'non-finite values are dropped');

    // A stream opened later starts with the replayed log (both rounds), not with the stages.
    const replay = await readStream(await fetch(`${base}/api/events`, { headers: auth }), (t) => (t.match(/event: round-completed/g) ?? []).length >= 2, 5000);
    assert.doesNotMatch(replay, /event: stage/);
    assert.match(replay, /event: round-evaluated\ndata: \{[^\n]*"roundId":2,"linearProbe":0.75,"knn":0.5/);

    const ck = (await (await fetch(`${base}/api/checkpoints`, { headers: auth })).json()) as { items: { roundId: number; tfjs: boolean }[] };
    assert.equal(schemaProblem(CheckpointsSchema, ck), undefined);
    assert.deepEqual(ck.items.map((c) => c.roundId).sort(), [1, 2]);
    assert.ok(ck.items.every((c) => !c.tfjs), 'no tfjs exporter in this coordinator');
    const missing = await fetch(`${base}/api/checkpoints/1/tfjs/model.json`, { headers: auth });
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { code: string }).code, 'FEDCLR_COORD_CHECKPOINT_NOT_FOUND');
    assert.equal((await fetch(`${base}/api/checkpoints/1/tfjs/checkpoint.json`, { headers: auth })).status, 400, 'only model.json and weights.bin');
  } finally {
    for (const a of agents) await a.close();
    await coordinator.close();
  }
});

test('dashboard: the history routes answer 304 to the ETag they gave until a round starts, ends or is evaluated', async () => {
  const dir = tempDir();
  const { coordinator } = await startTestCoordinator({ stateDir: join(dir, 'coordinator'), rounds: 2, minCohort: 2, maxCohort: 2 });
  const base = coordinator.url;
  const logger = pino({ level: process.env['FEDCLR_LOG_LEVEL'] ?? 'warn' });
  const agents: Awaited<ReturnType<typeof startAgent>>[] = [];
  const get = (path: string, etag?: string) => fetch(`${base}${path}`, etag === undefined ? {} : { headers: { 'if-none-match': etag } });
  try {
    const first = await get('/api/rounds?limit=20');
    const e0 = first.headers.get('etag') ?? '';
    assert.equal(((await first.json()) as { total: number }).total, 0);
    assert.match(e0, /^"[0-9a-f]+-\d+-rounds:20:0"$/);
    const same = await get('/api/rounds?limit=20', e0);
    assert.equal(same.status, 304);
    assert.equal(await same.text(), '');
    assert.notEqual((await get('/api/rounds?limit=5')).headers.get('etag'), e0, 'each query has its own tag');
    const c0 = (await get('/api/checkpoints')).headers.get('etag') ?? '';
    assert.equal((await get('/api/checkpoints', c0)).status, 304);

    for (const i of [0, 1]) {
      agents.push(await startAgent({ coordinatorUrl: base, stateDir: join(dir, `a${i}`), trainer: createFakeTrainer({ seed: i, delayMs: 20 }), logger, ...trust(coordinator.publicKey) }));
    }
    await withTimeout(coordinator.finished, 20_000, 'the run');
    const after = await get('/api/rounds?limit=20', e0);
    assert.equal(after.status, 200, 'two rounds later the old tag is stale');
    const e1 = after.headers.get('etag') ?? '';
    assert.notEqual(e1, e0);
    const page = (await after.json()) as { total: number; items: { roundId: number; status: string; metrics: Record<string, number> }[] };
    assert.equal(page.total, 2);
    assert.ok(page.items.every((r) => r.status === 'completed'));
    const ck = await get('/api/checkpoints', c0);
    assert.equal(ck.status, 200);
    assert.deepEqual(((await ck.json()) as { items: { roundId: number }[] }).items.map((c) => c.roundId).sort(), [1, 2]);
    assert.equal((await get('/api/rounds?limit=20', e1)).status, 304);

    // An evaluation changes a committed round: the cached answer goes with it.
    coordinator.recordRoundMetrics(1, { evalKnn: 0.625 });
    const evaluated = await get('/api/rounds?limit=20', e1);
    assert.equal(evaluated.status, 200);
    const rows = ((await evaluated.json()) as typeof page).items;
    assert.equal(rows.find((r) => r.roundId === 1)?.metrics['evalKnn'], 0.625);
  } finally {
    for (const a of agents) await a.close();
    await coordinator.close();
  }
});
