// The processes of a simulation: fedclr coordinator and fedclr agent children with their logs,
// reaped on the way out, and the agents' one-time enrolment tokens.
import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { SimulationError } from '../errors.js';

const BIN = fileURLToPath(new URL('../../../bin/fedclr.js', import.meta.url));

export interface Child {
  readonly name: string;
  readonly log: string;
  readonly proc: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  done: boolean;
}

export function spawnFedclr(name: string, args: string[], logPath: string): Child {
  const fd = openSync(logPath, 'a');
  let proc: ChildProcess;
  try {
    proc = fork(BIN, args, { stdio: ['ignore', fd, fd, 'ipc'], env: process.env });
  } finally {
    closeSync(fd);
  }
  const child: Child = {
    name,
    log: logPath,
    proc,
    done: false,
    exited: new Promise((resolveExit) => {
      proc.once('exit', (code, signal) => {
        child.done = true;
        resolveExit({ code, signal });
      });
    }),
  };
  return child;
}

export function tail(path: string, lines = 8): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `(log ${path} unreadable: ${(err as Error).message})`;
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/** Waits for the children to exit; SIGTERM after `graceMs`, SIGKILL 5 s later. */
export async function reap(children: readonly Child[], graceMs: number): Promise<void> {
  const all = Promise.all(children.map((c) => c.exited));
  if (await Promise.race([all.then(() => true), delay(graceMs).then(() => false)])) return;
  for (const c of children) if (!c.done) c.proc.kill('SIGTERM');
  if (await Promise.race([all.then(() => true), delay(5000).then(() => false)])) return;
  for (const c of children) if (!c.done) c.proc.kill('SIGKILL');
  await all;
}

/** Mints `count` one-time enrolment tokens (valid for a day) over the coordinator's admin API. */
export async function mintEnrolmentTokens(url: string, adminTokenFile: string, count: number): Promise<string[]> {
  const adminToken = (await readFile(adminTokenFile, 'utf8')).trim();
  const res = await fetch(`${url}/api/admin/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ count, ttlSeconds: 86_400 }),
  });
  const body = (await res.json()) as { tokens?: string[]; message?: string };
  if (!res.ok || body.tokens?.length !== count) throw new SimulationError(`could not mint enrolment tokens: HTTP ${res.status} ${body.message ?? ''}`);
  return body.tokens;
}
