// report.html of `fedclr simulate`: self-contained (no script, stylesheet, image or link that
// loads anything), and its charts plot exactly report.json's numbers, evaluations on their round.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RoundRecord } from '../src/simulate/records.js';
import { reportRounds, simulationReportHtml, type SimulationReportView } from '../src/simulate/report-html.js';

function round(i: number, over: Partial<RoundRecord> = {}): RoundRecord {
  return {
    round: i, roundId: i + 1, cohort: 5, participants: 4, excluded: [], loss: 2 - i * 0.25, learningRate: 0.004, examples: 100, dpNoiseStd: null,
    dpEpsilon: 0.5 * i, dpDelta: 1e-5, wallMs: 3000, gapMs: 100, roundMs: 2900, commitMs: 50, trainMs: 2000 + i, agentTrainMs: 2000, slotWaitMs: null,
    setupMs: 10, nonTrainingMs: 1000, nonTrainingShare: 0.33, meanDeltaNorm: 0.1, elapsedMs: 3000 * i, ...over,
  };
}

const view: SimulationReportView = {
  config: { architecture: 'convnet-s', parameters: 1234, loss: 'ntxent', aggregation: 'plain', clients: 5 },
  rounds: [round(1), round(2, { eval: { afterRound: 2, linearProbe: 0.61, knn: 0.55, evalMs: 10 } }), round(3)],
  failedRounds: [{ roundId: 5, status: 'failed', reason: 'quorum <not> reached' }],
  evaluations: [{ afterRound: 2, linearProbe: 0.61, knn: 0.55, evalMs: 10 }, { afterRound: 3, linearProbe: 0.66, knn: 0.6, evalMs: 10 }],
  linearProbe: 0.66,
  knn: 0.6,
  privacy: { epsilon: 1.5, delta: 1e-5, targetEpsilon: 8 },
};

const points = (html: string, chart: string, series: string): [number, number][] => {
  const fig = new RegExp(`<figure data-chart="${chart}"[\\s\\S]*?</figure>`).exec(html)?.[0] ?? '';
  return [...fig.matchAll(new RegExp(`data-series="${series}" data-x="(\\d+)" data-y="([^"]+)"`, 'g'))].map((m) => [Number(m[1]), Number(m[2])]);
};

test('report.html: self-contained, and its charts plot report.json\'s numbers', () => {
  const html = simulationReportHtml(view, new Date(0));
  assert.doesNotMatch(html, /<script(?![^>]*type="application\/json")/, 'no executable script');
  assert.doesNotMatch(html, /\s(src|href)=/, 'nothing loaded from anywhere');
  assert.doesNotMatch(html, /<link\b/);
  assert.deepEqual(points(html, 'loss', 'loss'), [[2, 1.75], [3, 1.5], [4, 1.25]]);
  assert.deepEqual(points(html, 'time', 'training'), [[2, 2.001], [3, 2.002], [4, 2.003]]);
  assert.deepEqual(points(html, 'eval', 'linear probe'), [[3, 0.61], [4, 0.66]]);
  assert.deepEqual(points(html, 'eval', 'kNN'), [[3, 0.55], [4, 0.6]]);
  assert.deepEqual(points(html, 'epsilon', 'epsilon'), [[2, 0.5], [3, 1], [4, 1.5]]);
  assert.deepEqual(points(html, 'participants', 'included'), [[2, 4], [3, 4], [4, 4], [5, 0]]);
  assert.match(html, /quorum &lt;not&gt; reached/, 'reasons are escaped');
  const data = JSON.parse(/<script type="application\/json" id="fedclr-report-data">([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '') as { rounds: unknown[] };
  assert.deepEqual(data.rounds, JSON.parse(JSON.stringify(reportRounds(view))));
});

test("report.html with --eval-data: the evaluation chart plots the coordinator's scores of every round, not simulate's final one", () => {
  const coordinatorEval = (linearProbe: number, knn: number) => ({ linearProbe, knn, evalMs: 5 });
  const html = simulationReportHtml(
    { ...view, rounds: [round(1, { coordinatorEval: coordinatorEval(0.5, 0.4) }), round(2, { coordinatorEval: coordinatorEval(0.52, 0.45) }), round(3, { coordinatorEval: coordinatorEval(0.55, 0.5) })], evaluations: [{ afterRound: 3, linearProbe: 0.66, knn: 0.6, evalMs: 10 }] },
    new Date(0),
  );
  assert.deepEqual(points(html, 'eval', 'linear probe'), [[2, 0.5], [3, 0.52], [4, 0.55]]);
  assert.deepEqual(points(html, 'eval', 'kNN'), [[2, 0.4], [3, 0.45], [4, 0.5]]);
  assert.match(html, /66\.00% \/ 60\.00%/, "simulate's final score in the summary");
});
