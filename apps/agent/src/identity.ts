// The agent's Ed25519 identity (tweetnacl), kept in <stateDir>/identity.json with mode 0600 in
// a 0700 directory. Created once with an exclusive create (no overwrite race); a key file that
// group or others can access is refused, as ssh does.
import { chmod, mkdir, open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { AGENT_ID_PATTERN } from '@fedclr/protocol';
import { AgentConfigError, IdentityCorruptError, IdentityInsecureError } from './errors.js';

export interface AgentIdentity {
  readonly agentId: string;
  /** 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** 64-byte tweetnacl secret key (seed + public key). */
  readonly secretKey: Uint8Array;
  readonly path: string;
  /** True when this call created the key pair. */
  readonly created: boolean;
}

interface IdentityFile {
  version: 1;
  agentId: string;
  publicKey: string;
  secretKey: string;
}

export const IDENTITY_FILE = 'identity.json';
const AGENT_ID_RE = new RegExp(AGENT_ID_PATTERN);

/** Default agent id: derived from the public key, stable across restarts. */
export function defaultAgentId(publicKey: Uint8Array): string {
  return `agent-${Buffer.from(publicKey).toString('hex').slice(0, 16)}`;
}

/** Loads the identity in `stateDir`, creating it (and the directory) on first use. */
export async function loadOrCreateIdentity(stateDir: string, agentId?: string): Promise<AgentIdentity> {
  if (agentId !== undefined && !AGENT_ID_RE.test(agentId)) {
    throw new AgentConfigError('agentId', `a string matching /${AGENT_ID_PATTERN}/`, JSON.stringify(agentId));
  }
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, IDENTITY_FILE);
  let text: string | undefined;
  try {
    const st = await stat(path);
    if ((st.mode & 0o077) !== 0) throw new IdentityInsecureError(path, `0${(st.mode & 0o777).toString(8)}`);
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== undefined) return parseIdentity(path, text, agentId);

  const pair = nacl.sign.keyPair();
  const id = agentId ?? defaultAgentId(pair.publicKey);
  const file: IdentityFile = {
    version: 1,
    agentId: id,
    publicKey: Buffer.from(pair.publicKey).toString('hex'),
    secretKey: Buffer.from(pair.secretKey).toString('base64'),
  };
  let fh;
  try {
    fh = await open(path, 'wx', 0o600);
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateIdentity(stateDir, agentId);
    throw err;
  }
  try {
    await fh.writeFile(`${JSON.stringify(file, null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(path, 0o600); // in case the umask interfered
  return { agentId: id, publicKey: pair.publicKey, secretKey: pair.secretKey, path, created: true };
}

function parseIdentity(path: string, text: string, agentId: string | undefined): AgentIdentity {
  let f: Partial<IdentityFile>;
  try {
    f = JSON.parse(text) as Partial<IdentityFile>;
  } catch (err) {
    throw new IdentityCorruptError(path, `not JSON (${(err as Error).message})`);
  }
  if (f.version !== 1 || typeof f.publicKey !== 'string' || typeof f.secretKey !== 'string' || typeof f.agentId !== 'string') {
    throw new IdentityCorruptError(path, 'expected {version: 1, agentId, publicKey (hex), secretKey (base64)}');
  }
  const publicKey = new Uint8Array(Buffer.from(f.publicKey, 'hex'));
  const secretKey = new Uint8Array(Buffer.from(f.secretKey, 'base64'));
  if (publicKey.length !== 32 || secretKey.length !== 64) throw new IdentityCorruptError(path, 'key lengths are not 32 and 64 bytes');
  const derived = nacl.sign.keyPair.fromSecretKey(secretKey).publicKey;
  if (Buffer.compare(Buffer.from(derived), Buffer.from(publicKey)) !== 0) {
    throw new IdentityCorruptError(path, 'the public key does not belong to the secret key');
  }
  if (!AGENT_ID_RE.test(f.agentId)) throw new IdentityCorruptError(path, `agentId ${JSON.stringify(f.agentId)} is invalid`);
  return { agentId: agentId ?? f.agentId, publicKey, secretKey, path, created: false };
}
