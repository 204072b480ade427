// Harness for tests with real sockets: temp dirs, free ports, an in-process test coordinator, and a
// man-in-the-middle connector that turns a real agent into a misbehaving one. (Tests with forked
// processes live in the top-level test/, with their own fixtures.)
import { createPrivateKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signingPayload } from '@fedclr/protocol';
import type { AgentMessage, UpdateMessage } from '@fedclr/protocol';
import { socketIoConnector, type AgentOutbound, type Connector } from '@fedclr/agent';
import { startCoordinator, type CoordinatorHandle } from '../src/coordinator.js';
import type { CoordinatorConfig } from '../src/config.js';
import { makeModel } from './helpers.js';

export function tempDir(prefix = 'fedclr-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export const MODEL = { rows: 40, cols: 25, seed: 3 } as const;

/**
 * What a test agent needs to work with a test coordinator: the coordinator's key pinned, and a
 * lax round policy (these tests run plain rounds and cohorts of 2-5; the policy has its own tests).
 */
export function trust(coordinatorKey: string): { coordinatorKey: string; policy: { requireSecure: boolean; minCohort: number } } {
  return { coordinatorKey, policy: { requireSecure: false, minCohort: 1 } };
}

export async function startTestCoordinator(
  config: Partial<CoordinatorConfig> & { stateDir: string },
): Promise<{ coordinator: CoordinatorHandle; manifest: ReturnType<typeof makeModel>['manifest']; weights: Float32Array }> {
  const { manifest, weights } = makeModel(MODEL.rows, MODEL.cols, MODEL.seed);
  const coordinator = await startCoordinator(
    // Plain unless a test asks for 'secure' (the default of a real deployment). Open enrolment:
    // these tests are their own test bench (admission has its own tests, which ask for allow-list).
    { enrolment: { mode: 'open' }, port: 0, logLevel: 'warn', deadlineGraceMs: 200, retryDelayMs: 100, handshakeTimeoutMs: 5000, aggregation: 'plain', ...config },
    { initialModel: { architecture: 'test-mlp', manifest, weights } },
  );
  return { coordinator, manifest, weights };
}

/** Resolves with the first emitted args matching `pred`, or rejects after `timeoutMs`. */
export function waitFor<A extends unknown[]>(
  on: (listener: (...args: A) => void) => () => void,
  pred: (...args: A) => boolean,
  timeoutMs: number,
  what: string,
): Promise<A> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const off = on((...args) => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args);
    });
  });
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

// ---- a misbehaving agent ----------------------------------------------------------------------

/** Signs like the agent does, with the agent's key read from its state dir. */
function signerFor(stateDir: string): (msg: AgentMessage, sessionId: string) => Uint8Array {
  let key: KeyObject | undefined;
  return (msg, sessionId) => {
    if (key === undefined) {
      const f = JSON.parse(readFileSync(join(stateDir, 'identity.json'), 'utf8')) as { secretKey: string };
      const seed = Buffer.from(f.secretKey, 'base64').subarray(0, 32);
      key = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
    }
    return cryptoSign(null, signingPayload(msg, sessionId), key);
  };
}

export interface TamperOptions {
  /** Rewrites each outgoing update (return a plain object: anything goes on the wire). */
  readonly update?: (msg: UpdateMessage, round: number) => Record<string, unknown>;
  /** Re-sign the rewritten update with the agent's key (default true). */
  readonly resign?: boolean;
  /** Rewrites the signed 'ready' (e.g. to break its signature). */
  readonly ready?: (msg: Record<string, unknown>) => Record<string, unknown>;
  /** Swallows outgoing messages (e.g. to make an agent silent). */
  readonly drop?: (msg: AgentOutbound) => boolean;
  /** Rewrites the hello. */
  readonly hello?: (msg: Record<string, unknown>) => Record<string, unknown>;
  /** On each round-start after the first, replays the previous round's update first. */
  readonly replayPrevious?: boolean;
  /** Drops the connection when a matching coordinator message arrives (before the agent sees it). */
  readonly disconnectOn?: (msg: Record<string, unknown>) => boolean;
  /** Rewrites what the coordinator sends before the agent sees it (an attacker on the path). */
  readonly inbound?: (msg: Record<string, unknown>) => Record<string, unknown>;
  /** Sees everything the agent sends (after the other options), e.g. to record what leaks. */
  readonly observe?: (msg: Record<string, unknown>) => void;
}

/** A connector that wraps socket.io and tampers with what a real agent sends. */
export function tamperingConnector(stateDir: string, t: TamperOptions): Connector {
  const inner = socketIoConnector();
  const signer = signerFor(stateDir);
  return (url) => {
    const s = inner(url);
    let sessionId = '';
    let previous: Record<string, unknown> | undefined;
    let rounds = 0;
    return {
      get connected() {
        return s.connected;
      },
      onConnect: (l) => s.onConnect(l),
      onConnectError: (l) => s.onConnectError(l),
      onDisconnect: (l) => s.onDisconnect(l),
      onMessage: (l) =>
        s.onMessage((raw) => {
          const m = t.inbound === undefined ? (raw as Record<string, unknown>) : t.inbound(raw as Record<string, unknown>);
          if (t.disconnectOn?.(m) === true) {
            s.close();
            return;
          }
          if (m['type'] === 'welcome') sessionId = String(m['sessionId']);
          if (m['type'] === 'round-start') {
            rounds++;
            if (t.replayPrevious === true && previous !== undefined) s.send(previous as unknown as AgentOutbound);
          }
          l(m);
        }),
      send: (m) => {
        t.observe?.(m as unknown as Record<string, unknown>);
        if (t.drop?.(m) === true) return;
        if (m.type === 'hello' && t.hello !== undefined) {
          s.send(t.hello({ ...m }) as unknown as AgentOutbound);
          return;
        }
        if (m.type === 'ready' && t.ready !== undefined) {
          s.send(t.ready({ ...m }) as unknown as AgentOutbound);
          return;
        }
        if (m.type === 'update') {
          previous = { ...m };
          if (t.update !== undefined) {
            const out = t.update({ ...m }, rounds);
            if (t.resign ?? true) {
              delete out['sig'];
              out['sig'] = signer(out as unknown as AgentMessage, sessionId);
            }
            s.send(out as unknown as AgentOutbound);
            return;
          }
        }
        s.send(m);
      },
      close: () => s.close(),
    };
  };
}
