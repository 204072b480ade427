// Admission: who may join the federation. Enrolments live in the coordinator's SQLite (db.ts):
// agent id + Ed25519 public key + status (enrolled / revoked). A hello is admitted only when its
// agent id is enrolled with exactly its key and not revoked, unless
//   - the coordinator runs open enrolment (an explicit choice, warned about at start): the first
//     key that proves possession of an id enrols it;
//   - the key is on the --config allow-list (enrolment.publicKeys): enrolled at its first
//     handshake under the id it presents, source 'config';
//   - the hello carries a valid one-time enrolment token (hello.token): enrolled at the first
//     successful handshake (the key proof), the token consumed in the same transaction.
// Tokens: `fedclr-et1.<id>.<expiresAt ms>.<mac>`, id = 16 random bytes (base64url), mac =
// HMAC-SHA256 under the coordinator's token key (<state>/enrolment-token.key, 0600) of the text
// before it. The database stores only SHA-256(token), with its expiry and use.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, link, open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { StateDb, EnrolmentRow, EnrolmentSource, TokenRow } from './db.js';
import { parsePublicKey } from './auth.js';
import { SecretFileError } from './errors.js';

export const ADMIN_TOKEN_FILE = 'admin-token';
export const TOKEN_KEY_FILE = 'enrolment-token.key';
export const TOKEN_PREFIX = 'fedclr-et1';
/** Largest token lifetime a mint accepts: 365 days. */
export const MAX_TOKEN_TTL_MS = 365 * 24 * 3600 * 1000;
const TOKEN_RE = /^fedclr-et1\.([A-Za-z0-9_-]{22})\.([1-9][0-9]{0,15})\.([A-Za-z0-9_-]{43})$/;

// ---- secret files ------------------------------------------------------------------------------

/**
 * Reads a secret file (refusing one that group or others can access, as ssh does), or creates it
 * atomically: written and fsynced under a temporary name with mode 0600, then hard-linked into
 * place (link fails if another process won the race; theirs is read). Never a partial file.
 */
export async function loadOrCreateSecret(path: string, make: () => string): Promise<{ value: string; created: boolean }> {
  try {
    const st = await stat(path);
    if ((st.mode & 0o077) !== 0) throw new SecretFileError(path, `mode 0${(st.mode & 0o777).toString(8)} lets others read it (chmod 600)`);
    const value = (await readFile(path, 'utf8')).trim();
    if (value.length < 32) throw new SecretFileError(path, 'it is empty or shorter than 32 characters; delete it to create a new one');
    return { value, created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const value = make();
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(`${value}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(tmp, 0o600);
  try {
    await link(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      await unlink(tmp);
      return loadOrCreateSecret(path, make);
    }
    await unlink(tmp);
    throw err;
  }
  await unlink(tmp);
  return { value, created: true };
}

/** The admin bearer token (<state>/admin-token); `created` when this call made it. */
export function loadOrCreateAdminToken(stateDir: string): Promise<{ value: string; created: boolean; path: string }> {
  const path = join(stateDir, ADMIN_TOKEN_FILE);
  return loadOrCreateSecret(path, () => `fedclr-admin.${randomBytes(32).toString('base64url')}`).then((r) => ({ ...r, path }));
}

/** True when `given` equals `expected` (constant time over their SHA-256). */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

// ---- enrolment tokens --------------------------------------------------------------------------

export const tokenHash = (token: string): Buffer => createHash('sha256').update(token).digest();

export class EnrolmentTokens {
  private readonly key: Buffer;
  private readonly db: StateDb;

  constructor(key: Uint8Array, db: StateDb) {
    this.key = Buffer.from(key);
    this.db = db;
  }

  static async open(stateDir: string, db: StateDb): Promise<EnrolmentTokens> {
    const { value } = await loadOrCreateSecret(join(stateDir, TOKEN_KEY_FILE), () => randomBytes(32).toString('hex'));
    const key = Buffer.from(value, 'hex');
    if (key.length !== 32) throw new SecretFileError(join(stateDir, TOKEN_KEY_FILE), 'expected 32 bytes as 64 hex characters');
    return new EnrolmentTokens(key, db);
  }

  private mac(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }

  /** Mints `count` single-use tokens valid for `ttlMs`; stores their hashes (all or none). */
  mint(count: number, ttlMs: number, now: number): { tokens: string[]; expiresAt: number } {
    const expiresAt = now + ttlMs;
    const tokens: string[] = [];
    for (let i = 0; i < count; i++) {
      const body = `${TOKEN_PREFIX}.${randomBytes(16).toString('base64url')}.${expiresAt}`;
      tokens.push(`${body}.${this.mac(body)}`);
    }
    this.db.insertTokens(tokens.map(tokenHash), now, expiresAt);
    return { tokens, expiresAt };
  }

  /** Checks a presented token without using it: its hash (for admit()) or why it is refused. */
  check(token: string, now: number): { ok: true; hash: Buffer } | { ok: false; message: string } {
    const m = TOKEN_RE.exec(token);
    if (m === null) return { ok: false, message: `enrolment token is malformed (expected ${TOKEN_PREFIX}.<id>.<expiry>.<mac>, as fedclr admin token prints)` };
    const body = token.slice(0, token.lastIndexOf('.'));
    const mac = Buffer.from(m[3] as string, 'base64url');
    const want = Buffer.from(this.mac(body), 'base64url');
    if (mac.length !== want.length || !timingSafeEqual(mac, want)) {
      return { ok: false, message: 'enrolment token is forged: its MAC does not verify under this coordinator\'s token key (minted by another coordinator, or altered)' };
    }
    const expiresAt = Number(m[2]);
    if (expiresAt <= now) return { ok: false, message: `enrolment token expired at ${new Date(expiresAt).toISOString()}` };
    const hash = tokenHash(token);
    const row = this.db.getToken(hash);
    if (row === undefined) return { ok: false, message: 'enrolment token is unknown to this coordinator (its record is gone)' };
    if (row.usedAt !== null) return { ok: false, message: usedMessage(row) };
    return { ok: true, hash };
  }
}

const usedMessage = (t: TokenRow): string =>
  `enrolment token was already used${t.usedBy === null ? '' : ` by agent '${t.usedBy}'`}${t.usedAt === null ? '' : ` at ${new Date(t.usedAt).toISOString()}`}; tokens are single use`;

// ---- the admission decision ----------------------------------------------------------------

export type AdmissionMode = 'allow-list' | 'open';

export type AdmissionDecision =
  /** Enrolled already, or to be enrolled at the key proof (source, and the token to consume). */
  | { readonly ok: true; readonly enrol?: { readonly source: EnrolmentSource; readonly tokenHash?: Buffer } }
  | { readonly ok: false; readonly message: string };

const short = (key: Uint8Array): string => `${Buffer.from(key).toString('hex').slice(0, 16)}...`;
const when = (ms: number | null): string => (ms === null ? '' : ` at ${new Date(ms).toISOString()}`);

export interface AdmissionOptions {
  readonly mode: AdmissionMode;
  /** --config allow-list keys (hex or base64): admitted under the id they first present. */
  readonly configKeys?: readonly string[];
  readonly db: StateDb;
  readonly tokens: EnrolmentTokens;
}

/** Decides whether a hello's (agentId, publicKey, token) may proceed, and enrols at the key proof. */
export class Admission {
  readonly mode: AdmissionMode;
  private readonly configKeys: ReadonlySet<string>;
  private readonly db: StateDb;
  readonly tokens: EnrolmentTokens;

  constructor(o: AdmissionOptions) {
    this.mode = o.mode;
    this.db = o.db;
    this.tokens = o.tokens;
    this.configKeys = new Set((o.configKeys ?? []).map((k) => parsePublicKey(k).toString('hex')));
  }

  check(agentId: string, publicKey: Uint8Array, token: string | undefined, now: number): AdmissionDecision {
    const key = Buffer.from(publicKey);
    const row = this.db.getEnrolment(agentId);
    if (row !== undefined) {
      if (!row.publicKey.equals(key)) {
        return { ok: false, message: `agent id '${agentId}' is enrolled with another public key (${short(row.publicKey)}), not ${short(key)}` };
      }
      if (row.status === 'revoked') return { ok: false, message: revokedMessage(row) };
      return { ok: true };
    }
    const others = this.db.enrolmentsByKey(key);
    const enrolledElsewhere = others.find((r) => r.status === 'enrolled');
    if (enrolledElsewhere !== undefined) {
      return { ok: false, message: `public key ${short(key)} is enrolled as agent '${enrolledElsewhere.agentId}', not '${agentId}' (start the agent with --agent-id ${enrolledElsewhere.agentId})` };
    }
    const revoked = others.find((r) => r.status === 'revoked');
    if (revoked !== undefined) return { ok: false, message: revokedMessage(revoked) };
    if (this.mode === 'open') return { ok: true, enrol: { source: 'open' } };
    if (this.configKeys.has(key.toString('hex'))) return { ok: true, enrol: { source: 'config' } };
    if (token !== undefined) {
      const t = this.tokens.check(token, now);
      if (!t.ok) return { ok: false, message: t.message };
      return { ok: true, enrol: { source: 'token', tokenHash: t.hash } };
    }
    return {
      ok: false,
      message:
        `agent '${agentId}' (public key ${key.toString('hex')}) is not enrolled: the operator admits it with ` +
        `\`fedclr admin enroll ${agentId} ${key.toString('hex')}\`, or the agent presents a one-time enrolment token (--token)`,
    };
  }

  /**
   * Called after the key proof: checks again and enrols if the decision says so (consuming the
   * token in the same transaction). Returns the refusal if another session got there first.
   */
  admit(agentId: string, publicKey: Uint8Array, token: string | undefined, now: number): { ok: true } | { ok: false; message: string } {
    const d = this.check(agentId, publicKey, token, now);
    if (!d.ok) return d;
    if (d.enrol !== undefined) {
      const r = this.db.admit(agentId, publicKey, d.enrol.source, now, d.enrol.tokenHash);
      if (!r.ok) return { ok: false, message: conflictMessage(agentId, r.conflict, r.row, r.token) };
    }
    this.db.recordSession(agentId, now);
    return { ok: true };
  }
}

export function revokedMessage(row: EnrolmentRow): string {
  return `agent '${row.agentId}' (public key ${short(row.publicKey)}) was revoked by the operator${when(row.revokedAt)}${row.revokeReason === null ? '' : `: ${row.revokeReason}`}`;
}

export function conflictMessage(agentId: string, conflict: string, row?: EnrolmentRow, token?: TokenRow): string {
  switch (conflict) {
    case 'id-taken':
      return `agent id '${agentId}' is already enrolled with another public key${row === undefined ? '' : ` (${short(row.publicKey)})`}; revoke it first`;
    case 'key-taken':
      return `this public key is already enrolled as agent '${row?.agentId ?? '?'}'`;
    case 'token-used':
      return token === undefined ? 'enrolment token was already used' : usedMessage(token);
    case 'token-expired':
      return `enrolment token expired${when(token?.expiresAt ?? null)}`;
    default:
      return 'enrolment token is unknown to this coordinator';
  }
}

/** A public key given by an operator (hex or base64), as 32 bytes. Throws FEDCLR_COORD_BAD_PUBLIC_KEY. */
export { parsePublicKey };
