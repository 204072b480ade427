// The dashboard's bar, measured: an in-process coordinator (plain rounds, a small model) with
// --agents agents (fake trainer, --delay-ms per round) runs --history rounds; then Debian's
// chromium (playwright-core, /usr/bin/chromium) loads / --loads times (until every round row and
// every agent row is drawn); then the round time is compared with and without a browser attached.
//
// The round-time comparison, made robust to a shared machine's drift:
// - --pairs pairs of blocks of --block rounds, one block without a browser and one with, in ABBA
//   order (without-with, with-without, ...), so that a linear drift in load hits both sides alike;
//   each pair gives a ratio (mean with / mean without), reported as median, quartiles and range.
// - The attached browser is a plain `chromium --headless` process opening the page, not one driven
//   by playwright: playwright's protocol traffic (an event per network chunk of the page's event
//   stream) would land in this process, which is the coordinator's, and be counted as the page's.
//   It gets the flags playwright gives chromium to keep its background work (component updates,
//   background networking, ...) off the machine. The rounds while it starts, loads the page and
//   settles (--settle-ms), and the round after it quits, are left out.
// - The coordinator's own CPU time per round (this process: the agents run in a child, --host-agents)
//   with and without the page: the work the page causes, less noisy than wall time on 2 cores;
//   and chromium's CPU time per round (its process group, from /proc): on this bench it shares the
//   coordinator's 2 cores, which a browser on the operator's own machine would not.
// Prints one JSON object.
//
//   npm run bench:dashboard                       100 agents, 100 rounds of history
//   node scripts/dist/bench-dashboard.js --agents 20 --history 30 --pairs 2
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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
    pairs: { type: 'string', default: '8' },
    block: { type: 'string', default: '10' },
    'settle-ms': { type: 'string', default: '4000' },
    'delay-ms': { type: 'string', default: '200' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    // internal: run the agents of a coordinator (URL KEY DIR) in this process
    'host-agents': { type: 'string', multiple: true },
  },
});
const AGENTS = Number(args.agents);
const HISTORY = Number(args.history);
const LOADS = Number(args.loads);
const PAIRS = Number(args.pairs);
const SETTLE_MS = Number(args['settle-ms']);
const BLOCK = Number(args.block);
const DELAY = Number(args['delay-ms']);

/** Linux's USER_HZ (getconf CLK_TCK): /proc's CPU times are in these ticks. */
const CLOCK_TICKS = 100;
/** The switches playwright gives chromium that keep its background work off the machine (and the sandbox off, as in the browser test). */
const QUIET_CHROMIUM = [
  '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check',
  '--disable-background-networking', '--disable-component-update', '--disable-extensions', '--disable-sync',
  '--disable-default-apps', '--disable-breakpad', '--metrics-recording-only', '--mute-audio', '--password-store=basic',
  '--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,InterestFeedContentSuggestions',
];

const rows = 8;
const cols = 8;
const manifest = [
  { name: 'dense/kernel', shape: [rows, cols], dtype: 'float32' as const },
  { name: 'dense/bias', shape: [cols], dtype: 'float32' as const },
];
const weights = new Float32Array(rows * cols + cols).map((_, i) => Math.sin(i) * 0.1);

/** The durations of the next n completed rounds; stop() ends the count early and returns those so far. */
function rounds(c: CoordinatorHandle, n: number): Promise<number[]> & { stop: () => number[] } {
  const out: number[] = [];
  let resolveOut: (v: number[]) => void = () => undefined;
  const on = (s: { durationMs: number }): void => {
    out.push(s.durationMs);
    if (out.length === n) stop();
  };
  const stop = (): number[] => {
    c.events.off('round-completed', on);
    resolveOut(out);
    return out;
  };
  c.events.on('round-completed', on);
  return Object.assign(new Promise<number[]>((resolve) => (resolveOut = resolve)), { stop });
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
/** The q-quantile of xs (linear between order statistics). */
const quantile = (xs: readonly number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(s.length - 1, lo + 1);
  return (s[lo] as number) + ((s[hi] as number) - (s[lo] as number)) * (pos - lo);
};
const median = (xs: readonly number[]): number => quantile(xs, 0.5);
const r4 = (v: number): number => Math.round(v * 10_000) / 10_000;

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

/**
 * A headless chromium of its own process group showing the dashboard, once its event stream is
 * open (the coordinator's gauge of open streams, read in-process: no request of this script's).
 */
async function attachPlainChromium(c: CoordinatorHandle, profile: string): Promise<ChildProcess> {
  const before = await openStreams(c);
  const proc = spawn(args.chromium, ['--headless=new', ...QUIET_CHROMIUM, `--user-data-dir=${profile}`, `${c.url}/`], {
    stdio: 'ignore',
    detached: true,
  });
  const deadline = Date.now() + 30_000;
  while ((await openStreams(c)) <= before) {
    if (proc.exitCode !== null) throw new Error(`chromium exited with ${proc.exitCode} before the page opened its event stream`);
    if (Date.now() > deadline) throw new Error('the page opened no event stream within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return proc;
}

/** The CPU time (user + system, ms) of the processes in process group `pgid`, from /proc. */
function groupCpuMs(pgid: number): number {
  let ticks = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') continue; // it ended meanwhile
      throw err;
    }
    // Fields after the command (which may hold spaces) start after its closing parenthesis.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(f[2]) === pgid) ticks += Number(f[11]) + Number(f[12]); // pgrp; utime, stime
  }
  return (ticks * 1000) / CLOCK_TICKS;
}

/** Ends the chromium started by attachPlainChromium (its process group: the browser and its helpers). */
async function detach(proc: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  process.kill(-(proc.pid as number), 'SIGTERM');
  await exited;
}

async function openStreams(c: CoordinatorHandle): Promise<number> {
  const gauge = c.metrics.dashboardStreams;
  if (gauge === undefined) throw new Error('this coordinator has no fedclr_dashboard_streams gauge');
  return (await gauge.get()).values[0]?.value ?? 0;
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

    // Playwright's work stays out of the round timing (see the header): no playwright browser from here on.
    await browser.close();
    browser = undefined;

    const without: number[] = [];
    const withBrowser: number[] = [];
    const cpuWithout: number[] = [];
    const cpuWith: number[] = [];
    const pairRatios: number[] = [];
    const attachRounds: number[] = [];
    const chromiumCpu: number[] = [];
    for (let p = 0; p < PAIRS; p++) {
      let meanWithout = 0;
      let meanWith = 0;
      // ABBA: even pairs start without the browser, odd ones with it.
      for (const attached of p % 2 === 0 ? [false, true] : [true, false]) {
        let page: ChildProcess | undefined;
        if (attached) {
          page = await attachPlainChromium(coordinator, join(dir, `chromium-${p}`));
          // The rounds during which the page loads its whole history and chromium settles are not the bar's (reported apart).
          const settling = rounds(coordinator, 1_000_000);
          await new Promise((r) => setTimeout(r, SETTLE_MS));
          attachRounds.push(...settling.stop());
          await rounds(coordinator, 1); // from a round boundary
        }
        const cpu0 = process.cpuUsage();
        const chromium0 = page === undefined ? 0 : groupCpuMs(page.pid as number);
        const times = await rounds(coordinator, BLOCK);
        const cpu = process.cpuUsage(cpu0);
        const cpuPerRound = (cpu.user + cpu.system) / 1000 / BLOCK;
        if (page !== undefined) chromiumCpu.push((groupCpuMs(page.pid as number) - chromium0) / BLOCK);
        (attached ? withBrowser : without).push(...times);
        (attached ? cpuWith : cpuWithout).push(cpuPerRound);
        if (attached) meanWith = mean(times);
        else meanWithout = mean(times);
        if (page !== undefined) {
          await detach(page);
          await rounds(coordinator, 1); // chromium quitting shares the cores
        }
      }
      pairRatios.push(meanWith / meanWithout);
    }
    const ratioOfMeans = mean(withBrowser) / mean(without);
    const pairMedian = median(pairRatios);
    console.log(
      JSON.stringify({
        agents: AGENTS,
        historyRounds: HISTORY,
        historyMs,
        trainerDelayMs: DELAY,
        loadAverage: (await import('node:os')).loadavg().map((l) => Math.round(l * 100) / 100),
        pageLoadMs: { median: Math.round(median(loads)), max: Math.round(Math.max(...loads)), all: loads.map(Math.round), bar: 1000, pass: median(loads) < 1000, breakdown: breakdowns },
        roundMs: {
          design: `${PAIRS} ABBA pairs of ${BLOCK}-round blocks; with = a plain headless chromium on / (not playwright)`,
          without: { mean: Math.round(mean(without)), median: median(without), n: without.length },
          withBrowser: { mean: Math.round(mean(withBrowser)), median: median(withBrowser), n: withBrowser.length },
          roundsWhileThePageLoads: { mean: Math.round(mean(attachRounds)), n: attachRounds.length },
          pairRatios: pairRatios.map(r4),
          ratio: { medianOfPairs: r4(pairMedian), q1: r4(quantile(pairRatios, 0.25)), q3: r4(quantile(pairRatios, 0.75)), min: r4(Math.min(...pairRatios)), max: r4(Math.max(...pairRatios)), ofMeans: r4(ratioOfMeans), ofMedians: r4(median(withBrowser) / median(without)) },
          bar: 1.02,
          pass: pairMedian <= 1.02,
        },
        coordinatorCpuMsPerRound: {
          without: Math.round(median(cpuWithout) * 100) / 100,
          withBrowser: Math.round(median(cpuWith) * 100) / 100,
          pageCostMs: Math.round((median(cpuWith) - median(cpuWithout)) * 100) / 100,
          blocks: { without: cpuWithout.map((c) => Math.round(c * 100) / 100), withBrowser: cpuWith.map((c) => Math.round(c * 100) / 100) },
        },
        chromiumCpuMsPerRound: { median: Math.round(median(chromiumCpu) * 100) / 100, blocks: chromiumCpu.map((c) => Math.round(c * 100) / 100) },
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
