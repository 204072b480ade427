// The deployment path as the README shows it: `fedclr coordinator` over TLS (the README's
// openssl set-up: a private CA) with its default allow-list, one-time enrolment tokens from `fedclr admin token`, three `fedclr agent` processes on
// private PNG folders (each pinning the coordinator's key and presenting a token), two secure
// rounds with real contrastive training, then `fedclr eval` of the last checkpoint. A stranger
// without a token is refused, and so is an admin call without the admin token.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificates, fedclr, httpsStatus, pngFolders, type Proc } from './helpers.js';

describe('deploy: fedclr coordinator + 3 fedclr agent processes on PNG folders, 2 secure rounds, fedclr eval', () => {
  let dir: string;
  const procs: Proc[] = [];
  let coordinator: Proc;
  let url = '';
  let key = '';
  let tls: ReturnType<typeof certificates>;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedclr-e2e-deploy-'));
    tls = certificates(dir);
    const folders = await pngFolders(dir, 3, 96);
    coordinator = fedclr([
      'coordinator', '--state', join(dir, 'coordinator'), '--host', '127.0.0.1', '--port', '0', '--tls-cert', tls.cert, '--tls-key', tls.key,
      '--rounds', '2', '--min-cohort', '3', '--max-cohort', '3', '--widths', '8,16,32', '--batch', '32', '--deadline', '120',
    ]);
    procs.push(coordinator);
    const port = (await coordinator.waitFor(/coordinator listening on https:\/\/127\.0\.0\.1:(\d+)/, 60_000))[1] as string;
    url = `https://localhost:${port}`;
    key = (await coordinator.waitFor(/coordinator public key ([0-9a-f]{64})/, 10_000))[1] as string;
    const minting = fedclr(['admin', 'token', '--count', '3', '--coordinator', url, '--ca', tls.ca, '--state', join(dir, 'coordinator')]);
    procs.push(minting);
    assert.equal(await minting.exited, 0, minting.stderr);
    const tokens = minting.stdout.trim().split('\n');
    assert.equal(tokens.length, 3);
    for (const [i, folder] of folders.entries()) {
      procs.push(
        fedclr([
          'agent', '--coordinator', url, '--ca', tls.ca, '--coordinator-key', key, '--token', tokens[i] as string, '--data', folder, '--state', join(dir, `agent-${i}`),
          '--min-cohort', '3', '--steps-per-round', '2', '--workers', '1',
        ]),
      );
    }
  });

  it('refuses a stranger (no enrolment, no token) and an admin call without the admin token', async () => {
    const stranger = fedclr(['agent', '--coordinator', url, '--ca', tls.ca, '--coordinator-key', key, '--data', join(dir, 'photos-0'), '--state', join(dir, 'stranger')]);
    procs.push(stranger);
    await stranger.waitFor(/not enrolled|FEDCLR_\w*ENROL\w*/i, 60_000);
    stranger.kill();
    const ca = readFileSync(tls.ca, 'utf8');
    assert.equal(await httpsStatus(`${url}/api/admin/enrolments`, ca), 401);
    assert.equal(await httpsStatus(`${url}/api/admin/enrolments`, ca, { authorization: 'Bearer not-the-token' }), 401);
    const token = readFileSync(join(dir, 'coordinator', 'admin-token'), 'utf8').trim();
    assert.equal(await httpsStatus(`${url}/api/admin/enrolments`, ca, { authorization: `Bearer ${token}` }), 200);
  });
  after(() => {
    for (const p of procs) p.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs both secure rounds and stops by itself', async () => {
    const code = await coordinator.exited;
    assert.equal(code, 0, coordinator.stderr.slice(-3000));
    assert.match(coordinator.stdout, /after 2 completed rounds/);
    assert.ok(existsSync(join(dir, 'coordinator', 'checkpoints', 'round-00000002', 'tfjs', 'model.json')));
  });

  it('fedclr eval scores the federated checkpoint', async () => {
    const evaluation = fedclr(['eval', '--model', join(dir, 'coordinator', 'checkpoints', 'round-00000002', 'tfjs'), '--json', '--workers', '1']);
    procs.push(evaluation);
    const code = await evaluation.exited;
    assert.equal(code, 0, evaluation.stderr.slice(-3000));
    const result = JSON.parse(evaluation.stdout.trim().split('\n').pop() as string) as { linearProbe?: number; probe?: number };
    const probe = result.linearProbe ?? result.probe;
    assert.ok(typeof probe === 'number' && probe > 0.5 && probe <= 1, `probe ${String(probe)}`);
  });
});
