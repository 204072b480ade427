// report.html beside report.json: the simulation's rounds through the coordinator dashboard's
// charts (renderReportHtml), one self-contained file that opens offline.
import { renderReportHtml, type ReportRound } from '@fedclr/coordinator';
import type { EvalRecord, RoundRecord } from './records.js';

export interface SimulationReportView {
  readonly config: Readonly<Record<string, unknown>>;
  readonly rounds: readonly RoundRecord[];
  readonly failedRounds: readonly { roundId: number; status: string; reason: string | null }[];
  readonly evaluations: readonly EvalRecord[];
  readonly linearProbe: number;
  readonly knn: number;
  readonly privacy: { readonly epsilon: number; readonly delta: number; readonly targetEpsilon: number | null } | null;
}

/**
 * The rounds in GET /api/rounds' shape, each evaluation on the round it followed. With
 * --eval-data every round carries the coordinator's score on that folder: the chart then plots
 * those alone (one data set), and simulate's final score stays in the summary.
 */
export function reportRounds(r: SimulationReportView): ReportRound[] {
  const evalAfter = new Map(r.evaluations.map((e) => [e.afterRound, e]));
  const byCoordinator = r.rounds.some((x) => x.coordinatorEval !== undefined);
  const done: ReportRound[] = r.rounds.map((x) => {
    const ev = byCoordinator ? x.coordinatorEval : (x.eval ?? evalAfter.get(x.round));
    const metrics: Record<string, number> = {};
    const put = (k: string, v: number | null | undefined): void => {
      if (typeof v === 'number' && Number.isFinite(v)) metrics[k] = v;
    };
    put('loss', x.loss);
    put('learningRate', x.learningRate);
    put('trainMs', x.trainMs);
    put('dpEpsilon', x.dpEpsilon);
    put('evalLinearProbe', ev?.linearProbe);
    put('evalKnn', ev?.knn);
    return { roundId: x.roundId, status: 'completed', durationMs: x.roundMs, cohortSize: x.cohort, included: x.participants, metrics };
  });
  const failed: ReportRound[] = r.failedRounds.map((f) => ({ roundId: f.roundId, status: f.status, durationMs: null, cohortSize: 0, included: 0, reason: f.reason, metrics: {} }));
  return [...done, ...failed];
}

export function simulationReportHtml(r: SimulationReportView, generatedAt = new Date()): string {
  const c = r.config;
  const s = (v: unknown): string => (v === null || v === undefined ? '–' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const summary: [string, string][] = [
    ['model', `${s(c['architecture'])} (${s(c['parameters'])} parameters)`],
    ['recipe', `loss ${s(c['loss'])}, optimizer ${s(c['optimizer'])}, lr ${s(c['lr'])} (${s(c['lrSchedule'])}), batch ${s(c['batch'])}, temperature ${s(c['temperature'])}`],
    ['strategy', `${s(c['strategy'])} (server lr ${s(c['serverLr'])})`],
    ['aggregation', s(c['aggregation'])],
    ['clients', `${s(c['clients'])} (cohort ${s(c['cohort'])}, partition ${s(c['partition'])})`],
    ['rounds', `${r.rounds.length} completed, ${r.failedRounds.length} failed`],
    ['final linear probe / kNN', `${(r.linearProbe * 100).toFixed(2)}% / ${(r.knn * 100).toFixed(2)}%`],
    ['differential privacy', r.privacy === null ? 'off' : `epsilon ${r.privacy.epsilon.toFixed(3)} at delta ${r.privacy.delta}${r.privacy.targetEpsilon === null ? '' : ` (budget ${r.privacy.targetEpsilon})`}`],
  ];
  return renderReportHtml({ title: 'fedclr simulate report', summary, rounds: reportRounds(r), generatedAt });
}
