// `fedclr coordinator` at exit: <state>/report.html, the run's charts (every round in the state
// database, also those of earlier sessions of a resumed run) as one self-contained file.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderReportHtml, StateDb, type ReportRound, type ResolvedConfig } from '@fedclr/coordinator';

export async function writeCoordinatorReport(config: ResolvedConfig, model: { architecture: string; parameters: number }, stoppedBy: string): Promise<string> {
  // Read after the coordinator closed its handle: WAL mode lets a second connection read anyway.
  const db = new StateDb(join(config.stateDir, 'coordinator.db'));
  let rounds: ReportRound[];
  try {
    rounds = db.listRounds(1_000_000, 0).items.map((r) => ({ roundId: r.id, status: r.status, durationMs: r.durationMs, cohortSize: r.cohortSize, included: r.included, reason: r.reason, metrics: r.metrics }));
  } finally {
    db.close();
  }
  const t = config.training;
  const html = renderReportHtml({
    title: 'fedclr coordinator report',
    summary: [
      ['model', `${model.architecture} (${model.parameters} parameters)`],
      ['recipe', `loss ${t.loss}, optimizer ${t.optimizer}, lr ${t.learningRate} (${config.lrSchedule.kind}), batch ${t.batchSize}, local epochs ${config.localEpochs}`],
      ['strategy', config.strategy.name],
      ['aggregation', config.aggregation],
      ['differential privacy', t.dp === undefined ? 'off' : `sigma ${t.dp.noiseMultiplier}, clip ${t.clipNorm}, noise by ${t.dp.noise}`],
      ['rounds', `${rounds.filter((r) => r.status === 'completed').length} completed of ${config.rounds}; stopped by ${stoppedBy}`],
    ],
    rounds,
  });
  const path = join(config.stateDir, 'report.html');
  await writeFile(path, html);
  return path;
}
