// The chaos harness in CI (scripts/chaos.ts, real processes and sockets on loopback): 30 agents
// in one agent-host process, secure aggregation, 30% of each cohort leaving at random stages
// (and reconnecting), slow links, cut uploads, and one coordinator SIGKILL (mid-unmask) with a
// restart, over 3 rounds. Every invariant must hold (see scripts/chaos-invariants.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CHAOS = fileURLToPath(new URL('../../scripts/dist/chaos.js', import.meta.url));

interface Summary {
  invariantsHeld: boolean;
  invariants: { name: string; held: boolean; detail: string }[];
  completedRounds: number;
  kills: { kind: string }[];
  drops: Record<string, number>;
  agentExits: Record<string, number>;
}

test('chaos: 30 agents, 30% dropouts at every secagg stage, one coordinator kill, 3 rounds: every invariant holds', { timeout: 110_000 }, async () => {
  const child = spawn(process.execPath, [CHAOS, '--agents', '30', '--dropout', '0.3', '--kills', '1', '--rounds', '3', '--seed', '1', '--timeout-s', '90'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  const summary = JSON.parse(out) as Summary;
  const broken = summary.invariants.filter((i) => !i.held);
  assert.deepEqual(broken, [], 'every invariant held');
  assert.equal(summary.invariantsHeld, true);
  assert.equal(code, 0);
  assert.equal(summary.completedRounds, 3);
  assert.equal(summary.kills.length, 1);
  const dropped = Object.values(summary.drops).reduce((a, n) => a + n, 0);
  assert.ok(dropped >= 10, `about 30% of 30 agents x 3+ rounds dropped (got ${dropped})`);
  assert.ok(Object.keys(summary.drops).length >= 4, `drops at several stages: ${JSON.stringify(summary.drops)}`);
  assert.deepEqual(summary.agentExits, { completed: 30 });
});
