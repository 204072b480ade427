// The admin routes and the HTTP access rules, through fastify's inject (no socket): bearer token
// on /api/admin (missing or wrong: 401), read routes public only when configured so, /health
// always public, schema-checked bodies, conflicts (409), rate limits (429), CORS off by default.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { adminRoutes, installHttpSecurity } from '../src/admin.js';
import { EnrolmentTokens } from '../src/admission.js';
import { resolveConfig, type HttpConfig } from '../src/config.js';
import { StateDb } from '../src/db.js';
import { tempDir } from './harness.js';

const ADMIN = 'fedclr-admin.test-token-with-enough-characters-0123456789';
const key = (): string => Buffer.from(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x as string, 'base64url').toString('hex');

async function app(http: HttpConfig = {}, host = '127.0.0.1', weakened = false): Promise<{ app: FastifyInstance; db: StateDb; evicted: string[] }> {
  const dir = tempDir();
  const db = new StateDb(join(dir, 'coordinator.db'));
  const tokens = await EnrolmentTokens.open(dir, db);
  const config = resolveConfig({ stateDir: dir, host, http });
  const evicted: string[] = [];
  const a = Fastify({ ajv: { customOptions: { removeAdditional: false } } });
  a.setErrorHandler((err: FastifyError, _req, reply) => {
    const status = err.statusCode ?? 500;
    void reply.status(status).send({ statusCode: status, code: err.code, error: err.name, message: err.message });
  });
  // weakened: the routes without the access rules, to show that they are what refuses.
  if (!weakened) await installHttpSecurity(a, { http: config.http, adminToken: ADMIN });
  await a.register(adminRoutes({ db, tokens, mode: 'allow-list', evict: (id) => (evicted.push(id), true), connected: () => false }));
  a.get('/health', async () => ({ status: 'ok' }));
  a.get('/api/status', async () => ({ phase: 'waiting' }));
  a.get('/metrics', async () => 'fedclr_up 1\n');
  return { app: a, db, evicted };
}

const auth = (token = ADMIN) => ({ authorization: `Bearer ${token}` });

test('admin routes: no token or a wrong one gets 401 naming the problem; the right one works', async () => {
  const { app: a, db } = await app();
  for (const [method, url] of [['GET', '/api/admin/enrolments'], ['POST', '/api/admin/tokens'], ['POST', '/api/admin/enrolments'], ['POST', '/api/admin/enrolments/x/revoke']] as const) {
    const none = await a.inject({ method, url, payload: {} });
    assert.equal(none.statusCode, 401, `${method} ${url}`);
    assert.equal(none.json().code, 'FEDCLR_COORD_UNAUTHORIZED');
    assert.match(none.json().message, /need 'Authorization: Bearer <token>'/);
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="fedclr"');
    const wrong = await a.inject({ method, url, payload: {}, headers: auth(`${ADMIN}x`) });
    assert.equal(wrong.statusCode, 401);
    assert.match(wrong.json().message, /not this coordinator's admin token/);
    const basic = await a.inject({ method, url, payload: {}, headers: { authorization: `Basic ${Buffer.from(`admin:${ADMIN}`).toString('base64')}` } });
    assert.equal(basic.statusCode, 401);
  }
  // The router percent-decodes paths: an encoded admin path is still an admin route.
  for (const url of ['/api/%61dmin/enrolments', '/api/admin/%65nrolments', '/%61pi/admin/enrolments']) {
    const sneaky = await a.inject({ method: 'POST', url, payload: { agentId: 'intruder', publicKey: key() } });
    assert.equal(sneaky.statusCode, 401, url);
  }
  assert.equal(db.listEnrolments().length, 0, 'nothing was enrolled without the token');
  assert.equal((await a.inject({ method: 'GET', url: '/api/admin/enrolments', headers: auth() })).statusCode, 200);
  await a.close();
  db.close();
  // Weakened (no access rules): the same token-less call enrols the attacker's key.
  const w = await app({}, '127.0.0.1', true);
  const attack = await w.app.inject({ method: 'POST', url: '/api/admin/enrolments', payload: { agentId: 'intruder', publicKey: key() } });
  assert.equal(attack.statusCode, 201);
  assert.deepEqual(w.db.listEnrolments().map((r) => r.agentId), ['intruder']);
  await w.app.close();
  w.db.close();
});

test('admin routes: enrol, list, revoke (evicts), tokens; bad input is 400 and conflicts 409, writing nothing', async () => {
  const { app: a, db, evicted } = await app();
  const k = key();
  const enrol = await a.inject({ method: 'POST', url: '/api/admin/enrolments', headers: auth(), payload: { agentId: 'edge-1', publicKey: k } });
  assert.equal(enrol.statusCode, 201);
  assert.deepEqual(
    (({ agentId, publicKey, status, source, connected }) => ({ agentId, publicKey, status, source, connected }))(enrol.json()),
    { agentId: 'edge-1', publicKey: k, status: 'enrolled', source: 'admin', connected: false },
  );
  // base64 of the same key is the same enrolment.
  const b64 = Buffer.from(k, 'hex').toString('base64');
  assert.equal((await a.inject({ method: 'POST', url: '/api/admin/enrolments', headers: auth(), payload: { agentId: 'edge-1', publicKey: b64 } })).statusCode, 200);
  const idTaken = await a.inject({ method: 'POST', url: '/api/admin/enrolments', headers: auth(), payload: { agentId: 'edge-1', publicKey: key() } });
  assert.equal(idTaken.statusCode, 409);
  assert.equal(idTaken.json().code, 'FEDCLR_COORD_ENROLMENT_CONFLICT');
  const keyTaken = await a.inject({ method: 'POST', url: '/api/admin/enrolments', headers: auth(), payload: { agentId: 'edge-2', publicKey: k } });
  assert.equal(keyTaken.statusCode, 409);
  assert.match(keyTaken.json().message, /already enrolled as agent 'edge-1'/);
  const badKey = await a.inject({ method: 'POST', url: '/api/admin/enrolments', headers: auth(), payload: { agentId: 'edge-3', publicKey: 'abc' } });
  assert.equal(badKey.statusCode, 400);
  assert.equal(badKey.json().code, 'FEDCLR_COORD_ADMIN_BAD_KEY');
  const badId = await a.inject({ method: 'POST', url: '/api/admin/enrolments', headers: auth(), payload: { agentId: 'no spaces', publicKey: key() } });
  assert.equal(badId.statusCode, 400);
  const extra = await a.inject({ method: 'POST', url: '/api/admin/enrolments', headers: auth(), payload: { agentId: 'edge-4', publicKey: key(), admin: true } });
  assert.equal(extra.statusCode, 400);
  assert.deepEqual(db.listEnrolments().map((r) => r.agentId), ['edge-1']);

  const list = await a.inject({ method: 'GET', url: '/api/admin/enrolments?status=enrolled', headers: auth() });
  assert.deepEqual(list.json().items.map((e: { agentId: string }) => e.agentId), ['edge-1']);
  assert.equal(list.json().mode, 'allow-list');
  assert.equal((await a.inject({ method: 'GET', url: '/api/admin/enrolments?status=pending', headers: auth() })).statusCode, 400);

  const revoke = await a.inject({ method: 'POST', url: '/api/admin/enrolments/edge-1/revoke', headers: auth(), payload: { reason: 'lost' } });
  assert.equal(revoke.statusCode, 200);
  assert.equal(revoke.json().status, 'revoked');
  assert.equal(revoke.json().revokeReason, 'lost');
  assert.deepEqual(evicted, ['edge-1'], 'a revocation ends a connected session at once');
  const unknown = await a.inject({ method: 'POST', url: '/api/admin/enrolments/ghost/revoke', headers: auth(), payload: {} });
  assert.equal(unknown.statusCode, 404);
  assert.equal(unknown.json().code, 'FEDCLR_COORD_AGENT_NOT_ENROLLED');

  const minted = await a.inject({ method: 'POST', url: '/api/admin/tokens', headers: auth(), payload: { count: 3, ttlSeconds: 60 } });
  assert.equal(minted.statusCode, 201);
  assert.equal(minted.json().tokens.length, 3);
  assert.ok(Math.abs(minted.json().expiresAt - (Date.now() + 60_000)) < 5000);
  const defaults = await a.inject({ method: 'POST', url: '/api/admin/tokens', headers: auth() });
  assert.equal(defaults.statusCode, 201, defaults.body);
  assert.equal(defaults.json().tokens.length, 1);
  assert.ok(Math.abs(defaults.json().expiresAt - (Date.now() + 86_400_000)) < 5000, 'default lifetime: 24 h');
  for (const payload of [{ count: 0 }, { count: 10_001 }, { ttlSeconds: 0 }, { ttlSeconds: 366 * 86_400 }, { count: 'many' }]) {
    const r = await a.inject({ method: 'POST', url: '/api/admin/tokens', headers: auth(), payload });
    assert.equal(r.statusCode, 400, `${JSON.stringify(payload)}: ${r.body}`);
  }
  await a.close();
  db.close();
});

test('read routes: public on a loopback bind, token-protected on another bind unless publicRead; /health always public', async () => {
  const loop = await app();
  assert.equal((await loop.app.inject({ url: '/api/status' })).statusCode, 200);
  assert.equal((await loop.app.inject({ url: '/metrics' })).statusCode, 200);
  const wide = await app({}, '0.0.0.0');
  const denied = await wide.app.inject({ url: '/api/status' });
  assert.equal(denied.statusCode, 401);
  assert.match(denied.json().message, /read routes need/);
  assert.equal((await wide.app.inject({ url: '/metrics' })).statusCode, 401);
  assert.equal((await wide.app.inject({ url: '/api/status', headers: auth('guess') })).statusCode, 401);
  assert.equal((await wide.app.inject({ url: '/api/status', headers: auth() })).statusCode, 200);
  assert.equal((await wide.app.inject({ url: '/health' })).statusCode, 200);
  const optedOut = await app({ publicRead: true }, '0.0.0.0');
  assert.equal((await optedOut.app.inject({ url: '/api/status' })).statusCode, 200, 'the operator opted out (--public-read)');
  assert.equal((await optedOut.app.inject({ url: '/api/admin/enrolments' })).statusCode, 401, 'admin routes never open up');
  // Loopback: the admin routes are still closed.
  assert.equal((await loop.app.inject({ url: '/api/admin/enrolments' })).statusCode, 401);
  for (const x of [loop, wide, optedOut]) {
    await x.app.close();
    x.db.close();
  }
});

test('rate limits: every route, per client IP; the admin budget is separate and smaller; a token guesser is throttled', async () => {
  const { app: a, db } = await app({ rateLimit: 5, adminRateLimit: 3 });
  const codes: number[] = [];
  for (let i = 0; i < 7; i++) codes.push((await a.inject({ url: '/api/status' })).statusCode);
  assert.deepEqual(codes, [200, 200, 200, 200, 200, 429, 429]);
  assert.equal((await a.inject({ url: '/api/status', remoteAddress: '10.0.0.9' })).statusCode, 200, 'another client has its own budget');
  const guesses: number[] = [];
  for (let i = 0; i < 5; i++) guesses.push((await a.inject({ url: '/api/admin/enrolments', headers: auth(`guess-${i}`) })).statusCode);
  assert.deepEqual(guesses, [401, 401, 401, 429, 429]);
  const right = await a.inject({ url: '/api/admin/enrolments', headers: auth() });
  assert.equal(right.statusCode, 429, 'even the right token waits out the window');
  await a.close();
  db.close();
  const off = await app({ rateLimit: 0, adminRateLimit: 0 });
  for (let i = 0; i < 50; i++) assert.equal((await off.app.inject({ url: '/api/status' })).statusCode, 200);
  await off.app.close();
  off.db.close();
});

test('CORS: off by default; the configured origins only', async () => {
  const def = await app();
  const r = await def.app.inject({ url: '/api/status', headers: { origin: 'https://evil.example' } });
  assert.equal(r.headers['access-control-allow-origin'], undefined);
  const on = await app({ corsOrigins: ['https://dash.example'] });
  const ok = await on.app.inject({ url: '/api/status', headers: { origin: 'https://dash.example' } });
  assert.equal(ok.headers['access-control-allow-origin'], 'https://dash.example');
  const other = await on.app.inject({ url: '/api/status', headers: { origin: 'https://evil.example' } });
  assert.notEqual(other.headers['access-control-allow-origin'], 'https://evil.example');
  const preflight = await on.app.inject({
    method: 'OPTIONS',
    url: '/api/admin/enrolments',
    headers: { origin: 'https://dash.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
  });
  assert.equal(preflight.statusCode, 204);
  assert.match(String(preflight.headers['access-control-allow-headers']), /authorization/);
  for (const x of [def, on]) {
    await x.app.close();
    x.db.close();
  }
});
