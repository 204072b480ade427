// One-time enrolment tokens over real sockets: a valid token enrols at the first handshake and
// keeps working as a no-op on reconnect; an expired, a forged (altered) and a used token are
// refused at the hello with a message naming which; none of them enrols anything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { createFakeTrainer, startAgent, type AgentExit, type AgentHandle } from '@fedclr/agent';
import { startTestCoordinator, tempDir, trust, withTimeout } from './harness.js';

const agentLogger = pino({ level: process.env['FEDCLR_LOG_LEVEL'] ?? 'warn', base: { svc: 'agent' } });

test('tokens through the gateway: enrol once, then ignored; expired, forged and used tokens refused by name', async () => {
  const dir = tempDir();
  const stateDir = join(dir, 'coordinator');
  const { coordinator } = await startTestCoordinator({ stateDir, enrolment: { mode: 'allow-list' }, rounds: 1, minCohort: 5, maxCohort: 5 });
  const admin = readFileSync(join(stateDir, 'admin-token'), 'utf8').trim();
  const mint = async (ttlSeconds: number): Promise<string> => {
    const r = await fetch(`${coordinator.url}/api/admin/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ttlSeconds }),
    });
    return ((await r.json()) as { tokens: string[] }).tokens[0] as string;
  };
  const enrolled = async (): Promise<string[]> => {
    const r = await fetch(`${coordinator.url}/api/admin/enrolments`, { headers: { authorization: `Bearer ${admin}` } });
    return ((await r.json()) as { items: { agentId: string }[] }).items.map((e) => e.agentId);
  };
  const handles: AgentHandle[] = [];
  const agent = async (name: string, token: string): Promise<AgentHandle> => {
    const a = await startAgent({
      coordinatorUrl: coordinator.url,
      stateDir: join(dir, name),
      agentId: name,
      enrolmentToken: token,
      trainer: createFakeTrainer(),
      logger: agentLogger,
      reconnect: { maxAttempts: 1, initialDelayMs: 20 },
      ...trust(coordinator.publicKey),
    });
    handles.push(a);
    return a;
  };
  const refusal = async (a: AgentHandle): Promise<string> => {
    const exit: AgentExit = await withTimeout(a.done, 5000, 'a refusal');
    assert.equal(exit.reason, 'rejected');
    return exit.error?.message ?? exit.message ?? '';
  };
  try {
    const good = await mint(600);
    const first = await agent('first', good);
    await withTimeout(new Promise((resolve) => first.events.once('welcome', resolve)), 5000, 'the token to enrol the agent');
    assert.deepEqual(await enrolled(), ['first']);
    // Reconnecting with the spent token: the enrolled key is admitted, the token ignored.
    await first.close();
    const back = await agent('first', good);
    await withTimeout(new Promise((resolve) => back.events.once('welcome', resolve)), 5000, 'the enrolled agent to come back');

    assert.match(await refusal(await agent('second', good)), /enrolment token was already used by agent 'first'/);

    const short = await mint(1);
    await sleep(1100);
    assert.match(await refusal(await agent('late', short)), /enrolment token expired at \d{4}-/);

    const fresh = await mint(600);
    const [p, id, exp, mac] = fresh.split('.') as [string, string, string, string];
    const longer = `${p}.${id}.${Number(exp) + 86_400_000}.${mac}`;
    assert.match(await refusal(await agent('forger', longer)), /enrolment token is forged/);
    // The untouched token still works: the forgery did not spend it.
    const honest = await agent('honest', fresh);
    await withTimeout(new Promise((resolve) => honest.events.once('welcome', resolve)), 5000, 'the untouched token');
    assert.deepEqual(await enrolled(), ['first', 'honest']);
  } finally {
    await Promise.all(handles.map((a) => a.close()));
    await coordinator.close();
  }
});
