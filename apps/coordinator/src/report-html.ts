// report.html: a run's charts as one self-contained file (no script, no network: the SVG is
// drawn here, by the dashboard's own dashboard/charts.js evaluated in a vm context, so the report
// and the live page draw the same charts from the same numbers). The rounds are embedded too, as
// JSON, for anyone who wants to re-plot them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { DASHBOARD_DIR } from './dashboard.js';

/** A round as GET /api/rounds gives it (the fields the charts read). */
export interface ReportRound {
  readonly roundId: number;
  readonly status: string;
  readonly durationMs: number | null;
  readonly cohortSize: number;
  readonly included: number | null;
  readonly reason?: string | null;
  /** loss, trainMs, learningRate, dpEpsilon, evalLinearProbe, evalKnn, ... */
  readonly metrics: Readonly<Record<string, number>>;
}

export interface ReportInput {
  readonly title: string;
  /** Label -> value lines of the run summary. */
  readonly summary: readonly (readonly [string, string])[];
  readonly rounds: readonly ReportRound[];
  readonly generatedAt?: Date;
}

interface Charts {
  roundCharts(rounds: readonly ReportRound[]): { id: string; title: string; svg: string }[];
  esc(s: string): string;
  fmt(v: number): string;
}

let charts: Charts | undefined;
function loadCharts(): Charts {
  // charts.js is a classic browser script defining one global; it touches no DOM.
  charts ??= runInNewContext(`${readFileSync(join(DASHBOARD_DIR, 'charts.js'), 'utf8')}\nFedclrCharts`, {}, { filename: 'charts.js' }) as Charts;
  return charts;
}

export function renderReportHtml(input: ReportInput): string {
  const c = loadCharts();
  const css = readFileSync(join(DASHBOARD_DIR, 'dashboard.css'), 'utf8');
  const esc = c.esc;
  const num = (v: number | null | undefined): string => (typeof v === 'number' && Number.isFinite(v) ? c.fmt(v) : '–');
  const rows = [...input.rounds]
    .sort((a, b) => a.roundId - b.roundId)
    .map(
      (r) =>
        `<tr data-round="${r.roundId}"><td>${r.roundId}</td><td>${esc(r.status)}</td><td>${r.durationMs === null ? '–' : (r.durationMs / 1000).toFixed(1)} s</td><td>${r.cohortSize}</td><td>${num(r.included)}</td>` +
        `<td>${num(r.metrics['loss'])}</td><td>${num(r.metrics['learningRate'])}</td><td>${num(r.metrics['evalLinearProbe'])}</td><td>${num(r.metrics['evalKnn'])}</td><td>${num(r.metrics['dpEpsilon'])}</td><td class="reason">${esc(r.reason ?? '')}</td></tr>`,
    )
    .join('\n');
  const figures = c.roundCharts(input.rounds).map((f) => `<figure data-chart="${f.id}" style="margin:0">${f.svg}</figure>`).join('\n');
  // '<' escaped so that no value can close the script element.
  const data = JSON.stringify({ summary: input.summary, rounds: input.rounds }).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(input.title)}</title>
<style>
${css}
</style>
</head>
<body>
<header><h1>${esc(input.title)}</h1><span class="pill">${esc((input.generatedAt ?? new Date()).toISOString())}</span></header>
<main>
<section id="summary"><h2>Run</h2><dl>${input.summary.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl></section>
<section id="charts"><h2>Per round</h2><div id="chart-grid">
${figures}
</div></section>
<section id="rounds"><h2>Rounds</h2>
<table><thead><tr><th>round</th><th>status</th><th>duration</th><th>cohort</th><th>included</th><th>loss</th><th>lr</th><th>linear probe</th><th>kNN</th><th>epsilon</th><th>reason</th></tr></thead><tbody>
${rows}
</tbody></table></section>
</main>
<script type="application/json" id="fedclr-report-data">${data}</script>
</body>
</html>
`;
}
