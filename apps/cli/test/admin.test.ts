// fedclr admin against a real coordinator on loopback (in process), and fedclr agent id: the
// operator's enrolment workflow, and its errors (no token, a wrong token, bad arguments).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCoordinator, type CoordinatorHandle } from '@fedclr/coordinator';
import { main } from '../src/main.js';
import { admissionConfig, ttlSeconds } from '../src/commands/admin.js';

async function run(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, (l) => out.push(l), (l) => err.push(l));
  return { code, out, err };
}

describe('fedclr agent id', () => {
  it('prints the id and the hex public key without connecting, creating the identity once', async () => {
    const state = mkdtempSync(join(tmpdir(), 'fedclr-agent-id-'));
    const first = await run(['agent', 'id', '--state', state, '--json']);
    assert.equal(first.code, 0, first.err.join('\n'));
    const a = JSON.parse(first.out[0] as string) as { agentId: string; publicKey: string; created: boolean };
    assert.match(a.publicKey, /^[0-9a-f]{64}$/);
    assert.equal(a.agentId, `agent-${a.publicKey.slice(0, 16)}`);
    assert.equal(a.created, true);
    const second = await run(['agent', 'id', '--state', state]);
    assert.equal(second.code, 0);
    assert.match(second.out.join('\n'), new RegExp(`public key  ${a.publicKey}`));
    assert.match(second.out.join('\n'), new RegExp(`fedclr admin enroll --coordinator URL ${a.agentId} ${a.publicKey}`));
    const bad = await run(['agent', 'id', '--state', state, '--agent-id', 'no spaces']);
    assert.equal(bad.code, 1);
    assert.match(bad.err.join('\n'), /agentId/);
  });
});

describe('fedclr agent --token / --token-file', () => {
  it('refuses a malformed token, both flags, and an unreadable file before any data loads', async () => {
    const base = ['agent', '--coordinator', 'http://127.0.0.1:1', '--data', '/nonexistent', '--coordinator-key', 'a'.repeat(64)];
    const dir = mkdtempSync(join(tmpdir(), 'fedclr-token-'));
    const file = join(dir, 'token');
    writeFileSync(file, 'has space\n');
    const cases: [string[], RegExp][] = [
      [['--token', 'not a token'], /--token must be an enrolment token as fedclr admin token prints it/],
      [['--token', 'x', '--token-file', file], /give --token T or --token-file F, not both/],
      [['--token-file', join(dir, 'missing')], /cannot read --token-file .*missing/],
      [['--token-file', file], /--token must be an enrolment token .* got 'has space'/],
    ];
    for (const [extra, re] of cases) {
      const r = await run([...base, ...extra]);
      assert.equal(r.code, 2, extra.join(' '));
      assert.match(r.err.join('\n'), re);
    }
  });
});

describe('fedclr admin', () => {
  let dir: string;
  let coordinator: CoordinatorHandle;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fedclr-admin-'));
    coordinator = await startCoordinator(
      { stateDir: join(dir, 'coordinator'), port: 0, logLevel: 'silent', aggregation: 'plain', minCohort: 2 },
      { initialModel: { architecture: 'cli-admin-test', manifest: [{ name: 'w', shape: [4], dtype: 'float32' }], weights: new Float32Array(4) } },
    );
  });
  after(async () => {
    await coordinator.close();
  });

  it('enroll, list, revoke and token over the admin API with the state dir\'s admin token', async () => {
    const state = join(dir, 'coordinator');
    const id = JSON.parse((await run(['agent', 'id', '--state', join(dir, 'edge'), '--agent-id', 'edge-1', '--json'])).out[0] as string) as { agentId: string; publicKey: string };
    const enrol = await run(['admin', 'enroll', id.agentId, id.publicKey, '--coordinator', coordinator.url, '--state', state]);
    assert.equal(enrol.code, 0, enrol.err.join('\n'));
    assert.deepEqual(enrol.out, [`enrolled edge-1 (${id.publicKey})`]);
    const list = await run(['admin', 'list', '--coordinator', coordinator.url, '--token-file', join(state, 'admin-token'), '--json']);
    const items = (JSON.parse(list.out[0] as string) as { items: { agentId: string; status: string }[] }).items;
    assert.deepEqual(items.map((e) => `${e.agentId}:${e.status}`), ['edge-1:enrolled']);
    const tokens = await run(['admin', 'token', '--count', '3', '--ttl', '30m', '--coordinator', coordinator.url, '--state', state]);
    assert.equal(tokens.code, 0, tokens.err.join('\n'));
    assert.equal(tokens.out.length, 3);
    for (const t of tokens.out) assert.match(t, /^fedclr-et1\./);
    const revoke = await run(['admin', 'revoke', 'edge-1', '--reason', 'retired', '--coordinator', coordinator.url, '--state', state]);
    assert.deepEqual(revoke.out, [`revoked edge-1 (${id.publicKey})`]);
    const text = await run(['admin', 'list', '--status', 'revoked', '--coordinator', coordinator.url, '--state', state]);
    assert.match(text.out.join('\n'), /edge-1\t[0-9a-f]{64}\trevoked\tadmin\t.*revoked .* \(retired\)/);
  });

  it('refuses without a token, with a wrong one (HTTP 401) and on bad arguments, naming the problem', async () => {
    const state = join(dir, 'coordinator');
    const saved = process.env['FEDCLR_ADMIN_TOKEN'];
    delete process.env['FEDCLR_ADMIN_TOKEN'];
    try {
      const none = await run(['admin', 'list', '--coordinator', coordinator.url]);
      assert.equal(none.code, 2);
      assert.match(none.err.join('\n'), /give --token-file F .* or --state DIR/);
    } finally {
      if (saved !== undefined) process.env['FEDCLR_ADMIN_TOKEN'] = saved;
    }
    const wrongFile = join(dir, 'wrong-token');
    writeFileSync(wrongFile, 'fedclr-admin.not-the-right-one-at-all-000000000000\n');
    const wrong = await run(['admin', 'list', '--coordinator', coordinator.url, '--token-file', wrongFile]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.err.join('\n'), /HTTP 401 \[FEDCLR_COORD_UNAUTHORIZED\]/);
    const cases: [string[], RegExp][] = [
      [['admin'], /takes enroll, revoke, list or token, got nothing/],
      [['admin', 'promote', '--coordinator', coordinator.url], /got 'promote'/],
      [['admin', 'list', '--state', state], /give --coordinator URL/],
      [['admin', 'enroll', 'only-id', '--coordinator', coordinator.url, '--state', state], /enroll takes AGENT_ID PUBLIC_KEY/],
      [['admin', 'token', '--ttl', 'forever', '--coordinator', coordinator.url, '--state', state], /--ttl must be a duration like 30m/],
      [['admin', 'list', '--state', state, '--token-file', wrongFile, '--coordinator', coordinator.url], /not both/],
    ];
    for (const [argv, re] of cases) {
      const r = await run(argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.err.join('\n'), re, argv.join(' '));
    }
    const badKey = await run(['admin', 'enroll', 'edge-9', 'abc', '--coordinator', coordinator.url, '--state', state]);
    assert.equal(badKey.code, 1);
    assert.match(badKey.err.join('\n'), /HTTP 400 \[FEDCLR_COORD_ADMIN_BAD_KEY\]/);
    const down = await run(['admin', 'list', '--coordinator', 'http://127.0.0.1:1', '--state', state]);
    assert.equal(down.code, 1);
    assert.match(down.err.join('\n'), /cannot reach the coordinator at http:\/\/127\.0\.0\.1:1/);
  });

  it('coordinator flags: --open-enrolment, --public-read, --cors-origin, rate limits', () => {
    const c = admissionConfig({ 'open-enrolment': true, 'public-read': true, 'cors-origin': 'https://a.example, https://b.example:8443', 'rate-limit': '100', 'admin-rate-limit': '0' }, { stateDir: '/x' });
    assert.deepEqual(c.enrolment, { mode: 'open' });
    assert.deepEqual(c.http, { publicRead: true, corsOrigins: ['https://a.example', 'https://b.example:8443'], rateLimit: 100, adminRateLimit: 0 });
    assert.deepEqual(admissionConfig({}, { stateDir: '/x' }), { stateDir: '/x', http: {} }, 'no flag: the library defaults (allow-list)');
    assert.throws(() => admissionConfig({ 'cors-origin': 'evil.example' }, { stateDir: '/x' }), /--cors-origin takes origins like/);
    assert.throws(
      () => admissionConfig({ 'open-enrolment': true }, { stateDir: '/x', enrolment: { mode: 'allow-list', publicKeys: ['a'.repeat(64)] } }),
      /--open-enrolment contradicts the allow-list/,
    );
    assert.deepEqual(['90s', '30m', '24h', '7d', '3600'].map(ttlSeconds), [90, 1800, 86_400, 604_800, 3600]);
    assert.throws(() => ttlSeconds('366d'), /at most 365d/);
  });
});
