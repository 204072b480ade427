// Admission, without sockets: the enrolment store (migration from schema 1, admit/revoke
// conflicts, transactions), one-time tokens (mint, single use, expiry, forgery, hash-only
// storage), the admission decision, secret files and the config defaults.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { statSync, writeFileSync, chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Admission, EnrolmentTokens, loadOrCreateAdminToken, loadOrCreateSecret, tokenHash, TOKEN_KEY_FILE } from '../src/admission.js';
import { isLoopbackHost, resolveConfig } from '../src/config.js';
import { MIGRATIONS, StateDb } from '../src/db.js';
import { isCoordinatorError } from '../src/errors.js';
import { tempDir } from './harness.js';

const key = (): Uint8Array => Buffer.from(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x as string, 'base64url');
const hex = (k: Uint8Array): string => Buffer.from(k).toString('hex');
const T0 = 1_800_000_000_000;

async function setup(mode: 'allow-list' | 'open' = 'allow-list', configKeys: string[] = []) {
  const dir = tempDir();
  const db = new StateDb(join(dir, 'coordinator.db'));
  const tokens = await EnrolmentTokens.open(dir, db);
  return { dir, db, tokens, admission: new Admission({ mode, db, tokens, configKeys }) };
}

test('migration 2 keeps schema-1 enrolments (they were admitted by open enrolment) as enrolled, source open', () => {
  const dir = tempDir();
  const path = join(dir, 'coordinator.db');
  const raw = new Database(path);
  raw.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  raw.exec((MIGRATIONS[0] as { sql: string }).sql);
  raw.prepare('INSERT INTO schema_migrations VALUES (1, ?, 0)').run('initial schema');
  const k = key();
  raw.prepare('INSERT INTO enrolments (agent_id, public_key, first_seen, last_seen, sessions) VALUES (?, ?, ?, ?, ?)').run('old', Buffer.from(k), 5, 9, 3);
  raw.close();
  const db = new StateDb(path);
  assert.equal(db.schemaVersion(), 2);
  const row = db.getEnrolment('old');
  assert.ok(row !== undefined);
  assert.equal(row.status, 'enrolled');
  assert.equal(row.source, 'open');
  assert.equal(row.enrolledAt, 5);
  assert.deepEqual([row.firstSeen, row.lastSeen, row.sessions], [5, 9, 3]);
  assert.equal(hex(row.publicKey), hex(k));
  db.close();
});

test('store: an id binds one key and a key one id; revoke, re-enrol; sessions counted', async () => {
  const { db } = await setup();
  const a = key();
  const b = key();
  const r1 = db.admit('alpha', a, 'admin', T0);
  assert.ok(r1.ok && r1.created);
  const again = db.admit('alpha', a, 'admin', T0 + 1);
  assert.ok(again.ok && !again.created, 'enrolling the same pair twice is a no-op');
  const idTaken = db.admit('alpha', b, 'admin', T0);
  assert.ok(!idTaken.ok && idTaken.conflict === 'id-taken');
  const keyTaken = db.admit('beta', a, 'admin', T0);
  assert.ok(!keyTaken.ok && keyTaken.conflict === 'key-taken');
  assert.equal(db.listEnrolments().length, 1, 'a refused enrolment writes nothing');

  const revoked = db.revoke('alpha', T0 + 5, 'laptop stolen');
  assert.equal(revoked?.status, 'revoked');
  assert.equal(revoked?.revokedAt, T0 + 5);
  assert.equal(revoked?.revokeReason, 'laptop stolen');
  assert.equal(db.revoke('nobody', T0, null), undefined);
  assert.deepEqual(db.listEnrolments('revoked').map((r) => r.agentId), ['alpha']);
  assert.deepEqual(db.listEnrolments('enrolled'), []);
  // The operator re-keys the id after a revocation.
  const rekeyed = db.admit('alpha', b, 'admin', T0 + 9);
  assert.ok(rekeyed.ok && rekeyed.created);
  assert.equal(hex(rekeyed.row.publicKey), hex(b));
  assert.equal(rekeyed.row.status, 'enrolled');
  assert.equal(rekeyed.row.revokedAt, null);
  db.recordSession('alpha', T0 + 10);
  db.recordSession('alpha', T0 + 20);
  const seen = db.getEnrolment('alpha');
  assert.deepEqual([seen?.firstSeen, seen?.lastSeen, seen?.sessions], [T0 + 10, T0 + 20, 2]);
  db.close();
});

test('tokens: only the hash is stored; single use; expiry; a forged, altered or foreign token is refused by name', async () => {
  const { dir, db, tokens } = await setup();
  const { tokens: [t1, t2, t3], expiresAt } = tokens.mint(3, 60_000, T0) as { tokens: [string, string, string]; expiresAt: number };
  assert.equal(expiresAt, T0 + 60_000);
  assert.match(t1, /^fedclr-et1\.[A-Za-z0-9_-]{22}\.\d+\.[A-Za-z0-9_-]{43}$/);
  assert.equal(new Set([t1, t2, t3]).size, 3);
  // The database holds no token, only SHA-256 hashes.
  db.close();
  const raw = new Database(join(dir, 'coordinator.db'));
  const dump = JSON.stringify(raw.prepare('SELECT hex(token_hash) AS h, created_at, expires_at FROM enrolment_tokens').all());
  raw.close();
  for (const t of [t1, t2, t3]) {
    assert.ok(!dump.includes(t.split('.')[1] as string), 'no token id in the database');
    assert.ok(dump.includes(tokenHash(t).toString('hex').toUpperCase()));
  }
  const db2 = new StateDb(join(dir, 'coordinator.db'));
  const tk = await EnrolmentTokens.open(dir, db2);
  const ok = tk.check(t1, T0 + 1);
  assert.ok(ok.ok);
  // Single use: the first admit consumes it with the enrolment, in one transaction.
  const a = key();
  const first = db2.admit('a', a, 'token', T0 + 2, ok.hash);
  assert.ok(first.ok);
  const used = tk.check(t1, T0 + 3);
  assert.ok(!used.ok && /already used by agent 'a'/.test(used.message), JSON.stringify(used));
  const b = key();
  const reuse = db2.admit('b', b, 'token', T0 + 3, ok.hash);
  assert.ok(!reuse.ok && reuse.conflict === 'token-used');
  assert.equal(db2.getEnrolment('b'), undefined, 'a refused token enrols nothing');
  // A conflicting enrolment does not burn the token.
  const c2 = tk.check(t2, T0 + 4);
  assert.ok(c2.ok);
  const conflict = db2.admit('a', b, 'token', T0 + 4, c2.hash);
  assert.ok(!conflict.ok && conflict.conflict === 'id-taken');
  assert.ok(tk.check(t2, T0 + 5).ok, 'the token is still unused');
  // Expiry, by the signed expiry and by the stored one.
  const late = tk.check(t3, T0 + 60_000);
  assert.ok(!late.ok && /expired at/.test(late.message));
  const lateAdmit = db2.admit('c', key(), 'token', T0 + 60_001, tokenHash(t3));
  assert.ok(!lateAdmit.ok && lateAdmit.conflict === 'token-expired');
  // Forgery: another MAC, another expiry, another coordinator's key, garbage.
  const parts = t2.split('.');
  const flipped = `${parts.slice(0, 3).join('.')}.${(parts[3] as string).startsWith('A') ? 'B' : 'A'}${(parts[3] as string).slice(1)}`;
  assert.match((tk.check(flipped, T0) as { message: string }).message, /forged/);
  const extended = `${parts[0]}.${parts[1]}.${Number(parts[2]) + 1}.${parts[3]}`;
  assert.match((tk.check(extended, T0) as { message: string }).message, /forged/);
  const other = await setup();
  const foreign = other.tokens.mint(1, 60_000, T0).tokens[0] as string;
  assert.match((tk.check(foreign, T0) as { message: string }).message, /forged/);
  assert.match((tk.check('hello', T0) as { message: string }).message, /malformed/);
  db2.close();
  other.db.close();
});

test('admission: enrolled pairs pass; strangers, revoked keys, squatters and bad tokens are refused with the reason', async () => {
  const listed = key();
  const { db, tokens, admission } = await setup('allow-list', [hex(listed)]);
  const a = key();
  db.admit('alpha', a, 'admin', T0);
  assert.deepEqual(admission.check('alpha', a, undefined, T0), { ok: true });
  const stranger = key();
  const s = admission.check('stranger', stranger, undefined, T0);
  assert.ok(!s.ok && /is not enrolled: the operator admits it with `fedclr admin enroll stranger [0-9a-f]{64}`/.test(s.message), JSON.stringify(s));
  const squat = admission.check('alpha', stranger, undefined, T0);
  assert.ok(!squat.ok && /enrolled with another public key/.test(squat.message));
  const alias = admission.check('alias', a, undefined, T0);
  assert.ok(!alias.ok && /is enrolled as agent 'alpha', not 'alias'/.test(alias.message));
  // A config allow-list key: admitted under the id it presents, enrolled at the key proof.
  assert.deepEqual(admission.check('listed', listed, undefined, T0), { ok: true, enrol: { source: 'config' } });
  assert.deepEqual(admission.admit('listed', listed, undefined, T0), { ok: true });
  assert.equal(db.getEnrolment('listed')?.source, 'config');
  assert.equal(db.getEnrolment('listed')?.sessions, 1);
  // Revoked: refused by id and by key, even though the key is on the config list.
  db.revoke('listed', T0 + 1, 'decommissioned');
  const rev = admission.check('listed', listed, undefined, T0 + 2);
  assert.ok(!rev.ok && /was revoked by the operator at .*: decommissioned/.test(rev.message), JSON.stringify(rev));
  const revAlias = admission.check('other-id', listed, undefined, T0 + 2);
  assert.ok(!revAlias.ok && /revoked/.test(revAlias.message));
  // Tokens: enrols at admit, then the token is spent; an enrolled agent's token is ignored.
  const [tok] = tokens.mint(1, 60_000, T0).tokens as [string];
  const n = key();
  const d = admission.check('newbie', n, tok, T0 + 1);
  assert.ok(d.ok && d.enrol?.source === 'token');
  assert.deepEqual(admission.admit('newbie', n, tok, T0 + 1), { ok: true });
  assert.equal(db.getEnrolment('newbie')?.source, 'token');
  assert.deepEqual(admission.check('newbie', n, tok, T0 + 2), { ok: true }, 'a reconnect with the spent token still gets in');
  const thief = admission.check('thief', key(), tok, T0 + 2);
  assert.ok(!thief.ok && /already used by agent 'newbie'/.test(thief.message));
  db.close();
});

test('admission: open enrolment admits any key (first key wins the id)', async () => {
  const { db, admission } = await setup('open');
  const a = key();
  assert.deepEqual(admission.admit('anyone', a, undefined, T0), { ok: true });
  assert.equal(db.getEnrolment('anyone')?.source, 'open');
  const s = admission.check('anyone', key(), undefined, T0);
  assert.ok(!s.ok && /enrolled with another public key/.test(s.message));
  db.close();
});

test('secret files: created 0600 atomically, printed once (created: true), refused when others can read them', async () => {
  const dir = tempDir();
  const first = await loadOrCreateAdminToken(dir);
  assert.ok(first.created);
  assert.match(first.value, /^fedclr-admin\.[A-Za-z0-9_-]{43}$/);
  assert.equal(statSync(first.path).mode & 0o777, 0o600);
  assert.equal(readFileSync(first.path, 'utf8').trim(), first.value);
  const second = await loadOrCreateAdminToken(dir);
  assert.deepEqual([second.created, second.value], [false, first.value]);
  // Concurrent first starts agree on one secret.
  const racers = await Promise.all(Array.from({ length: 5 }, () => loadOrCreateSecret(join(dir, 'race'), () => `x${Math.random().toString(36).repeat(4)}`)));
  assert.equal(new Set(racers.map((r) => r.value)).size, 1);
  assert.equal(racers.filter((r) => r.created).length, 1);
  chmodSync(first.path, 0o644);
  await assert.rejects(loadOrCreateAdminToken(dir), (e: unknown) => isCoordinatorError(e, 'FEDCLR_COORD_SECRET_FILE') && /chmod 600/.test((e as Error).message));
  writeFileSync(join(dir, TOKEN_KEY_FILE), 'short\n', { mode: 0o600 });
  const db = new StateDb(join(dir, 'db'));
  await assert.rejects(EnrolmentTokens.open(dir, db), (e: unknown) => isCoordinatorError(e, 'FEDCLR_COORD_SECRET_FILE'));
  db.close();
});

test('config: allow-list by default; read routes public only on a loopback bind; bad admission settings name the field', () => {
  const c = resolveConfig({ stateDir: '/tmp/x' });
  assert.deepEqual(c.enrolment, { mode: 'allow-list', publicKeys: [] });
  assert.equal(c.http.publicRead, true);
  assert.deepEqual([c.http.rateLimit, c.http.adminRateLimit, c.http.rateWindowMs, c.http.corsOrigins.length], [600, 60, 60_000, 0]);
  assert.equal(resolveConfig({ stateDir: '/tmp/x', host: '0.0.0.0' }).http.publicRead, false);
  assert.equal(resolveConfig({ stateDir: '/tmp/x', host: '0.0.0.0', http: { publicRead: true } }).http.publicRead, true);
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) assert.ok(isLoopbackHost(h), h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', 'coord.example', '128.0.0.1']) assert.ok(!isLoopbackHost(h), h);
  const bad = (config: Record<string, unknown>, field: RegExp): void => {
    assert.throws(() => resolveConfig({ stateDir: '/tmp/x', ...config }), (e: unknown) => isCoordinatorError(e, 'FEDCLR_COORD_CONFIG_INVALID') && field.test((e as Error).message));
  };
  bad({ enrolment: { mode: 'closed' } }, /'enrolment.mode'/);
  bad({ enrolment: { mode: 'allow-list', publicKeys: ['nope'] } }, /'enrolment.publicKeys\[0\]'/);
  bad({ enrolment: { mode: 'open', publicKeys: [hex(key())] } }, /'enrolment.publicKeys' must be absent with mode 'open'/);
  bad({ http: { corsOrigins: 'https://x' } }, /'http.corsOrigins'/);
  bad({ http: { rateLimit: -1 } }, /'http.rateLimit'/);
  bad({ http: { tls: true } }, /'http.tls'/);
});
