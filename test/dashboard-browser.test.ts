// The coordinator's dashboard in a real browser: Debian's chromium (/usr/bin/chromium, installed
// by `npm run setup`), driven by playwright-core, opens / of a coordinator running a small
// federation of agent processes, checks the DOM against the JSON API (agents listed, one table
// row per round, the charts' data points equal to the rounds' numbers), sees a round appear
// without a reload, and saves a screenshot (its path is printed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startCoordinator, type CoordinatorHandle } from '@fedclr/coordinator';
import { AGENT_SCRIPT, forkProc, makeModel, MODEL, tempDir, trust, withTimeout, type IpcProc } from './processes.js';

const CHROMIUM = process.env['FEDCLR_CHROMIUM'] ?? '/usr/bin/chromium';
const AGENTS = 4;
const ROUNDS = 4;

interface RoundItem {
  roundId: number;
  status: string;
  durationMs: number | null;
  cohortSize: number;
  included: number | null;
  metrics: Record<string, number>;
}

async function getJson<T>(url: string): Promise<T> {
  const r = await fetch(url);
  assert.equal(r.status, 200, `${url}: HTTP ${r.status}`);
  return (await r.json()) as T;
}

/** The chart points of one series: data-x (round id) -> data-y, as the page drew them. */
async function chartPoints(page: Page, chart: string, series: string): Promise<Map<number, number>> {
  const pairs = await page.$$eval(`figure[data-chart="${chart}"] [data-series="${series}"]`, (els) => els.map((e) => [Number(e.getAttribute('data-x')), Number(e.getAttribute('data-y'))] as [number, number]));
  return new Map(pairs);
}

async function nextCompleted(c: CoordinatorHandle, timeoutMs: number): Promise<number> {
  return withTimeout(new Promise<number>((resolve) => c.events.once('round-completed', (s) => resolve(s.roundId))), timeoutMs, 'a round to complete');
}

const skip = existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM}: run \`npm run setup\` (apt-get install chromium) to run the dashboard's browser test`;

test('the dashboard shows a live federation: agents, rounds, charts equal to the API, live updates', { skip, timeout: 90_000 }, async () => {
  const dir = tempDir('fedclr-dashboard-');
  const { manifest, weights } = makeModel(MODEL.rows, MODEL.cols, MODEL.seed);
  const coordinator = await startCoordinator(
    {
      stateDir: join(dir, 'coordinator'),
      enrolment: { mode: 'open' },
      port: 0,
      logLevel: 'warn',
      aggregation: 'plain',
      rounds: ROUNDS,
      minCohort: AGENTS,
      maxCohort: AGENTS,
      firstRoundAgents: AGENTS,
      deadlineMs: 20_000,
      deadlineGraceMs: 200,
      retryDelayMs: 100,
      quorum: { fraction: 1, minCount: AGENTS },
    },
    {
      initialModel: { architecture: 'test-mlp', manifest, weights },
      // A stand-in for the CLI's tfjs exporter: the rounds table links each checkpoint's model.json.
      exporters: [
        {
          name: 'tfjs',
          write: async (cp, target) => {
            mkdirSync(join(target, 'tfjs'), { recursive: true });
            writeFileSync(join(target, 'tfjs', 'model.json'), JSON.stringify({ format: 'layers-model', round: cp.roundId }));
          },
        },
      ],
    },
  );
  const procs: IpcProc[] = [];
  let browser: Browser | undefined;
  try {
    const firstDone = nextCompleted(coordinator, 30_000);
    for (let i = 0; i < AGENTS; i++) {
      procs.push(
        forkProc(AGENT_SCRIPT, {
          coordinatorUrl: coordinator.url,
          stateDir: join(dir, `agent-${i}`),
          agentId: `agent-${i}`,
          // ~1.2 s rounds: time for the page to be open before the next one completes.
          trainer: { seed: `s${i}`, exampleCount: 10 * (i + 1), scale: 0.01, delayMs: 1200 },
          ...trust(coordinator.publicKey),
        }),
      );
    }
    await firstDone;

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1800 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const t0 = Date.now();
    await page.goto(`${coordinator.url}/`);
    await page.waitForSelector('#rounds-rows tr');
    const loadMs = Date.now() - t0;
    await page.waitForSelector('#live.on', { timeout: 10_000 });

    // Agents: every agent id is listed.
    const agentIds = await page.$$eval('#agents-rows tr', (rows) => rows.map((r) => r.getAttribute('data-agent')));
    for (let i = 0; i < AGENTS; i++) assert.ok(agentIds.includes(`agent-${i}`), `agent-${i} listed (got ${agentIds.join(', ')})`);

    // Live: the next round completes and its row appears without a reload.
    const seenRows = await page.$$eval('#rounds-rows tr', (rows) => rows.length);
    const more = await nextCompleted(coordinator, 30_000);
    await page.waitForSelector(`#rounds-rows tr[data-round="${more}"] >> text=completed`, { timeout: 10_000 });
    // The screenshot while the federation runs (agents online, a round in progress).
    const artifacts = process.env['FEDCLR_ARTIFACTS'] ?? join(tmpdir(), 'fedclr-artifacts');
    mkdirSync(artifacts, { recursive: true });
    const shot = join(artifacts, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`dashboard screenshot: ${shot} (first load ${loadMs} ms)`);
    await withTimeout(coordinator.finished, 30_000, 'the federation to finish');
    // The last round's commit: the page updates from its event; then compare with the API.
    // (page functions as strings: this package compiles without the DOM's types)
    await page.waitForFunction(`document.body.dataset.completedRounds === '${ROUNDS}'`, undefined, { timeout: 10_000 });
    const api = await getJson<{ items: RoundItem[]; total: number }>(`${coordinator.url}/api/rounds?limit=500`);
    // The history is redrawn at most every 3 s: wait until every row has the API's final status.
    const finalCompleted = api.items.filter((r) => r.status === 'completed').length;
    await page.waitForFunction(
      `document.querySelectorAll('#rounds-rows tr').length === ${api.items.length} && Array.from(document.querySelectorAll('#rounds-rows tr')).filter((r) => r.children[1].textContent === 'completed').length === ${finalCompleted}`,
      undefined,
      { timeout: 10_000 },
    );
    const rowIds = await page.$$eval('#rounds-rows tr', (rows) => rows.map((r) => Number(r.getAttribute('data-round'))));
    assert.deepEqual(rowIds, api.items.map((r) => r.roundId), 'one row per round, newest first');
    assert.ok(rowIds.length > seenRows, `rows grew live (${seenRows} -> ${rowIds.length})`);

    // Charts: each point is the API's number for that round.
    const completed = api.items.filter((r) => r.status === 'completed');
    assert.equal(completed.length, ROUNDS);
    const loss = await chartPoints(page, 'loss', 'loss');
    assert.deepEqual(new Map(completed.map((r) => [r.roundId, r.metrics['loss'] as number])), loss, 'loss points');
    const included = await chartPoints(page, 'participants', 'included');
    assert.deepEqual(new Map(api.items.map((r) => [r.roundId, r.included ?? 0])), included, 'participant bars');
    const training = await chartPoints(page, 'time', 'training');
    assert.deepEqual(new Map(completed.map((r) => [r.roundId, (r.metrics['trainMs'] as number) / 1000])), training, 'training-time bars');
    for (const r of completed) assert.equal(r.metrics['trainMs'], 1200, 'a round\'s trainMs: its longest training loop');

    // Checkpoint links: the kept checkpoints' model.json, served by the coordinator.
    const links = await page.$$eval('#rounds-rows a', (as) => as.map((a) => a.getAttribute('href') ?? ''));
    assert.ok(links.length > 0, 'checkpoint links');
    const linked = await getJson<{ round: number }>(new URL(links[0] as string, coordinator.url).href);
    assert.equal(linked.round, completed[0]?.roundId);

    // Event log and summary.
    const log = await page.$$eval('#event-log li', (lis) => lis.map((l) => l.textContent ?? ''));
    assert.ok(log.some((l) => l.includes(`round ${more} completed`)), `the event log has round ${more} (got ${log.slice(0, 5).join(' | ')})`);
    const summary = await page.textContent('#summary-list');
    assert.match(summary ?? '', /test-mlp/);
    assert.match(summary ?? '', /plain/);
    assert.deepEqual(errors, [], 'no page errors');

  } finally {
    await browser?.close();
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await coordinator.close();
  }
});
