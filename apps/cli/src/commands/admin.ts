// fedclr admin: the coordinator's admin API (/api/admin) from the command line: enrol, revoke and
// list agents, mint one-time enrolment tokens. Also the coordinator's admission and HTTP flags
// (shared with fedclr coordinator, which only calls admissionConfig).
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { CoordinatorConfig } from '@fedclr/coordinator';
import { intOption } from '../common.js';
import { ProcessError, UsageError } from '../errors.js';

export const adminHelp = `fedclr admin enroll|revoke|list|token --coordinator URL (--token-file F | --state DIR) [options]
  the coordinator's admin API (routes under /api/admin; the bearer token is <coordinator state>/admin-token,
  created at its first start, mode 0600; --state DIR reads DIR/admin-token, or set FEDCLR_ADMIN_TOKEN)
  enroll AGENT_ID PUBLIC_KEY    admit this agent id with this Ed25519 key (hex or base64, as fedclr agent id prints)
  revoke AGENT_ID [--reason R]  refuse it from now on; a connected agent is evicted at once (shutdown 'evicted'),
                                and it is never sampled into another round
  list [--status enrolled|revoked]   the enrolments (id, key, status, source, last seen, connected)
  token [--ttl 24h] [--count 1] one-time enrolment tokens (fedclr agent --token T), one per line: each enrols one
                                new key at its first handshake, until it expires (--ttl: 30m, 24h, 7d; at most 365d)
  --ca FILE                     PEM CA that signed the coordinator's TLS certificate (a private CA, as fedclr agent --ca)
  --json                        print the API's JSON`;

/** Admission and HTTP flags of fedclr coordinator (parseArgs options), and their help lines. */
export const admissionFlags = {
  'open-enrolment': { type: 'boolean', default: false },
  'public-read': { type: 'boolean', default: false },
  'cors-origin': { type: 'string' },
  'rate-limit': { type: 'string' },
  'admin-rate-limit': { type: 'string' },
} as const;

export const admissionHelp = `  admission (default: only enrolled agents join; fedclr admin enroll | revoke | list | token):
  --open-enrolment              any agent that connects joins and stays enrolled (a test bench; warned at start)
  --public-read                 read routes (status, rounds, agents, model, metrics) without the admin token on a
                                non-loopback bind (on a loopback bind they are public anyway)
  --cors-origin O1,O2           allow these browser origins (CORS; default: off)
  --rate-limit 600 --admin-rate-limit 60   requests per minute per client IP (0: off) on every route / on /api/admin
  Admin token: <state>/admin-token (0600), printed once when created; admin routes need 'Authorization: Bearer <it>'.`;

/** Applies the admission flags over a coordinator config (the flags override --config). */
export function admissionConfig(values: Record<string, unknown>, config: CoordinatorConfig): CoordinatorConfig {
  const http = { ...(config.http ?? {}) };
  if (values['public-read'] === true) http.publicRead = true;
  if (typeof values['cors-origin'] === 'string') {
    const origins = values['cors-origin'].split(',').map((o) => o.trim()).filter((o) => o.length > 0);
    for (const o of origins) {
      if (o !== '*' && !/^https?:\/\/[^/\s]+$/.test(o)) throw new UsageError(`--cors-origin takes origins like https://dash.example:8443 (or *), got '${o}'`);
    }
    http.corsOrigins = origins;
  }
  if (values['rate-limit'] !== undefined) http.rateLimit = intOption(values, 'rate-limit', 600, 0);
  if (values['admin-rate-limit'] !== undefined) http.adminRateLimit = intOption(values, 'admin-rate-limit', 60, 0);
  const open = values['open-enrolment'] === true;
  if (open && config.enrolment?.mode === 'allow-list' && (config.enrolment.publicKeys?.length ?? 0) > 0) {
    throw new UsageError('--open-enrolment contradicts the allow-list in --config (enrolment.publicKeys); drop one of them');
  }
  return { ...config, http, ...(open ? { enrolment: { mode: 'open' } } : {}) };
}

/** 30m, 24h, 7d, 90s, or plain seconds. */
export function ttlSeconds(raw: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(raw.trim());
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[m?.[2] ?? ''] ?? 1;
  const n = Number(m?.[1]) * unit;
  if (m === null || !(n >= 1) || n > 365 * 86_400) throw new UsageError(`--ttl must be a duration like 30m, 24h or 7d (at most 365d), got '${raw}'`);
  return n;
}

async function adminToken(values: { 'token-file'?: string | undefined; state?: string | undefined }): Promise<string> {
  if (values['token-file'] !== undefined && values.state !== undefined) throw new UsageError('give --token-file F or --state DIR, not both');
  const env = process.env['FEDCLR_ADMIN_TOKEN'];
  const path = values['token-file'] ?? (values.state !== undefined ? join(values.state, 'admin-token') : undefined);
  if (path === undefined) {
    if (env !== undefined && env.length > 0) return env.trim();
    throw new UsageError("give --token-file F (the coordinator's <state>/admin-token) or --state DIR (the coordinator's state dir), or set FEDCLR_ADMIN_TOKEN");
  }
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (err) {
    throw new UsageError(`cannot read the admin token ${path}: ${(err as Error).message}`);
  }
}

interface Enrolment {
  agentId: string;
  publicKey: string;
  status: string;
  source: string;
  enrolledAt: number;
  revokedAt: number | null;
  revokeReason: string | null;
  lastSeen: number | null;
  connected: boolean;
}

const iso = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString());

export async function adminCommand(argv: string[], out: (line: string) => void): Promise<number> {
  const [action, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      coordinator: { type: 'string' },
      'token-file': { type: 'string' },
      state: { type: 'string' },
      reason: { type: 'string' },
      status: { type: 'string' },
      ttl: { type: 'string' },
      count: { type: 'string' },
      ca: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (action === undefined || !['enroll', 'enrol', 'revoke', 'list', 'token'].includes(action)) {
    throw new UsageError(`fedclr admin takes enroll, revoke, list or token, got ${action === undefined ? 'nothing' : `'${action}'`}`);
  }
  if (values.coordinator === undefined) throw new UsageError('give --coordinator URL (e.g. http://127.0.0.1:8080)');
  if (!/^https?:\/\/[^/\s]+/.test(values.coordinator)) throw new UsageError(`--coordinator must be an http(s):// URL, got '${values.coordinator}'`);
  const base = values.coordinator.replace(/\/+$/, '');
  const want = (n: number, usage: string): void => {
    if (positionals.length !== n) throw new UsageError(`fedclr admin ${usage}`);
  };
  let method = 'POST';
  let path: string;
  let body: Record<string, unknown> | undefined;
  switch (action) {
    case 'enroll':
    case 'enrol':
      want(2, 'enroll takes AGENT_ID PUBLIC_KEY (as fedclr agent id prints them)');
      path = '/api/admin/enrolments';
      body = { agentId: positionals[0], publicKey: positionals[1] };
      break;
    case 'revoke':
      want(1, 'revoke takes AGENT_ID');
      path = `/api/admin/enrolments/${encodeURIComponent(positionals[0] as string)}/revoke`;
      body = values.reason === undefined ? {} : { reason: values.reason };
      break;
    case 'list':
      want(0, 'list takes no arguments');
      if (values.status !== undefined && values.status !== 'enrolled' && values.status !== 'revoked') {
        throw new UsageError(`--status must be enrolled or revoked, got '${values.status}'`);
      }
      method = 'GET';
      path = `/api/admin/enrolments${values.status === undefined ? '' : `?status=${values.status}`}`;
      break;
    default:
      want(0, 'token takes no arguments (--ttl, --count)');
      path = '/api/admin/tokens';
      body = { ttlSeconds: ttlSeconds(values.ttl ?? '24h'), count: intOption(values, 'count', 1) };
  }
  const token = await adminToken(values);
  const ca = values.ca === undefined ? undefined : await readCa(values.ca);
  let res: { status: number; ok: boolean; text: string };
  try {
    res = await send(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...(ca === undefined ? {} : { ca }),
    });
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new ProcessError(`cannot reach the coordinator at ${base}: ${(err as Error).message}${code === undefined ? '' : ` (${code}${ca === undefined && /CERT|SELF_SIGNED|ISSUER/.test(code) ? '; a private CA? give --ca FILE' : ''})`}`);
  }
  const text = res.text;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    const e = data as { code?: string; message?: string } | undefined;
    throw new ProcessError(`the coordinator refused: HTTP ${res.status}${e?.code === undefined ? '' : ` [${e.code}]`} ${e?.message ?? text.slice(0, 200)}`);
  }
  if (values.json) {
    out(JSON.stringify(data));
    return 0;
  }
  if (action === 'token') {
    const t = data as { tokens: string[]; expiresAt: number };
    for (const line of t.tokens) out(line);
    return 0;
  }
  if (action === 'list') {
    const l = data as { mode: string; items: Enrolment[] };
    out(`enrolment mode: ${l.mode}; ${l.items.length} enrolment(s)`);
    for (const e of l.items) {
      out(`${e.agentId}\t${e.publicKey}\t${e.status}\t${e.source}\tenrolled ${iso(e.enrolledAt)}\tlast seen ${iso(e.lastSeen)}${e.connected ? '\tconnected' : ''}${e.revokedAt === null ? '' : `\trevoked ${iso(e.revokedAt)}${e.revokeReason === null ? '' : ` (${e.revokeReason})`}`}`);
    }
    return 0;
  }
  const e = data as Enrolment;
  out(action === 'revoke' ? `revoked ${e.agentId} (${e.publicKey})` : `enrolled ${e.agentId} (${e.publicKey})${res.status === 200 ? ' (already enrolled)' : ''}`);
  return 0;
}

async function readCa(path: string): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read --ca ${path}: ${(err as Error).message}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`--ca ${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return pem;
}

/** One HTTP(S) request; node:https so that a private CA can be given (fetch takes none). */
function send(
  url: string,
  options: { method: string; headers: Record<string, string>; body?: string; ca?: string },
): Promise<{ status: number; ok: boolean; text: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(
      target,
      { method: options.method, headers: options.headers, ...(options.ca === undefined ? {} : { ca: options.ca }), timeout: 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          resolve({ status, ok: status >= 200 && status < 300, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}
