// Limits before trust, on a real coordinator over loopback sockets: a connection that has not
// proved its key may send only a few kilobytes (cut on the raw socket, before socket.io buffers
// a frame), pending connections are capped (per IP too) and time out, maxAgents counts admitted
// agents only, and uploads are checked for cohort membership before anything else. Each attack
// is also run against a weakened configuration where it succeeds, so the test shows the limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import { createFakeTrainer, socketIoConnector, startAgent, type AgentHandle, type Connector } from '@fedclr/agent';
import type { UpdateRejectedMessage } from '@fedclr/protocol';
import type { CoordinatorConfig } from '../src/config.js';
import { startTestCoordinator, tempDir, trust, waitFor, withTimeout } from './harness.js';

type Coordinator = Awaited<ReturnType<typeof startTestCoordinator>>['coordinator'];

async function coordinatorWith(dir: string, extra: Partial<CoordinatorConfig>): Promise<Coordinator> {
  const { coordinator } = await startTestCoordinator({ stateDir: join(dir, 'coordinator'), rounds: 1, minCohort: 1, maxCohort: 1, deadlineMs: 10_000, ...extra });
  return coordinator;
}

function agent(dir: string, c: Coordinator, id: string, extra: { delayMs?: number; connector?: Connector } = {}): Promise<AgentHandle> {
  return startAgent({
    coordinatorUrl: c.url,
    stateDir: join(dir, id),
    agentId: id,
    trainer: createFakeTrainer({ seed: id, exampleCount: 5, delayMs: extra.delayMs ?? 0 }),
    reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    logger: c.logger.child({ svc: 'agent' }),
    ...(extra.connector === undefined ? {} : { connector: extra.connector }),
    ...trust(c.publicKey),
  });
}

/** A raw socket.io connection that never says hello. */
function idle(url: string): Promise<ClientSocket> {
  return new Promise((resolve, reject) => {
    const s = ioClient(url, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 5000 });
    s.once('connect', () => resolve(s));
    s.once('connect_error', (err) => reject(err));
  });
}

function counter(c: Coordinator, reason: string): number {
  return c.metrics.handshakesRejected.get({ reason });
}

async function until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Sends `bytes` before hello; resolves with what the coordinator did: cut the transport, or answer. */
function oversizeHello(url: string, bytes: number): Promise<{ outcome: 'cut' | 'answered'; reply?: Record<string, unknown> }> {
  return idle(url).then(
    (s) =>
      new Promise((resolve) => {
        s.once('message', (reply: Record<string, unknown>) => {
          resolve({ outcome: 'answered', reply });
          s.close();
        });
        s.once('disconnect', () => resolve({ outcome: 'cut' }));
        s.emit('message', { type: 'hello', padding: Buffer.alloc(bytes, 7) });
      }),
  );
}

test('pre-handshake cap: 1 MiB before hello is cut at the transport (a weakened cap lets it through); a real agent still joins', async () => {
  const dir = tempDir();
  const c = await coordinatorWith(dir, { limits: { maxFrameBytes: 32 * 1024 * 1024 } });
  try {
    assert.equal(c.config.connections.preHandshakeMaxBytes, 65_536, 'default: 64 KiB');
    const r = await withTimeout(oversizeHello(c.url, 1024 * 1024), 10_000, 'the oversize hello');
    assert.equal(r.outcome, 'cut', 'the coordinator must not read a 1 MiB message from a connection that has not proved its key');
    assert.equal(counter(c, 'too-large'), 1);
    const a = await agent(dir, c, 'agent-a');
    assert.equal(await withTimeout(c.finished, 20_000, 'a round after the attack'), 1);
    await a.close();
  } finally {
    await c.close();
  }
  // Weakened: a cap above the message size. The same message is read, parsed, and answered.
  const weak = await coordinatorWith(tempDir(), { limits: { maxFrameBytes: 32 * 1024 * 1024 }, connections: { preHandshakeMaxBytes: 16 * 1024 * 1024 } });
  try {
    const r = await withTimeout(oversizeHello(weak.url, 1024 * 1024), 10_000, 'the oversize hello (weakened)');
    assert.equal(r.outcome, 'answered');
    assert.equal(r.reply?.['type'], 'reject');
  } finally {
    await weak.close();
  }
});

test('maxAgents counts admitted agents only: idle sockets do not lock out a real agent; a second agent over maxAgents is refused', async () => {
  const dir = tempDir();
  const c = await coordinatorWith(dir, { maxAgents: 1, rounds: 2 });
  const idles = await Promise.all([0, 1, 2, 3, 4].map(() => idle(c.url)));
  try {
    const a = await agent(dir, c, 'agent-a', { delayMs: 5000 });
    await waitFor<[unknown]>((l) => (c.events.on('round-started', l), () => c.events.off('round-started', l)), () => true, 10_000, 'a round with the real agent');
    assert.equal(c.status().readyAgents, 1);
    const b = await agent(dir, c, 'agent-b');
    await until(() => counter(c, 'capacity') >= 1, 10_000, 'agent-b to be refused for capacity');
    assert.equal(c.status().readyAgents, 1);
    assert.equal(c.status().round?.cohortSize, 1);
    await b.close();
    await a.close();
  } finally {
    for (const s of idles) s.close();
    await c.close();
  }
});

test('pending caps (total and per IP) refuse new sockets before the upgrade; the handshake timeout frees them', async () => {
  const dir = tempDir();
  const c = await coordinatorWith(dir, { handshakeTimeoutMs: 400, connections: { maxPending: 3, maxPendingPerIp: 2 } });
  try {
    const first = await Promise.all([idle(c.url), idle(c.url)]);
    await assert.rejects(idle(c.url), 'a third pending socket from 127.0.0.1 is refused (maxPendingPerIp 2)');
    assert.ok((counter(c, 'connection-limit')) >= 1);
    // The handshake timeout closes the idle ones; then a real agent gets in.
    await Promise.all(first.map((s) => new Promise<void>((resolve) => (s.disconnected ? resolve() : s.once('disconnect', () => resolve())))));
    assert.ok((counter(c, 'timeout')) >= 2);
    const a = await agent(dir, c, 'agent-a');
    assert.equal(await withTimeout(c.finished, 20_000, 'the round'), 1);
    await a.close();
  } finally {
    await c.close();
  }
});

test('an upload from an agent outside the cohort is refused as not-in-cohort before its signature or frame is looked at', async () => {
  const dir = tempDir();
  const c = await coordinatorWith(dir, { maxCohort: 1 });
  const a = await agent(dir, c, 'agent-a', { delayMs: 4000 });
  try {
    await waitFor<[{ roundId: number }]>((l) => (c.events.on('round-started', l), () => c.events.off('round-started', l)), () => true, 10_000, 'round 1');
    // agent-b is admitted after the cohort was sampled, and sends an unsigned garbage upload.
    const inner = socketIoConnector();
    const connector: Connector = (url) => {
      const s = inner(url);
      return {
        ...s,
        get connected() {
          return s.connected;
        },
        onMessage: (l) =>
          s.onMessage((raw) => {
            l(raw);
            if ((raw as { type?: string }).type === 'welcome') {
              setTimeout(() => s.send({ type: 'update', roundId: 1, modelVersion: 'x', frame: new Uint8Array(64).fill(1), sig: new Uint8Array(64) } as never), 100);
            }
          }),
      };
    };
    const b = await agent(dir, c, 'agent-b', { connector });
    const [rejected] = await waitFor<[UpdateRejectedMessage]>((l) => (b.events.on('update-rejected', l), () => b.events.off('update-rejected', l)), () => true, 10_000, 'the rejection');
    assert.equal(rejected.reason, 'not-in-cohort', `got ${rejected.reason}: ${rejected.message}`);
    await b.close();
  } finally {
    await a.close();
    await c.close();
  }
});
