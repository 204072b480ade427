// Pre-handshake flood, bounded: runs `fedclr coordinator` (a real process, plain aggregation, a
// small model, protocol frames raised to 64 MiB so that a 20 MB frame is within the transport
// limit) on 127.0.0.1, opens up to --sockets unauthenticated websocket connections to it, each
// sending a --frame-mb MB binary frame before any hello, while one real enrolled agent (fake
// trainer) joins and must complete a round. Prints one JSON object: the coordinator's RSS
// (baseline, peak sampled every 20 ms, kernel high-water mark), what happened to each flood
// socket (refused before the upgrade, cut mid-frame, or the whole frame delivered) and whether
// the agent's round completed.
//
//   npm run bench:flood                                   1000 sockets x 20 MB, caps as deployed
//   node scripts/dist/flood-handshake.js --sockets 50 --distributed --enrolment open
//
// --distributed raises the per-IP pending cap to --sockets, as if each socket came from its own
// address (on loopback they all share 127.0.0.1, which the default per-IP cap would mostly
// refuse before the upgrade). --weaken sets the pre-handshake byte cap to 64 MiB (limited to 20
// sockets: each then costs the coordinator the whole frame) to show what the cap prevents.
// Bounded: every socket gives up after --seconds, the whole run ends after 2 x --seconds + 60 s.
// Loopback only: the script refuses any other host.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createFakeTrainer, loadOrCreateIdentity, startAgent } from '@fedclr/agent';

const BIN = fileURLToPath(new URL('../../apps/cli/bin/fedclr.js', import.meta.url));
const HOST = '127.0.0.1';

const { values } = parseArgs({
  options: {
    sockets: { type: 'string', default: '1000' },
    'frame-mb': { type: 'string', default: '20' },
    seconds: { type: 'string', default: '30' },
    enrolment: { type: 'string', default: 'allow-list' },
    distributed: { type: 'boolean', default: false },
    weaken: { type: 'boolean', default: false },
  },
  strict: true,
});
const sockets = Number(values.sockets);
const frameBytes = Math.round(Number(values['frame-mb']) * 1e6);
const seconds = Number(values.seconds);
if (!Number.isSafeInteger(sockets) || sockets < 1 || sockets > 1000) throw new Error(`--sockets must be an integer in [1, 1000], got ${values.sockets}`);
if (!(frameBytes > 0 && frameBytes <= 64e6)) throw new Error(`--frame-mb must be in (0, 64], got ${values['frame-mb']}`);
if (!(seconds > 0 && seconds <= 300)) throw new Error(`--seconds must be in (0, 300], got ${values.seconds}`);
if (values.enrolment !== 'open' && values.enrolment !== 'allow-list') throw new Error(`--enrolment must be open or allow-list, got ${values.enrolment}`);
if (values.weaken && sockets > 20) throw new Error('--weaken buffers every frame in full: at most 20 sockets');

process.env['FEDCLR_LOG_LEVEL'] ??= 'error'; // the agent's logger
const dir = mkdtempSync(join(tmpdir(), 'fedclr-flood-'));
const hardStop = setTimeout(() => {
  console.error('flood-handshake: hard time limit reached');
  process.exit(2);
}, (2 * seconds + 60) * 1000);
hardStop.unref();

// ---- the real agent's identity (for the allow-list) -----------------------------------------
const agentDir = join(dir, 'agent');
const identity = await loadOrCreateIdentity(agentDir, 'flood-survivor');
const config = {
  aggregation: 'plain',
  rounds: 1,
  minCohort: 1,
  maxCohort: 1,
  deadlineMs: 20_000,
  limits: { maxFrameBytes: 64 * 1024 * 1024 },
  enrolment: values.enrolment === 'open' ? { mode: 'open' } : { mode: 'allow-list', publicKeys: [Buffer.from(identity.publicKey).toString('hex')] },
  ...(values.distributed || values.weaken
    ? { connections: { maxPendingPerIp: Math.max(32, sockets), maxPending: Math.max(256, sockets + 8), ...(values.weaken ? { preHandshakeMaxBytes: 64 * 1024 * 1024 } : {}) } }
    : {}),
};
const configPath = join(dir, 'config.json');
writeFileSync(configPath, JSON.stringify(config));

// ---- the coordinator process ---------------------------------------------------------------
interface IpcMessage {
  type: string;
  url?: string;
  coordinatorKey?: string;
}
const coordinator: ChildProcess = fork(
  BIN,
  ['coordinator', '--config', configPath, '--state', join(dir, 'coordinator'), '--host', HOST, '--port', '0', '--widths', '8,16,32', '--log-level', 'error', '--report-ipc'],
  { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
);
const messages: IpcMessage[] = [];
const waiters: { pred: (m: IpcMessage) => boolean; resolve: (m: IpcMessage) => void }[] = [];
coordinator.on('message', (m: IpcMessage) => {
  messages.push(m);
  for (const w of [...waiters]) {
    if (w.pred(m)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(m);
    }
  }
});
function waitMessage(pred: (m: IpcMessage) => boolean, timeoutMs: number): Promise<IpcMessage | undefined> {
  const seen = messages.find(pred);
  if (seen !== undefined) return Promise.resolve(seen);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), timeoutMs);
    waiters.push({ pred, resolve: (m) => (clearTimeout(t), resolve(m)) });
  });
}
const listening = await waitMessage((m) => m.type === 'listening', 120_000);
if (listening?.url === undefined || listening.coordinatorKey === undefined) throw new Error('the coordinator did not start');
const url = new URL(listening.url);
if (url.hostname !== HOST) throw new Error(`refusing to flood ${url.hostname}: loopback only`);
const port = Number(url.port);
const pid = coordinator.pid as number;

function rssMb(field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? Number.NaN : Number(m[1]) / 1024;
}
const baselineRssMb = rssMb('VmRSS');
let peakRssMb = baselineRssMb;
const sampler = setInterval(() => {
  try {
    peakRssMb = Math.max(peakRssMb, rssMb('VmRSS'));
  } catch {
    /* the process is gone */
  }
}, 20);

// ---- the flood -----------------------------------------------------------------------------
type Outcome = 'refused' | 'cut' | 'delivered' | 'error' | 'timeout';
const CHUNK = Buffer.alloc(64 * 1024); // a zero masking key leaves the payload as is: one shared buffer
function wsFrame(opcode: number, length: number): Buffer {
  // FIN + opcode, MASK bit, 64-bit length, zero masking key.
  const h = Buffer.alloc(14);
  h[0] = 0x80 | opcode;
  h[1] = 0x80 | 127;
  h.writeBigUInt64BE(BigInt(length), 2);
  return h;
}

function floodOne(): Promise<{ outcome: Outcome; sent: number }> {
  return new Promise((resolve) => {
    let sent = 0;
    let done = false;
    let upgraded = false;
    let head = '';
    const s: Socket = connect({ host: HOST, port });
    const finish = (outcome: Outcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ outcome, sent });
    };
    const timer = setTimeout(() => finish(upgraded ? 'timeout' : 'refused'), seconds * 1000);
    s.on('error', () => finish(upgraded ? 'cut' : 'error'));
    s.on('close', () => finish(upgraded ? (sent >= frameBytes ? 'delivered' : 'cut') : 'refused'));
    s.on('connect', () => {
      const key = randomBytes(16).toString('base64');
      s.write(`GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    const pump = (): void => {
      while (!done && sent < frameBytes) {
        const n = Math.min(CHUNK.length, frameBytes - sent);
        sent += n;
        if (!s.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
          s.once('drain', pump);
          return;
        }
      }
      if (!done && sent >= frameBytes) {
        // The whole frame went out: the coordinator read it. Wait for it to answer or close.
        setTimeout(() => finish('delivered'), 2000);
      }
    };
    s.on('data', (chunk: Buffer) => {
      if (upgraded) return;
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      if (!head.startsWith('HTTP/1.1 101')) {
        finish('refused');
        return;
      }
      upgraded = true;
      // socket.io CONNECT to the default namespace, then the oversize binary frame before any hello.
      s.write(Buffer.concat([wsFrame(0x1, 2), Buffer.from('40')]));
      s.write(wsFrame(0x2, frameBytes));
      pump();
    });
  });
}

const started = Date.now();
const flood = Promise.all(Array.from({ length: sockets }, () => floodOne()));

// ---- the real agent, during the flood ------------------------------------------------------
await new Promise((r) => setTimeout(r, 200));
const agent = await startAgent({
  coordinatorUrl: listening.url,
  stateDir: agentDir,
  agentId: 'flood-survivor',
  trainer: createFakeTrainer({ seed: 1, exampleCount: 10 }),
  coordinatorKey: listening.coordinatorKey,
  policy: { requireSecure: false, minCohort: 1 },
  reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
});
const completed = await waitMessage((m) => m.type === 'round-completed', (seconds + 30) * 1000);
const agentMs = Date.now() - started;
const results = await flood;
const floodMs = Date.now() - started;
clearInterval(sampler);
const hwmMb = rssMb('VmHWM');
await agent.close();
coordinator.kill('SIGTERM');
await new Promise((r) => coordinator.once('exit', r));
rmSync(dir, { recursive: true, force: true });

const outcomes: Record<Outcome, number> = { refused: 0, cut: 0, delivered: 0, error: 0, timeout: 0 };
for (const r of results) outcomes[r.outcome]++;
const upgraded = results.filter((r) => r.outcome !== 'refused' && r.outcome !== 'error');
const report = {
  sockets,
  frameBytes,
  enrolment: values.enrolment,
  distributed: values.distributed,
  weakened: values.weaken,
  preHandshakeMaxBytes: values.weaken ? 64 * 1024 * 1024 : 65_536,
  outcomes,
  maxBytesWrittenByAFloodSocket: Math.max(0, ...upgraded.map((r) => r.sent)),
  coordinatorRssMb: { baseline: Math.round(baselineRssMb), peakDuringFlood: Math.round(peakRssMb), highWaterMark: Math.round(hwmMb) },
  agentRoundCompleted: completed !== undefined,
  agentRoundMs: completed === undefined ? null : agentMs,
  floodMs,
};
console.log(JSON.stringify(report));
process.exitCode = report.agentRoundCompleted && report.coordinatorRssMb.peakDuringFlood < 300 && (values.weaken || outcomes.delivered === 0) ? 0 : 1;
