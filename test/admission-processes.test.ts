// Admission as real processes on loopback: a coordinator process with the default allow-list and
// token-protected read routes, agent processes, and the admin API over HTTP. The attacks are
// refused (a stranger's key, a used token, a revoked key, admin calls without or with a wrong
// token), and each is shown to succeed against a weakened coordinator (open enrolment, public
// read routes), so the refusals are the admission's doing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadOrCreateIdentity } from '@fedclr/agent';
import { AGENT_SCRIPT, COORDINATOR_SCRIPT, MODEL, forkProc, tempDir, type IpcProc } from './processes.js';

const POLICY = { requireSecure: false, minCohort: 1 };

test('processes: a stranger, a used token, a revoked key and token-less admin calls are refused; open enrolment would let the stranger in', async () => {
  const dir = tempDir();
  const base = { port: 0, rounds: 1, minCohort: 2, maxCohort: 2, deadlineMs: 10_000, deadlineGraceMs: 200, retryDelayMs: 100, logLevel: 'warn', aggregation: 'plain' };
  const guarded = forkProc(COORDINATOR_SCRIPT, { config: { ...base, stateDir: join(dir, 'guarded'), http: { publicRead: false } }, model: MODEL });
  const weak = forkProc(COORDINATOR_SCRIPT, { config: { ...base, stateDir: join(dir, 'weak'), enrolment: { mode: 'open' } }, model: MODEL });
  const procs: IpcProc[] = [guarded, weak];
  const agent = (url: string, key: string, name: string, extra: Record<string, unknown> = {}): IpcProc => {
    const p = forkProc(AGENT_SCRIPT, {
      coordinatorUrl: url,
      stateDir: join(dir, name),
      agentId: name,
      coordinatorKey: key,
      policy: POLICY,
      trainer: { seed: 1, exampleCount: 10, delayMs: 20 },
      reconnect: { initialDelayMs: 50, maxAttempts: 2 },
      ...extra,
    });
    procs.push(p);
    return p;
  };
  const outcome = (p: IpcProc): Promise<Record<string, unknown>> => p.next((m) => m['event'] === 'welcome' || m['event'] === 'exit', 15_000, 'welcome or exit');
  try {
    const g = await guarded.next((m) => m['event'] === 'listening', 20_000, 'guarded coordinator');
    const w = await weak.next((m) => m['event'] === 'listening', 20_000, 'weak coordinator');
    const gUrl = String(g['url']);
    const gKey = String(g['publicKey']);
    const adminToken = readFileSync(join(dir, 'guarded', 'admin-token'), 'utf8').trim();
    const call = async (method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
      const headers: Record<string, string> = {};
      if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const r = await fetch(`${gUrl}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      return { status: r.status, json: (await r.json()) as Record<string, unknown> };
    };

    // Admin calls: no token, a wrong token -> 401; the admin token -> 200.
    const none = await call('GET', '/api/admin/enrolments');
    assert.equal(none.status, 401);
    assert.equal(none.json['code'], 'FEDCLR_COORD_UNAUTHORIZED');
    const wrong = await call('POST', '/api/admin/tokens', `${adminToken.slice(0, -1)}x`, { count: 1 });
    assert.equal(wrong.status, 401);
    assert.equal((await call('GET', '/api/admin/enrolments', adminToken)).status, 200);
    // Read routes: this coordinator protects them; the weak one (loopback default) serves anyone.
    assert.equal((await call('GET', '/api/status')).status, 401);
    assert.equal((await call('GET', '/api/status', adminToken)).status, 200);
    assert.equal((await fetch(`${String(w['url'])}/api/status`)).status, 200, 'weakened: public read routes');

    // A stranger's key is refused at the hello, with the reason and the command that would admit it.
    const stranger = await outcome(agent(gUrl, gKey, 'stranger'));
    assert.equal(stranger['event'], 'exit');
    assert.equal(stranger['reason'], 'rejected');
    assert.match(String(stranger['message']), /not-enrolled|is not enrolled/);
    assert.match(String(stranger['error'] ?? stranger['message']), /fedclr admin enroll stranger [0-9a-f]{64}/);
    // Weakened: the same key joins a coordinator with open enrolment.
    const joined = await outcome(agent(String(w['url']), String(w['publicKey']), 'stranger'));
    assert.equal(joined['event'], 'welcome', 'open enrolment admits the stranger');

    // The operator enrols agent-a by key and gives agent-b a token; agent-c replays b's token.
    // (The key, as `fedclr agent id --state DIR --agent-id agent-a` prints it.)
    const idA = await loadOrCreateIdentity(join(dir, 'agent-a'), 'agent-a');
    const enrol = await call('POST', '/api/admin/enrolments', adminToken, { agentId: 'agent-a', publicKey: Buffer.from(idA.publicKey).toString('hex') });
    assert.equal(enrol.status, 201);
    const minted = await call('POST', '/api/admin/tokens', adminToken, { count: 1, ttlSeconds: 600 });
    assert.equal(minted.status, 201);
    const token = (minted.json['tokens'] as string[])[0] as string;
    const a2 = agent(gUrl, gKey, 'agent-a');
    assert.equal((await outcome(a2))['event'], 'welcome', 'the enrolled key joins');
    const b = agent(gUrl, gKey, 'agent-b', { enrolmentToken: token });
    assert.equal((await outcome(b))['event'], 'welcome', 'the token enrols agent-b');
    const c = await outcome(agent(gUrl, gKey, 'agent-c', { enrolmentToken: token }));
    assert.equal(c['reason'], 'rejected', 'a used token is refused');
    assert.match(String(c['error'] ?? c['message']), /enrolment token was already used by agent 'agent-b'/);
    // Both enrolled agents train the round.
    const done = await guarded.next((m) => m['event'] === 'round-completed', 20_000, 'round 1 with agent-a and agent-b');
    assert.equal(done['roundId'], 1);
    await Promise.all([a2.exited, b.exited]);

    // Revoke agent-a: the key that just trained is refused at its next hello, naming the revocation.
    const revoked = await call('POST', '/api/admin/enrolments/agent-a/revoke', adminToken, { reason: 'decommissioned' });
    assert.equal(revoked.status, 200);
    const again = await outcome(agent(gUrl, gKey, 'agent-a'));
    assert.equal(again['reason'], 'rejected');
    assert.match(String(again['error'] ?? again['message']), /was revoked by the operator at .*: decommissioned/);
    const list = await call('GET', '/api/admin/enrolments', adminToken);
    const rows = (list.json['items'] as { agentId: string; status: string; source: string }[]).map((r) => `${r.agentId}:${r.status}:${r.source}`);
    assert.deepEqual(rows, ['agent-a:revoked:admin', 'agent-b:enrolled:token'], 'the stranger and agent-c were never enrolled');
  } finally {
    for (const p of procs) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
  }
});
