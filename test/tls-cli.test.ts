// The README's TLS set-up as an operator runs it: the openssl commands of the README's TLS
// section (a private CA, a server certificate for localhost/127.0.0.1), `fedclr coordinator
// --tls-cert --tls-key`, and `fedclr agent --ca` over https on loopback completing a round with
// real contrastive training; the same agent without --ca is refused, naming host and CA.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { BIN, certificates } from './helpers.js';


function runToEnd(p: ChildProcess, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  p.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

test('fedclr coordinator --tls-cert/--tls-key + fedclr agent --ca: a round over https; without --ca the agent is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedclr-tls-cli-'));
  certificates(dir);
  const coordinator = spawn(process.execPath, [
    BIN, 'coordinator', '--state', join(dir, 'state'), '--port', '0', '--open-enrolment', '--tls-cert', join(dir, 'coord.crt'), '--tls-key', join(dir, 'coord.key'),
    '--aggregation', 'plain', '--min-cohort', '1', '--rounds', '1', '--widths', '8,16,32', '--log-level', 'warn',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const coordinatorDone = runToEnd(coordinator, 180_000);
  let err = '';
  const { port, key } = await new Promise<{ port: string; key: string }>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the coordinator did not start: ${err}`)), 120_000);
    coordinator.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const p = /listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(err);
      const k = /coordinator public key ([0-9a-f]{64})/.exec(err);
      if (p?.[1] !== undefined && k?.[1] !== undefined) {
        clearTimeout(t);
        resolve({ port: p[1], key: k[1] });
      }
    });
  });
  const agentArgs = (state: string, extra: string[]): string[] => [
    BIN, 'agent', '--coordinator', `https://localhost:${port}`, '--coordinator-key', key, '--dataset', 'fashion-mnist', '--client', '0/1', '--limit', '256',
    '--allow-plain', '--min-cohort', '1', '--steps-per-round', '2', '--state', join(dir, state), '--log-level', 'error', '--json', ...extra,
  ];
  try {
    const refused = await runToEnd(spawn(process.execPath, agentArgs('agent-no-ca', []), { stdio: ['ignore', 'pipe', 'pipe'] }), 120_000);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /TLS certificate of https:\/\/localhost:\d+ is not trusted: expected a certificate for host 'localhost' chaining to the system CA store/);
    const ok = await runToEnd(spawn(process.execPath, agentArgs('agent', ['--ca', join(dir, 'ca.crt')]), { stdio: ['ignore', 'pipe', 'pipe'] }), 150_000);
    assert.equal(ok.code, 0, ok.stderr);
    const summary = JSON.parse(ok.stdout.trim().split('\n').pop() ?? '{}') as { exit?: string; updatesSent?: number };
    assert.equal(summary.exit, 'completed');
    assert.equal(summary.updatesSent, 1);
    const c = await coordinatorDone;
    assert.equal(c.code, 0);
    assert.match(c.stdout, /coordinator stopped \(rounds\) after 1 completed rounds/);
  } finally {
    coordinator.kill('SIGTERM');
  }
});
