// Which Ed25519 key may sign the coordinator's secure-aggregation messages. Either pinned in the
// agent's options (`secagg.coordinatorKey`, e.g. from the coordinator's GET /api/status), or
// trusted on first use and remembered in <stateDir>/coordinator-keys.json (per coordinator URL,
// mode 0600), as ssh's known_hosts: a later key change is refused, not silently accepted.
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { AgentConfigError, SecaggRefusedError } from './errors.js';

export const COORDINATOR_KEYS_FILE = 'coordinator-keys.json';

/** Parses a 32-byte Ed25519 public key given as hex or base64 (or bytes). */
export function parseCoordinatorKey(value: string | Uint8Array): Uint8Array {
  if (value instanceof Uint8Array) {
    if (value.length !== 32) throw new AgentConfigError('secagg.coordinatorKey', 'a 32-byte Ed25519 public key', `${value.length} bytes`);
    return Uint8Array.from(value);
  }
  const bytes = /^[0-9a-fA-F]{64}$/.test(value) ? Buffer.from(value, 'hex') : Buffer.from(value, 'base64');
  if (bytes.length !== 32) throw new AgentConfigError('secagg.coordinatorKey', 'a 32-byte Ed25519 public key as hex or base64', JSON.stringify(value));
  return new Uint8Array(bytes);
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export class CoordinatorKeys {
  private readonly path: string;
  private readonly url: string;
  private readonly pinned: Uint8Array | undefined;
  private readonly log: Logger;
  private known: string | undefined;
  private loaded = false;
  private writing: Promise<void> = Promise.resolve();

  constructor(options: { stateDir: string; coordinatorUrl: string; pinned?: Uint8Array; log: Logger }) {
    this.path = join(options.stateDir, COORDINATOR_KEYS_FILE);
    this.url = options.coordinatorUrl;
    this.pinned = options.pinned;
    this.log = options.log;
  }

  /**
   * Throws (FEDCLR_AGENT_SECAGG_REFUSED) if `key` differs from the pinned key, or from the key this
   * coordinator used before. A key never seen is not trusted by this call: `remember` it only once
   * a message verified under it (else an unsigned message could plant its own key).
   */
  async check(key: Uint8Array, roundId: number, stage: string): Promise<void> {
    const k = hex(key);
    if (this.pinned !== undefined) {
      if (k !== hex(this.pinned)) throw new SecaggRefusedError(roundId, stage, `signed by coordinator key ${k.slice(0, 16)}..., not the pinned key ${hex(this.pinned).slice(0, 16)}...`);
      return;
    }
    if (!this.loaded) {
      this.known = (await this.readAll())[this.url];
      this.loaded = true;
    }
    if (this.known !== undefined && k !== this.known) {
      throw new SecaggRefusedError(
        roundId,
        stage,
        `signed by coordinator key ${k.slice(0, 16)}..., but ${this.url} used ${this.known.slice(0, 16)}... before (${this.path}); remove the entry if the coordinator's key really changed`,
      );
    }
  }

  /** Trusts `key` for this coordinator from now on (first use), persisting it. No-op when pinned or known. */
  async remember(key: Uint8Array): Promise<void> {
    const k = hex(key);
    if (this.pinned !== undefined || this.known === k) return;
    if (this.known !== undefined) throw new AgentConfigError('coordinator key', `the key already trusted for ${this.url}`, k);
    this.known = k;
    this.log.info({ coordinatorUrl: this.url, key: k, file: this.path }, 'trusting the coordinator secure-aggregation key on first use');
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
