// The dashboard of a 10-agent run after 5 rounds, as a screenshot with every section filled by
// real data (the screenshot itself: dashboard-capture.ts), in one of two set-ups:
//
// --training real (default): `fedclr simulate` with real training on Fashion-MNIST (plain
//   aggregation with central DP, so that epsilon is spent and the agents' loss and training time
//   reach the coordinator; --eval-data on 1000 Fashion-MNIST test images written as a labeled
//   folder, scored after every round in the coordinator's evaluation worker; --refusers 1, so one
//   agent refuses every round by its policy and says why). It runs two rounds more than --rounds, so
//   that the page is captured with a round in progress once the worker's score of round --rounds
//   has landed (it may lag a round), then lets simulate finish and reads its report.
// --training fake: `fedclr coordinator` and agent processes with the fake trainer
//   (test/fixtures/fake-agent.js: real protocol, fake training), one failing every round, and
//   --eval-data on a generated 3-class folder: the same page in a minute.
//
//   node scripts/dist/dashboard-demo.js [--training real|fake] [--agents 10] [--rounds 5] [--out FILE.png]
// Prints one JSON object: the screenshot's path and what the page showed.
import { fork, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadFashionMnist, writeLabeledPngFolder } from '@fedclr/data';
import { captureDashboard, type CapturedDashboard } from './dashboard-capture.js';

const { values: args } = parseArgs({
  options: {
    out: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    training: { type: 'string', default: 'real' },
    agents: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '5' },
  },
});
const AGENTS = Number(args.agents);
const ROUNDS = Number(args.rounds);
if (args.training !== 'real' && args.training !== 'fake') throw new Error(`--training must be real or fake, got '${args.training}'`);
const BIN = fileURLToPath(new URL('../../apps/cli/bin/fedclr.js', import.meta.url));
const FAKE_AGENT = fileURLToPath(new URL('../../test/dist/fixtures/fake-agent.js', import.meta.url));
const OUT = args.out ?? join(process.env['FEDCLR_ARTIFACTS'] ?? join(tmpdir(), 'fedclr-artifacts'), 'dashboard-10-agents-5-rounds.png');
const dir = mkdtempSync(join(tmpdir(), 'fedclr-dashboard-demo-'));

/** Coordinator + fake-trainer agents, one failing every round, --eval-data on a generated folder. */
async function fakeRun(): Promise<CapturedDashboard> {
  const evalDir = join(dir, 'eval-data');
  // Three classes of 28 px images, faint under strong seeded noise: horizontal stripes, vertical
  // stripes, a disc (so that the scores are not all 1).
  const classes: Record<string, (x: number, y: number, i: number) => boolean> = {
    horizontal: (_x, y, i) => (y + i) % 8 < 4,
    vertical: (x, _y, i) => (x + i) % 8 < 4,
    disc: (x, y, i) => (x - 14 + (i % 5)) ** 2 + (y - 14) ** 2 < (5 + (i % 4)) ** 2,
  };
  let noise = 12345;
  const rand = (): number => {
    noise = (Math.imul(noise, 1664525) + 1013904223) >>> 0;
    return noise / 2 ** 32;
  };
  const size = 28;
  const perClass = 40;
  const shapes = Object.values(classes);
  const count = shapes.length * perClass;
  const images = new Uint8Array(count * size * size);
  const labels = new Uint8Array(count);
  shapes.forEach((f, label) => {
    for (let i = 0; i < perClass; i++) {
      const at = label * perClass + i;
      labels[at] = label;
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) images[(at * size + y) * size + x] = Math.max(0, Math.min(255, Math.round(110 + (f(x, y, i) ? 25 : -25) + (rand() - 0.5) * 200)));
      }
    }
  });
  const synthetic = { images, labels, count, height: size, width: size, channels: 1, classNames: Object.keys(classes) };
  await writeLabeledPngFolder(synthetic, Array.from({ length: count }, (_, i) => i), evalDir);

  const coordinator = fork(
    BIN,
    ['coordinator', '--state', join(dir, 'coordinator'), '--port', '0', '--rounds', String(ROUNDS + 20), '--min-cohort', String(AGENTS), '--max-cohort', String(AGENTS),
      '--aggregation', 'plain', '--dp-noise', '1.1', '--dp-clip', '1', '--dp-central', '--open-enrolment', '--eval-data', evalDir, '--eval-every', '1',
      '--deadline', '60', '--report-ipc', '--log-level', 'warn'],
    { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
  );
  const listening = await new Promise<{ url: string; coordinatorKey: string }>((resolve, reject) => {
    coordinator.on('message', (m: { type: string; url: string; coordinatorKey: string }) => {
      if (m.type === 'listening') resolve(m);
    });
    coordinator.once('exit', (code) => reject(new Error(`the coordinator exited with ${code}`)));
  });
  const agents = Array.from({ length: AGENTS }, (_, i) =>
    fork(FAKE_AGENT, [JSON.stringify({
      coordinatorUrl: listening.url, stateDir: join(dir, `agent-${i}`), agentId: `agent-${String(i).padStart(2, '0')}`,
      trainer: { seed: `demo-${i}`, exampleCount: 50 + 10 * i, scale: 0.002, delayMs: 1500, ...(i === AGENTS - 1 ? { fail: true } : {}) },
      coordinatorKey: listening.coordinatorKey, policy: { requireSecure: false, minCohort: 1 },
    })], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }),
  );
  try {
    // The generated folder is easy, the fake model barely moves: the worker may lag the 2.5 s rounds.
    return await captureDashboard({ url: listening.url, rounds: ROUNDS, evaluated: 2, out: OUT, chromium: args.chromium, timeoutMs: 240_000 });
  } finally {
    for (const a of agents) a.kill('SIGTERM');
    coordinator.kill('SIGTERM');
  }
}

/** Labeled Fashion-MNIST test images as --eval-data reads them (the last ones: simulate's --limit takes the first). */
async function fashionMnistEvalFolder(target: string, images: number): Promise<void> {
  const test = await loadFashionMnist('test');
  const indices = Array.from({ length: images }, (_, k) => test.count - images + k);
  await writeLabeledPngFolder(test, indices, target);
}

/**
 * `fedclr simulate` with real training; captured after ROUNDS rounds (and their scores) while the next runs,
 * then simulate finishes and its report says what the coordinator's evaluations were.
 */
async function realRun(): Promise<CapturedDashboard & { simulate: unknown }> {
  const evalDir = join(dir, 'eval-data');
  await fashionMnistEvalFolder(evalDir, 1000);
  const outDir = join(dir, 'simulate');
  const simulateArgs = [
    'simulate', '--clients', String(AGENTS), '--rounds', String(ROUNDS + 2), '--limit', '2000', '--local-epochs', '5', '--steps-per-round', '10', '--batch', '128',
    '--aggregation', 'plain', '--dp-noise', '1.1', '--dp-clip', '1', '--dp-central', '--eval-data', evalDir, '--eval-every', '1', '--refusers', '1',
    '--out', outDir,
  ];
  console.error(`dashboard-demo: fedclr ${simulateArgs.join(' ')}`);
  // Its stdout is only the one-line summary; report.json (read below) has it all.
  const child = spawn(process.execPath, [BIN, ...simulateArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
  const log = createWriteStream(join(dir, 'simulate.log'));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // simulate names its coordinator's address on stderr once it listens.
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stderr.on('data', (b: Buffer) => {
      log.write(b);
      buf += b.toString();
      const m = /coordinator at (http:\/\/[^\s;]+)/.exec(buf);
      if (m !== null) resolve(m[1] as string);
    });
    void exited.then((code) => reject(new Error(`fedclr simulate exited with ${code} before its coordinator listened; log ${join(dir, 'simulate.log')}`)));
  });
  let shown: CapturedDashboard;
  try {
    shown = await captureDashboard({ url, rounds: ROUNDS, evaluated: ROUNDS, out: OUT, chromium: args.chromium, timeoutMs: 40 * 60_000 });
  } catch (err) {
    child.kill('SIGTERM');
    throw err;
  }
  const code = await exited;
  if (code !== 0) throw new Error(`fedclr simulate exited with ${code}; log ${join(dir, 'simulate.log')}`);
  const report = JSON.parse(readFileSync(join(outDir, 'report.json'), 'utf8')) as {
    rounds: { round: number; loss: number | null; dpEpsilon: number | null; wallMs: number; trainMs: number | null; excluded: unknown[]; coordinatorEval?: unknown }[];
    linearProbe: number;
    knn: number;
  };
  return {
    ...shown,
    simulate: {
      out: outDir,
      rounds: report.rounds.map((r) => ({ round: r.round, loss: r.loss, dpEpsilon: r.dpEpsilon, wallMs: r.wallMs, trainMs: r.trainMs, excluded: r.excluded, coordinatorEval: r.coordinatorEval ?? null })),
      finalLinearProbe: report.linearProbe,
      finalKnn: report.knn,
    },
  };
}

const shown = args.training === 'real' ? await realRun() : await fakeRun();
console.log(JSON.stringify(shown));
