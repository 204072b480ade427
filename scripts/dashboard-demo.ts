// The dashboard of a 10-agent run after 5 rounds, as a screenshot with every section filled by
// real data: `fedclr coordinator` (the real CLI: convnet-s, plain aggregation with central DP so
// that epsilon is spent, --eval-data on a generated labeled folder so that every checkpoint gets
// a real linear probe and kNN score in the evaluation worker) and 10 agent processes with the
// fake trainer (test/fixtures/fake-agent.js: real protocol, fake training), one of which fails
// every round (its reason is in the event log). Debian's chromium takes the screenshot.
//
//   node scripts/dist/dashboard-demo.js [--out FILE.png]
// Prints one JSON object: the screenshot's path and what the page showed.
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { deflateSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const { values: args } = parseArgs({ options: { out: { type: 'string' }, chromium: { type: 'string', default: '/usr/bin/chromium' }, agents: { type: 'string', default: '10' }, rounds: { type: 'string', default: '5' } } });
const AGENTS = Number(args.agents);
const ROUNDS = Number(args.rounds);
const BIN = fileURLToPath(new URL('../../apps/cli/bin/fedclr.js', import.meta.url));
const FAKE_AGENT = fileURLToPath(new URL('../../test/dist/fixtures/fake-agent.js', import.meta.url));

/** A grayscale PNG (8-bit, no interlace). */
function png(size: number, pixel: (x: number, y: number) => number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer): number => {
    let c = 0xffffffff;
    for (const x of b) c = (crcTable[(c ^ x) & 0xff] as number) ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8;
  ihdr[9] = 0;
  const raw = Buffer.alloc(size * (size + 1));
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) raw[y * (size + 1) + 1 + x] = pixel(x, y);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

const dir = mkdtempSync(join(tmpdir(), 'fedclr-dashboard-demo-'));
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
for (const [name, f] of Object.entries(classes)) {
  mkdirSync(join(evalDir, name), { recursive: true });
  for (let i = 0; i < 40; i++) writeFileSync(join(evalDir, name, `${i}.png`), png(28, (x, y) => Math.max(0, Math.min(255, Math.round(110 + (f(x, y, i) ? 25 : -25) + (rand() - 0.5) * 200)))));
}

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
const browser = await chromium.launch({ executablePath: args.chromium, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
try {
  const page = await browser.newPage({ viewport: { width: 1500, height: 1900 } });
  await page.goto(`${listening.url}/`);
  // After ROUNDS completed rounds with evaluations drawn, while the run goes on (agents online, a
  // round in progress); the run has more rounds than that and is stopped after the screenshot.
  await page.waitForFunction(`Number(document.body.dataset.completedRounds) >= ${ROUNDS} && document.querySelectorAll('figure[data-chart="eval"] [data-series="kNN"]').length >= 2 && document.querySelector('#phase') !== null && document.querySelector('#phase').textContent === 'collecting'`, undefined, { timeout: 240_000 });
  const out = args.out ?? join(process.env['FEDCLR_ARTIFACTS'] ?? join(tmpdir(), 'fedclr-artifacts'), 'dashboard-10-agents-5-rounds.png');
  mkdirSync(join(out, '..'), { recursive: true });
  await page.screenshot({ path: out, fullPage: true });
  const shown = {
    agents: await page.$$eval('#agents-rows tr', (r) => r.length),
    rounds: await page.$$eval('#rounds-rows tr', (r) => r.length),
    events: await page.$$eval('#event-log li', (r) => r.length),
    epsilonPoints: await page.$$eval('figure[data-chart="epsilon"] [data-series="epsilon"]', (r) => r.length),
    knn: await page.$$eval('figure[data-chart="eval"] [data-series="kNN"]', (r) => r.map((e) => Number(e.getAttribute('data-y')))),
    probe: await page.$$eval('figure[data-chart="eval"] [data-series="linear probe"]', (r) => r.map((e) => Number(e.getAttribute('data-y')))),
  };
  console.log(JSON.stringify({ screenshot: out, url: listening.url, ...shown }));
} finally {
  await browser.close();
  for (const a of agents) a.kill('SIGTERM');
  coordinator.kill('SIGTERM');
}
