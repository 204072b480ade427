// Shared fixtures of the end-to-end tests: the fedclr binary, child processes that are always
// cleaned up, private PNG folders cut from Fashion-MNIST, and waiting for a log line.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { loadFashionMnist } from '@fedclr/data';

export const BIN = fileURLToPath(new URL('../../apps/cli/bin/fedclr.js', import.meta.url));

export interface Proc {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exited: Promise<number | null>;
  /** Resolves with the first match of `re` in stderr + stdout, or rejects after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  kill(): void;
}

/** Runs `fedclr args...`; the caller must kill() or await exited. */
export function fedclr(args: readonly string[]): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc: Proc = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((r) => child.once('exit', (code) => r(code))),
    waitFor(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const m = (proc.stderr + proc.stdout).match(re);
          if (m !== null) resolve(m);
          return m !== null;
        };
        if (check()) return;
        const timer = setTimeout(() => {
          child.stderr?.off('data', onData);
          reject(new Error(`no ${re} within ${timeoutMs} ms; stderr:\n${proc.stderr.slice(-3000)}`));
        }, timeoutMs);
        const onData = (): void => {
          if (check()) {
            clearTimeout(timer);
            child.stderr?.off('data', onData);
          }
        };
        child.stderr?.on('data', onData);
        child.stdout?.on('data', onData);
      });
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  };
  child.stdout?.on('data', (b: Buffer) => (proc.stdout += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (proc.stderr += b.toString()));
  return proc;
}

/**
 * Writes `perFolder` Fashion-MNIST train images into each of `folders` directories as PNG files
 * (disjoint slices, no labels): the agents' private image folders.
 */
export async function pngFolders(root: string, folders: number, perFolder: number): Promise<string[]> {
  const train = await loadFashionMnist('train', { limit: folders * perFolder });
  const dirs: string[] = [];
  for (let f = 0; f < folders; f++) {
    const dir = join(root, `photos-${f}`);
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < perFolder; i++) {
      const index = f * perFolder + i;
      const pixels = train.images.subarray(index * 784, (index + 1) * 784);
      const png = await sharp(Buffer.from(pixels), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();
      await writeFile(join(dir, `img-${String(i).padStart(4, '0')}.png`), png);
    }
    dirs.push(dir);
  }
  return dirs;
}

/**
 * A labeled image folder: `perClass` Fashion-MNIST train images of each of `classes` (label
 * numbers) as dir/<class name>/img-NNNN.png. Returns each image's relative path and pixels.
 */
export async function labeledPngFolder(dir: string, classes: readonly number[], perClass: number): Promise<Map<string, Uint8Array>> {
  const train = await loadFashionMnist('train', { limit: 2000 });
  const written = new Map<string, Uint8Array>();
  for (const label of classes) {
    const name = (train.classNames[label] as string).replace(/\//g, '-');
    mkdirSync(join(dir, name), { recursive: true });
    let n = 0;
    for (let i = 0; i < train.count && n < perClass; i++) {
      if (train.labels?.[i] !== label) continue;
      const pixels = train.images.slice(i * 784, (i + 1) * 784);
      const rel = `${name}/img-${String(n++).padStart(4, '0')}.png`;
      await writeFile(join(dir, rel), await sharp(Buffer.from(pixels), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer());
      written.set(rel, pixels);
    }
  }
  return written;
}

/**
 * The README's TLS set-up: a private CA (ca.crt) and a server certificate for localhost and
 * 127.0.0.1 (coord.crt, coord.key), written into `dir` with openssl.
 */
export function certificates(dir: string): { ca: string; cert: string; key: string } {
  const sh = (args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  sh(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '3650', '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=fedclr CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  sh(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'coord.key', '-out', 'coord.csr', '-subj', '/CN=localhost']);
  writeFileSync(join(dir, 'coord.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
  sh(['x509', '-req', '-in', 'coord.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '825', '-out', 'coord.crt', '-extfile', 'coord.ext']);
  return { ca: join(dir, 'ca.crt'), cert: join(dir, 'coord.crt'), key: join(dir, 'coord.key') };
}

/** GET over https with a private CA; resolves with the status code. */
export function httpsStatus(url: string, ca: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

export const SHAPES = ['circle', 'square', 'triangle'] as const;

/** Whether pixel (x, y) lies in `shape` centred at (cx, cy) with half-size r. */
function inShape(shape: (typeof SHAPES)[number], x: number, y: number, cx: number, cy: number, r: number): boolean {
  const dx = x - cx;
  const dy = y - cy;
  if (shape === 'circle') return dx * dx + dy * dy <= r * r;
  if (shape === 'square') return Math.abs(dx) <= r * 0.8 && Math.abs(dy) <= r * 0.8;
  return dy <= r * 0.8 && dy >= -r && Math.abs(dx) <= (dy + r) * 0.55; // apex up
}

/**
 * A labeled folder of generated PNGs: `perClass` images of each of SHAPES (one sub-folder each),
 * size x size, `channels` 1 or 3. Each image: one filled shape of random size, position and
 * colour (grey level) on a random dark background, plus pixel noise; seeded, so a seed names a
 * folder. No test ships these images: they are drawn here.
 */
export async function shapeFolder(dir: string, options: { perClass: number; size: number; channels: 1 | 3; seed: number }): Promise<string> {
  const { perClass, size, channels } = options;
  let state = options.seed * 2654435761 + 12345;
  const rand = (): number => {
    // mulberry32: small and seeded; the images need not be cryptographic, only reproducible.
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (const shape of SHAPES) {
    mkdirSync(join(dir, shape), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const r = size * (0.22 + 0.18 * rand());
      const cx = r + rand() * (size - 2 * r);
      const cy = r + rand() * (size - 2 * r);
      const fg = Array.from({ length: channels }, () => 120 + Math.floor(rand() * 136));
      const bg = Array.from({ length: channels }, () => Math.floor(rand() * 70));
      const pixels = Buffer.alloc(size * size * channels);
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const colour = inShape(shape, x + 0.5, y + 0.5, cx, cy, r) ? fg : bg;
          for (let c = 0; c < channels; c++) pixels[(y * size + x) * channels + c] = Math.max(0, Math.min(255, (colour[c] as number) + Math.floor((rand() - 0.5) * 24)));
        }
      }
      const png = await sharp(pixels, { raw: { width: size, height: size, channels } }).png().toBuffer();
      await writeFile(join(dir, shape, `${shape}-${String(i).padStart(3, '0')}.png`), png);
    }
  }
  return dir;
}

/** Asserts that no process whose command line names `path` is left running (pgrep exits 1 when none matches). */
export function assertNoProcessesLeft(path: string): void {
  let leftovers = '';
  try {
    leftovers = execFileSync('pgrep', ['-f', path], { encoding: 'utf8' });
  } catch (err) {
    assert.equal((err as { status?: number }).status, 1, `pgrep -f ${path} failed`);
  }
  assert.equal(leftovers, '', `processes left running: ${leftovers}`);
}
