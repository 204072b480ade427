// npm run chaos -- --agents N --dropout F --kills K --rounds R --seed S [more flags]: the chaos
// harness (chaos-run.ts). Prints one JSON summary; exits 0 only when every invariant held.
import { parseArgs } from 'node:util';
import { CHAOS_DEFAULTS, runChaos, type ChaosOptions } from './chaos-run.js';

const FLAGS: Record<string, keyof ChaosOptions> = {
  agents: 'agents',
  cohort: 'cohort',
  dropout: 'dropout',
  kills: 'kills',
  rounds: 'rounds',
  seed: 'seed',
  parameters: 'parameters',
  'agents-per-host': 'agentsPerHost',
  'train-ms': 'trainMs',
  stragglers: 'stragglers',
  'straggler-factor': 'stragglerFactor',
  'straggler-grace-ms': 'stragglerGraceMs',
  slow: 'slow',
  'latency-ms': 'latencyMs',
  'deadline-ms': 'deadlineMs',
  'stage-timeout-ms': 'stageTimeoutMs',
  tolerate: 'tolerate',
  quorum: 'quorum',
  'max-rss-mib': 'maxRssMiB',
  'timeout-s': 'timeoutMs',
};

const USAGE = `usage: npm run chaos -- [--agents 30] [--cohort 0 (all)] [--dropout 0.3] [--kills 1] [--rounds 3] [--seed 1]
  [--parameters 1000] [--agents-per-host 50] [--train-ms 300] [--stragglers 0] [--straggler-factor 10]
  [--straggler-grace-ms MS (off)] [--slow 0.1] [--latency-ms 100] [--deadline-ms 20000] [--stage-timeout-ms 5000]
  [--tolerate 0.45 (SecAgg+ dropout tolerance)] [--quorum 0.5]
  [--max-rss-mib 1024] [--timeout-s 600] [--keep]`;

function main(): Promise<void> | void {
  const { values } = parseArgs({
    options: { ...Object.fromEntries(Object.keys(FLAGS).map((k) => [k, { type: 'string' as const }])), keep: { type: 'boolean' }, help: { type: 'boolean' } },
    strict: true,
  });
  if (values.help === true) {
    console.log(USAGE);
    return;
  }
  const options: Record<string, number | boolean> = {};
  for (const [flag, key] of Object.entries(FLAGS)) {
    const raw = (values as Record<string, string | undefined>)[flag];
    if (raw === undefined) continue;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) {
      console.error(`chaos: --${flag} must be a non-negative number, got '${raw}'\n${USAGE}`);
      process.exit(2);
    }
    options[key] = key === 'timeoutMs' ? n * 1000 : n;
  }
  if (values.keep === true) options['keep'] = true;
  return runChaos({ ...CHAOS_DEFAULTS, ...options } as Partial<ChaosOptions>).then((summary) => {
    console.log(JSON.stringify(summary, null, 2));
    process.exitCode = summary.invariantsHeld ? 0 : 1;
  });
}

await main();
