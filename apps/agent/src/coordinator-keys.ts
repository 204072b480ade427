// Which Ed25519 key speaks for the coordinator: every coordinator message (welcome, round-start,
// round-end, update-rejected, shutdown, secagg) and the secure-aggregation envelopes inside
// secagg messages must be signed by it. Either pinned (`coordinatorKey`, the CLI's
// --coordinator-key: the coordinator prints it at start, GET /api/status returns it), or, only
// when asked for (`trustOnFirstUse`), the key of the first verified welcome, remembered in
// <stateDir>/coordinator-keys.json (per coordinator URL, mode 0600), as ssh's known_hosts: a
// later key change is refused, not silently accepted.
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { isUsableEd25519Key } from '@fedclr/protocol';
import { AgentConfigError, CoordinatorKeyMismatchError, SecaggRefusedError } from './errors.js';

export const COORDINATOR_KEYS_FILE = 'coordinator-keys.json';

/** Parses a 32-byte Ed25519 public key given as hex or base64 (or bytes). */
export function parseCoordinatorKey(value: string | Uint8Array, option = 'coordinatorKey'): Uint8Array {
  let bytes: Uint8Array;
  if (value instanceof Uint8Array) {
    if (value.length !== 32) throw new AgentConfigError(option, 'a 32-byte Ed25519 public key', `${value.length} bytes`);
    bytes = Uint8Array.from(value);
  } else {
    const t = value.trim();
    const b = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : /^[A-Za-z0-9+/_-]{43}=?$/.test(t) ? Buffer.from(t, 'base64') : Buffer.alloc(0);
    if (b.length !== 32) throw new AgentConfigError(option, 'a 32-byte Ed25519 public key as 64 hex characters or base64', JSON.stringify(value));
    bytes = new Uint8Array(b);
  }
  if (!isUsableEd25519Key(bytes)) throw new AgentConfigError(option, 'an Ed25519 public key (not a small-order point)', JSON.stringify(hex(bytes)));
  return bytes;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const short = (k: string): string => `${k.slice(0, 16)}...`;

export type KeyVerdict = 'pinned' | 'known' | 'first-use';

export class CoordinatorKeys {
  private readonly path: string;
  private readonly url: string;
  private readonly pinned: Uint8Array | undefined;
  private readonly tofu: boolean;
  private readonly log: Logger;
  private known: string | undefined;
  private loaded = false;
  private writing: Promise<void> = Promise.resolve();

  constructor(options: { stateDir: string; coordinatorUrl: string; pinned?: Uint8Array; trustOnFirstUse?: boolean; log: Logger }) {
    this.path = join(options.stateDir, COORDINATOR_KEYS_FILE);
    this.url = options.coordinatorUrl;
    this.pinned = options.pinned;
    this.tofu = options.trustOnFirstUse ?? false;
    this.log = options.log;
  }

  /** Reads the remembered key (trust on first use); call once before `assess`. */
  async load(): Promise<void> {
    if (this.loaded) return;
    if (this.pinned === undefined) this.known = (await this.readAll())[this.url];
    this.loaded = true;
  }

  /** The key every coordinator message must verify under, once known (pinned or remembered). */
  get trusted(): Uint8Array | undefined {
    if (this.pinned !== undefined) return this.pinned;
    return this.known === undefined ? undefined : new Uint8Array(Buffer.from(this.known, 'hex'));
  }

  /**
   * May `key` (announced in a welcome) speak for the coordinator? 'pinned' / 'known': it is the
   * trusted key; 'first-use': no key is known yet and trust on first use is on (verify the
   * welcome under it, then `remember` it). Throws FEDCLR_AGENT_COORDINATOR_KEY_MISMATCH otherwise.
   */
  assess(key: Uint8Array): KeyVerdict {
    const k = hex(key);
    if (this.pinned !== undefined) {
      if (k !== hex(this.pinned)) throw new CoordinatorKeyMismatchError(short(k), `the pinned key ${short(hex(this.pinned))} (--coordinator-key)`);
      return 'pinned';
    }
    if (!this.loaded) throw new AgentConfigError('CoordinatorKeys', 'loaded (call load() first)', 'not loaded');
    if (this.known !== undefined) {
      if (k !== this.known) {
        throw new CoordinatorKeyMismatchError(short(k), `${short(this.known)}, which ${this.url} used before (${this.path}; remove the entry if the key really changed)`);
      }
      return 'known';
    }
    if (!isUsableEd25519Key(key)) throw new CoordinatorKeyMismatchError(short(k), 'no small-order point');
    if (!this.tofu) throw new CoordinatorKeyMismatchError(short(k), 'no key (neither pinned nor trusted on first use)');
    return 'first-use';
  }

  /**
   * Secure aggregation: throws (FEDCLR_AGENT_SECAGG_REFUSED) unless `key` is the key this agent
   * trusts for the coordinator (pinned, or accepted with this connection's welcome).
   */
  async check(key: Uint8Array, roundId: number, stage: string): Promise<void> {
    const trusted = this.trusted;
    const k = hex(key);
    if (trusted === undefined) throw new SecaggRefusedError(roundId, stage, `signed by coordinator key ${short(k)}, but no coordinator key is trusted yet`);
    if (k !== hex(trusted)) {
      throw new SecaggRefusedError(roundId, stage, `signed by coordinator key ${short(k)}, not the trusted coordinator key ${short(hex(trusted))}`);
    }
    await Promise.resolve();
  }

  /** Trusts `key` for this coordinator from now on (first use), persisting it. No-op when pinned or known. */
  async remember(key: Uint8Array): Promise<void> {
    const k = hex(key);
    if (this.pinned !== undefined || this.known === k) return;
    if (this.known !== undefined) throw new AgentConfigError('coordinator key', `the key already trusted for ${this.url}`, k);
    if (!this.tofu) throw new AgentConfigError('trustOnFirstUse', 'on to remember a coordinator key', 'off');
    this.known = k;
    this.log.warn({ coordinatorUrl: this.url, key: k, file: this.path }, 'trusting the coordinator key on first use (pin it with --coordinator-key to be safe from an impostor)');
    this.writing = this.writing.then(async () => {
      const all = await this.readAll();
      all[this.url] = k;
      const tmp = `${this.path}.tmp`;
      await writeFile(tmp, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 });
      await chmod(tmp, 0o600);
      await rename(tmp, this.path);
    });
    await this.writing;
  }

  private async readAll(): Promise<Record<string, string>> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw err;
    }
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new AgentConfigError(this.path, 'a JSON object {coordinatorUrl: hex key}', typeof parsed);
    }
    const out: Record<string, string> = {};
    for (const [url, key] of Object.entries(parsed)) if (typeof key === 'string' && /^[0-9a-f]{64}$/.test(key)) out[url] = key;
    return out;
  }
}
