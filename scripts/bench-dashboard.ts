// The dashboard's bar, measured: an in-process coordinator (plain rounds, a small model) with
// --agents in-process agents (fake trainer, --delay-ms per round) runs --history rounds; then
// Debian's chromium (playwright-core, /usr/bin/chromium) loads / --loads times (until every round
// row and every agent row is drawn), and the round time is compared with and without a browser
// attached, in alternating blocks of --block rounds (so that drift in the machine's load hits both
// sides). The agents run in a child process (this script, --host-agents), so that the coordinator's
// process, whose event loop serves the page, holds only the coordinator, as in a deployment.
// Prints one JSON object.
//
//   npm run bench:dashboard                       100 agents, 100 rounds of history
//   node scripts/dist/bench-dashboard.js --agents 20 --history 30 --blocks 2
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createFakeTrainer, startAgent, type AgentHandle } from '@fedclr/agent';
import { startCoordinator, type CoordinatorHandle } from '@fedclr/coordinator';

const { values: args } = parseArgs({
  options: {
    agents: { type: 'string', default: '100' },
    history: { type: 'string', default: '100' },
    loads: { type: 'string', default: '5' },
    blocks: { type: 'string', default: '4' },
    block: { type: 'string', default: '5' },
    'delay-ms': { type: 'string', default: '200' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    // internal: run the agents of a coordinator (URL KEY DIR) in this process
    'host-agents': { type: 'string', multiple: true },
  },
});
const AGENTS = Number(args.agents);
const HISTORY = Number(args.history);
const LOADS = Number(args.loads);
const BLOCKS = Number(args.blocks);
const BLOCK = Number(args.block);
const DELAY = Number(args['delay-ms']);

const rows = 8;
const cols = 8;
const manifest = [
  { name: 'dense/kernel', shape: [rows, cols], dtype: 'float32' as const },
  { name: 'dense/bias', shape: [cols], dtype: 'float32' as const },
];
const weights = new Float32Array(rows * cols + cols).map((_, i) => Math.sin(i) * 0.1);

function rounds(c: CoordinatorHandle, n: number): Promise<number[]> {
  return new Promise((resolve) => {
    const out: number[] = [];
    const on = (s: { durationMs: number }): void => {
      out.push(s.durationMs);
      if (out.length === n) {
        c.events.off('round-completed', on);
        resolve(out);
      }
    };
    c.events.on('round-completed', on);
  });
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

interface LoadBreakdown {
  /** Navigation start to the HTML's last byte, and to DOMContentLoaded (the scripts ran). */
  htmlMs: number;
  domContentLoadedMs: number;
  /** The slowest JSON request of the first render (start to last byte). */
  slowestApiMs: number;
  slowestApi: string;
  /** The page's own work for its last render (fetch answers to DOM), ms. */
  renderMs: number;
}

async function openDashboard(browser: Browser, url: string): Promise<{ page: Page; ms: number; breakdown: LoadBreakdown }> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const t0 = performance.now();
  await page.goto(`${url}/`);
  await page.waitForFunction(`document.querySelectorAll('#rounds-rows tr').length >= ${Math.min(HISTORY, 500)} && document.querySelectorAll('#agents-rows tr').length >= ${AGENTS} && document.querySelectorAll('figure[data-chart] svg').length === 5`, undefined, { timeout: 30_000, polling: 'raf' });
  const ms = performance.now() - t0;
  const breakdown = (await page.evaluate(`(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const api = performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/') && !e.name.includes('/api/events'));
    const slow = api.reduce((a, e) => (a === null || e.duration > a.duration ? e : a), null);
    return { htmlMs: Math.round(nav.responseEnd), domContentLoadedMs: Math.round(nav.domContentLoadedEventEnd), slowestApiMs: slow === null ? 0 : Math.round(slow.duration), slowestApi: slow === null ? '' : new URL(slow.name).pathname, renderMs: Math.round(window.fedclrDashboard.lastRenderMs) };
  })()`)) as LoadBreakdown;
  return { page, ms, breakdown };
}

if (args['host-agents'] !== undefined) {
  // The agents' process: AGENTS agents of the coordinator at URL, until the parent disconnects.
  const [url, key, stateRoot] = args['host-agents'] as [string, string, string];
  const log = pino({ level: 'error' });
  const hosted: AgentHandle[] = [];
  for (let i = 0; i < AGENTS; i++) {
    hosted.push(
      await startAgent({
        coordinatorUrl: url,
        stateDir: join(stateRoot, `agent-${i}`),
        agentId: `agent-${String(i).padStart(3, '0')}`,
        trainer: createFakeTrainer({ seed: i, delayMs: DELAY, exampleCount: 10 + i }),
        logger: log,
        coordinatorKey: key,
        policy: { requireSecure: false, minCohort: 1 },
      }),
    );
  }
  process.once('disconnect', () => void Promise.all(hosted.map((a) => a.close())).then(() => process.exit(0)));
} else {
  await bench();
}

async function bench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fedclr-bench-dashboard-'));
  const coordinator = await startCoordinator(
    {
      stateDir: join(dir, 'coordinator'),
      enrolment: { mode: 'open' },
      port: 0,
      logLevel: 'error',
      aggregation: 'plain',
      // More than enough: rounds that complete between two measurements are not counted; close() ends the run.
      rounds: 100_000,
      minCohort: AGENTS,
      maxCohort: AGENTS,
      firstRoundAgents: AGENTS,
      maxAgents: AGENTS + 10,
      deadlineMs: 60_000,
      quorum: { fraction: 0.9, minCount: 1 },
      retryDelayMs: 100,
      connections: { maxPendingPerIp: AGENTS + 10 },
    },
    { initialModel: { architecture: 'bench-mlp', manifest, weights } },
  );
  let browser: Browser | undefined;
  const agents = fork(fileURLToPath(import.meta.url), ['--agents', String(AGENTS), '--delay-ms', String(DELAY), '--host-agents', coordinator.url, '--host-agents', coordinator.publicKey, '--host-agents', dir], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  try {
    const historyDone = rounds(coordinator, HISTORY);
    const t0 = Date.now();
    await historyDone;
    const historyMs = Date.now() - t0;

    browser = await chromium.launch({ executablePath: args.chromium, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    const loads: number[] = [];
    const breakdowns: LoadBreakdown[] = [];
    for (let i = 0; i < LOADS; i++) {
      const { page, ms, breakdown } = await openDashboard(browser, coordinator.url);
      loads.push(ms);
      breakdowns.push(breakdown);
      await page.close();
    }

    // Alternating blocks: without a browser, then with one attached (page open, live stream on).
    const without: number[] = [];
    const withBrowser: number[] = [];
    const attaching: number[] = [];
    for (let b = 0; b < BLOCKS; b++) {
      without.push(...(await rounds(coordinator, BLOCK)));
      const { page } = await openDashboard(browser, coordinator.url);
      // The round during which the page loaded shares 2 cores with chromium's start-up: reported
      // apart; the bar is about a browser attached (the page open and following the stream).
      attaching.push(...(await rounds(coordinator, 1)));
      withBrowser.push(...(await rounds(coordinator, BLOCK)));
      await page.close();
    }
    const ratio = mean(withBrowser) / mean(without);
    console.log(
      JSON.stringify({
        agents: AGENTS,
        historyRounds: HISTORY,
        historyMs,
        trainerDelayMs: DELAY,
        pageLoadMs: { median: Math.round(median(loads)), max: Math.round(Math.max(...loads)), all: loads.map(Math.round), bar: 1000, pass: median(loads) < 1000, breakdown: breakdowns },
        roundMs: {
          without: { mean: Math.round(mean(without)), median: median(without), n: without.length },
          withBrowser: { mean: Math.round(mean(withBrowser)), median: median(withBrowser), n: withBrowser.length },
          roundWhileThePageLoads: { mean: Math.round(mean(attaching)), n: attaching.length },
          ratio: Math.round(ratio * 10_000) / 10_000,
          bar: 1.02,
          pass: ratio <= 1.02,
        },
        cores: (await import('node:os')).cpus().length,
      }),
    );
  } finally {
    await browser?.close();
    agents.disconnect();
    await new Promise((resolve) => agents.once('exit', resolve));
    await coordinator.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
