// Fixtures of the tests that fork real coordinator and agent processes (test/fixtures/*) and talk
// to them over IPC: a tiny plain-MLP model, temp dirs and free ports, an in-process coordinator
// for the other side, and waiting with a deadline.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Manifest } from '@fedclr/protocol';
import { startCoordinator, type CoordinatorConfig, type CoordinatorHandle } from '@fedclr/coordinator';
export { freePort } from '@fedclr/scripts/dist/free-port.js';

export const AGENT_SCRIPT = fileURLToPath(new URL('./fixtures/fake-agent.js', import.meta.url));
export const COORDINATOR_SCRIPT = fileURLToPath(new URL('./fixtures/coordinator-proc.js', import.meta.url));

/** The model of these tests: one dense layer, seeded. */
export const MODEL = { rows: 40, cols: 25, seed: 3 } as const;

export function makeModel(rows: number, cols: number, seed: number): { manifest: Manifest; weights: Float32Array } {
  const manifest: Manifest = [
    { name: 'dense/kernel', shape: [rows, cols], dtype: 'float32' },
    { name: 'dense/bias', shape: [cols], dtype: 'float32' },
  ];
  const weights = new Float32Array(rows * cols + cols);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < weights.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    weights[i] = (x / 2 ** 32 - 0.5) * 0.2;
  }
  return { manifest, weights };
}

export function tempDir(prefix = 'fedclr-e2e-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * What a test agent needs to work with a test coordinator: the coordinator's key pinned, and a
 * lax round policy (these tests run plain rounds and cohorts of 2-5; the policy has its own tests).
 */
export function trust(coordinatorKey: string): { coordinatorKey: string; policy: { requireSecure: boolean; minCohort: number } } {
  return { coordinatorKey, policy: { requireSecure: false, minCohort: 1 } };
}

/** An in-process coordinator on MODEL: plain rounds and open enrolment unless `config` says otherwise. */
export async function startTestCoordinator(config: Partial<CoordinatorConfig> & { stateDir: string }): Promise<{ coordinator: CoordinatorHandle; weights: Float32Array }> {
  const { manifest, weights } = makeModel(MODEL.rows, MODEL.cols, MODEL.seed);
  const coordinator = await startCoordinator(
    { enrolment: { mode: 'open' }, port: 0, logLevel: 'warn', deadlineGraceMs: 200, retryDelayMs: 100, handshakeTimeoutMs: 5000, aggregation: 'plain', ...config },
    { initialModel: { architecture: 'test-mlp', manifest, weights } },
  );
  return { coordinator, weights };
}

/** `promise`, or a rejection naming `what` after `timeoutMs` (the timer never outlives the promise). */
export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      }),
    ]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/** A forked fixture process and the IPC messages it reports. */
export interface IpcProc {
  readonly child: ChildProcess;
  /** Every IPC message received so far. */
  readonly messages: Record<string, unknown>[];
  next(pred: (m: Record<string, unknown>) => boolean, timeoutMs: number, what: string): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function forkProc(script: string, arg: unknown): IpcProc {
  const child = fork(script, [JSON.stringify(arg)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, FEDCLR_LOG_LEVEL: process.env['FEDCLR_LOG_LEVEL'] ?? 'warn' },
  });
  const messages: Record<string, unknown>[] = [];
  const waiters = new Set<{ pred: (m: Record<string, unknown>) => boolean; resolve: (m: Record<string, unknown>) => void }>();
  child.on('message', (raw) => {
    const m = raw as Record<string, unknown>;
    messages.push(m);
    for (const w of [...waiters]) {
      if (!w.pred(m)) continue;
      waiters.delete(w);
      w.resolve(m);
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return {
    child,
    messages,
    exited,
    next(pred, timeoutMs, what) {
      const seen = messages.find(pred);
      if (seen !== undefined) return Promise.resolve(seen);
      let waiter: { pred: typeof pred; resolve: (m: Record<string, unknown>) => void } | undefined;
      const arrived = new Promise<Record<string, unknown>>((resolve) => {
        waiter = { pred, resolve };
        waiters.add(waiter);
      });
      return withTimeout(arrived, timeoutMs, what).finally(() => {
        if (waiter !== undefined) waiters.delete(waiter);
      });
    },
  };
}
