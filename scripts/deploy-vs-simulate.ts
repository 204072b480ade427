// The deployment path against its test bench, same data, budget and seed (issue 12's bar):
//   1. `fedclr partition` writes simulate's Dirichlet parts of Fashion-MNIST as 10 PNG folders;
//   2. deployed: `fedclr coordinator` with only the README's deployment flags (--state, --port,
//      --rounds, --min-cohort), `fedclr admin token`, and one `fedclr agent --coordinator-key
//      --token --data DIR --state` process per folder, all at once as on separate machines;
//   3. `fedclr simulate` with the same clients, partition, seed, rounds and aggregation;
//   4. `fedclr eval` of both last checkpoints (the same evaluation), and per-round image counts
//      from both coordinators' state databases (equal counts = equal budgets).
// Prints one JSON object. The budget is rounds of one local epoch (the recipe's), not minutes, so
// CPU contention changes the wall time, not the work: both sides train every image once a round
// unless a deadline cuts an agent short, which the image counts would show.
//
//   npm run build && node scripts/dist/deploy-vs-simulate.js --out runs/deploy-vs-simulate --rounds 10
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { StateDb } from '@fedclr/coordinator';

const BIN = fileURLToPath(new URL('../../apps/cli/bin/fedclr.js', import.meta.url));

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    rounds: { type: 'string', default: '10' },
    clients: { type: 'string', default: '10' },
    alpha: { type: 'string', default: '0.5' },
    seed: { type: 'string', default: '0' },
    aggregation: { type: 'string', default: 'secure' },
    only: { type: 'string' },
  },
});
if (values.out === undefined) throw new Error('--out DIR is required');
const out = resolve(values.out);
const rounds = Number(values.rounds);
const clients = Number(values.clients);
if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(clients) || clients < 2) throw new Error('--rounds >= 1 and --clients >= 2 must be integers');
if (values.aggregation !== 'secure' && values.aggregation !== 'plain') throw new Error('--aggregation must be secure or plain');
mkdirSync(join(out, 'logs'), { recursive: true });

interface Run {
  readonly done: Promise<number>;
  stdout: string;
  stderr: string;
  kill(): void;
  waitFor(re: RegExp): Promise<RegExpMatchArray>;
}

/** `fedclr args...`, its output also in logs/<name>.log. */
function fedclr(name: string, args: readonly string[]): Run {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const file = createWriteStream(join(out, 'logs', `${name}.log`));
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  const run: Run = {
    done: new Promise((r) => child.once('exit', (code) => r(code ?? 1))),
    stdout: '',
    stderr: '',
    kill: () => void (child.exitCode === null && child.kill('SIGTERM')),
    waitFor: (re) =>
      new Promise((resolveMatch) => {
        const m = (run.stderr + run.stdout).match(re);
        if (m !== null) resolveMatch(m);
        else waiters.push({ re, resolve: resolveMatch });
      }),
  };
  const onData = (stream: 'stdout' | 'stderr') => (b: Buffer) => {
    run[stream] += b.toString();
    file.write(b);
    for (const w of [...waiters]) {
      const m = (run.stderr + run.stdout).match(w.re);
      if (m !== null) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  child.stdout.on('data', onData('stdout'));
  child.stderr.on('data', onData('stderr'));
  void run.done.then(() => file.end());
  return run;
}

async function mustSucceed(run: Run, what: string): Promise<string> {
  const code = await run.done;
  if (code !== 0) throw new Error(`${what} exited with ${code}:\n${run.stderr.slice(-2000)}`);
  return run.stdout;
}

function lastJson<T>(stdout: string): T {
  return JSON.parse(stdout.trim().split('\n').pop() as string) as T;
}

/** Per-round image counts and durations from a coordinator's state database. */
function roundsOf(stateDir: string): { id: number; status: string; included: number | null; images: number | null; durationMs: number | null }[] {
  const db = new StateDb(join(stateDir, 'coordinator.db'));
  try {
    return db.listRounds(1000, 0).items.map((r) => ({ id: r.id, status: r.status, included: r.included, images: r.totalWeight, durationMs: r.durationMs })).sort((a, b) => a.id - b.id);
  } finally {
    db.close();
  }
}

async function evaluate(name: string, model: string): Promise<{ linearProbe: number; knn: number }> {
  const r = lastJson<{ linearProbe: number; knn: number }>(await mustSucceed(fedclr(`eval-${name}`, ['eval', '--model', model, '--json']), `fedclr eval (${name})`));
  return { linearProbe: r.linearProbe, knn: r.knn };
}

const partitionFlags = ['--clients', String(clients), '--partition', 'dirichlet', '--alpha', String(values.alpha), '--seed', String(values.seed)];

async function deployed(): Promise<object> {
  const parts = join(out, 'parts');
  if (!existsSync(join(parts, 'partition.json'))) await mustSucceed(fedclr('partition', ['partition', ...partitionFlags, '--out', parts]), 'fedclr partition');
  const state = join(out, 'deployed', 'coordinator');
  const started = Date.now();
  // Only the README's deployment flags (TLS left out: loopback; it changes no training).
  const coordinator = fedclr('deployed-coordinator', ['coordinator', '--state', state, '--port', '0', '--rounds', String(rounds), '--min-cohort', String(clients), '--aggregation', values.aggregation as string]);
  const agents: Run[] = [];
  try {
    const key = (await coordinator.waitFor(/coordinator public key ([0-9a-f]{64})/))[1] as string;
    const port = (await coordinator.waitFor(/coordinator listening on http:\/\/127\.0\.0\.1:(\d+)/))[1] as string;
    const url = `http://127.0.0.1:${port}`;
    const tokens = (await mustSucceed(fedclr('admin-token', ['admin', 'token', '--count', String(clients), '--coordinator', url, '--state', state]), 'fedclr admin token')).trim().split('\n');
    for (let i = 0; i < clients; i++) {
      const data = join(parts, `agent-${String(i).padStart(String(clients - 1).length, '0')}`);
      const policy = values.aggregation === 'plain' ? ['--allow-plain'] : [];
      agents.push(fedclr(`deployed-agent-${i}`, ['agent', '--coordinator', url, '--coordinator-key', key, '--token', tokens[i] as string, '--data', data, '--state', join(out, 'deployed', `agent-${i}`), ...policy]));
    }
    const stopped = (await mustSucceed(coordinator, 'fedclr coordinator')).match(/after (\d+) completed rounds; latest model: (\S+)/);
    if (stopped === null || Number(stopped[1]) !== rounds) throw new Error(`the deployed federation did not complete its ${rounds} rounds: ${coordinator.stdout.slice(-500)}`);
    const model = stopped[2] as string;
    return { wallMs: Date.now() - started, ...(await evaluate('deployed', model)), model, rounds: roundsOf(state) };
  } finally {
    coordinator.kill();
    for (const a of agents) a.kill();
    await Promise.all(agents.map((a) => a.done));
  }
}

async function simulated(): Promise<object> {
  const dir = join(out, 'simulate');
  const started = Date.now();
  const report = lastJson<{ linearProbe: number; knn: number; completedRounds: number; model: { checkpoint: string } }>(
    await mustSucceed(fedclr('simulate', ['simulate', ...partitionFlags, '--rounds', String(rounds), '--aggregation', values.aggregation as string, '--out', dir, '--json']), 'fedclr simulate'),
  );
  if (report.completedRounds !== rounds) throw new Error(`simulate completed ${report.completedRounds} of ${rounds} rounds`);
  return {
    wallMs: Date.now() - started,
    ...(await evaluate('simulate', report.model.checkpoint)),
    ownEvaluation: { linearProbe: report.linearProbe, knn: report.knn },
    model: report.model.checkpoint,
    rounds: roundsOf(join(dir, 'coordinator')),
  };
}

const result: Record<string, unknown> = { rounds, clients, alpha: Number(values.alpha), seed: Number(values.seed), aggregation: values.aggregation };
if (values.only !== 'simulate') result['deployed'] = await deployed();
if (values.only !== 'deployed') result['simulate'] = await simulated();
const d = result['deployed'] as { linearProbe: number } | undefined;
const s = result['simulate'] as { linearProbe: number } | undefined;
if (d !== undefined && s !== undefined) result['probeGapPoints'] = Math.round((s.linearProbe - d.linearProbe) * 10000) / 100;
console.log(JSON.stringify(result));
