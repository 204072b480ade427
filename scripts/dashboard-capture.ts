// A screenshot of a live coordinator's dashboard once a run has reached a number of rounds, taken
// with Debian's chromium (headless, playwright-core), and what the page showed as numbers: the
// evidence behind docs/img/dashboard-10-agents-5-rounds.png (scripts/dashboard-demo.ts).
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { chromium } from 'playwright-core';

export interface CaptureOptions {
  /** The coordinator's base URL (its dashboard is at /). */
  readonly url: string;
  /** Completed rounds to wait for. */
  readonly rounds: number;
  /** Evaluated rounds (kNN points on the evaluation chart) to wait for: the worker may lag the rounds. */
  readonly evaluated: number;
  readonly out: string;
  readonly chromium: string;
  readonly timeoutMs: number;
}

/** What the captured page showed. */
export interface CapturedDashboard {
  readonly screenshot: string;
  readonly phase: string | null;
  readonly agents: number;
  readonly agentsLine: string | null;
  readonly rounds: number;
  readonly events: number;
  readonly refusalsOrDrops: readonly string[];
  readonly loss: readonly number[];
  readonly epsilon: readonly number[];
  readonly knn: readonly number[];
  readonly probe: readonly number[];
  readonly checkpointLinks: number;
}

/**
 * Opens the dashboard, waits until `rounds` rounds are completed and `evaluated` of them scored
 * while the run still goes on (a round collecting: agents online, in its cohort), screenshots the
 * whole page to `out`.
 */
export async function captureDashboard(o: CaptureOptions): Promise<CapturedDashboard> {
  const browser = await chromium.launch({ executablePath: o.chromium, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1500, height: 1900 } });
    await page.goto(`${o.url}/`);
    const ready = `Number(document.body.dataset.completedRounds) >= ${o.rounds} && document.querySelectorAll('figure[data-chart="eval"] [data-series="kNN"]').length >= ${o.evaluated} && document.querySelector('#phase') !== null && document.querySelector('#phase').textContent === 'collecting'`;
    // A run that ends first would keep the page waiting for the whole timeout: stop at 'finished'.
    const finished = `document.querySelector('#phase') !== null && document.querySelector('#phase').textContent === 'finished'`;
    await page.waitForFunction(`(${ready}) || (${finished})`, undefined, { timeout: o.timeoutMs, polling: 500 });
    if (!(await page.evaluate(ready))) {
      throw new Error(`the run finished before its dashboard showed ${o.rounds} rounds with ${o.evaluated} evaluated and a round in progress (give it more rounds)`);
    }
    mkdirSync(dirname(o.out), { recursive: true });
    await page.screenshot({ path: o.out, fullPage: true });
    const ys = (chart: string, series: string): Promise<number[]> =>
      page.$$eval(`figure[data-chart="${chart}"] [data-series="${series}"]`, (r) => r.map((e) => Number(e.getAttribute('data-y'))));
    return {
      screenshot: o.out,
      phase: await page.$eval('#phase', (e) => e.textContent),
      agents: await page.$$eval('#agents-rows tr', (r) => r.length),
      agentsLine: await page.$eval('#agents-counts', (e) => e.textContent),
      rounds: await page.$$eval('#rounds-rows tr', (r) => r.length),
      events: await page.$$eval('#event-log li', (r) => r.length),
      refusalsOrDrops: await page.$$eval('#event-log li[data-type="participant"]', (r) => r.map((e) => e.textContent ?? '')),
      loss: await ys('loss', 'loss'),
      epsilon: await ys('epsilon', 'epsilon'),
      knn: await ys('eval', 'kNN'),
      probe: await ys('eval', 'linear probe'),
      checkpointLinks: await page.$$eval('#rounds-rows a[href$="model.json"]', (r) => r.length),
    };
  } finally {
    await browser.close();
  }
}
