// What an agent signs. DESIGN: every protocol message an agent sends is signed with its
// Ed25519 identity key. Signing itself (tweetnacl) lives outside this package; this module
// defines the exact bytes: a domain tag, the session id from `welcome` (so a signed message
// cannot be replayed into another session), and a canonical serialization of the message
// without its `sig` field. Binary fields enter as their length and sha256, so signing a large
// update costs one native hash pass, not a JSON dump.
//
//   payload = "fedclr-sig-v1\0" || sessionId || "\0" || canonicalJson(message minus sig)
//   canonicalJson: object keys sorted, undefined skipped, Uint8Array -> {"$bytes":len,"$sha256":hex}
import { createHash } from 'node:crypto';
import { InvalidValueError } from './errors.js';
import type { AgentMessage } from './schemas.js';

const DOMAIN = 'fedclr-sig-v1\0';

/** Canonical JSON of a message (or any JSON-like value with Uint8Array leaves), without `sig`. */
export function canonicalJson(value: unknown): string {
  return write(value, true);
}

function write(v: unknown, top: boolean): string {
  if (v instanceof Uint8Array) {
    const digest = createHash('sha256').update(v).digest('hex');
    return `{"$bytes":${v.length},"$sha256":"${digest}"}`;
  }
  if (Array.isArray(v)) return `[${v.map((x) => write(x === undefined ? null : x, false)).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const obj = v as Record<string, unknown>;
    const keys = Object.keys(obj)
      .filter((k) => obj[k] !== undefined && !(top && k === 'sig'))
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${write(obj[k], false)}`).join(',')}}`;
  }
  if (typeof v === 'number' && !Number.isFinite(v)) {
    throw new InvalidValueError('(signing)', '(number)', 'a finite number', String(v));
  }
  if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean' || v === null) return JSON.stringify(v);
  throw new InvalidValueError('(signing)', '(value)', 'JSON-like data or Uint8Array', typeof v);
}

/** The bytes an agent signs (and the coordinator verifies) for `message` in session `sessionId`. */
export function signingPayload(message: AgentMessage, sessionId: string): Buffer {
  return Buffer.from(`${DOMAIN}${sessionId}\0${canonicalJson(message)}`, 'utf8');
}
