// MoCo's state in a trainer checkpoint: the key encoder's weights and the queue, so that a
// resumed run continues with the same keys and negatives (not a key encoder reset to the online
// one and an empty queue).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidTrainingConfigError } from '../errors.js';
import type { MocoState } from './moco.js';

const INFO_FILE = 'moco.json';
const KEY_FILE = 'moco-key.bin';
const QUEUE_FILE = 'moco-queue.bin';

interface MocoInfo {
  version: 1;
  queueSize: number;
  dim: number;
  next: number;
  size: number;
}

function floats(bytes: Buffer): Float32Array {
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

/** Writes the state next to the trainer's checkpoint files in `dir` (a state never bound to an engine writes nothing). */
export async function saveMocoCheckpoint(dir: string, state: MocoState): Promise<void> {
  const { key, queue } = state;
  if (key === undefined || queue === undefined) return;
  const { next, size, data } = queue.snapshot();
  const info: MocoInfo = { version: 1, queueSize: state.queueSize, dim: queue.dim, next, size };
  await writeFile(join(dir, KEY_FILE), new Uint8Array(key.buffer, key.byteOffset, key.byteLength));
  await writeFile(join(dir, QUEUE_FILE), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  await writeFile(join(dir, INFO_FILE), JSON.stringify(info));
}

/** Restores the state saved in `dir`; a checkpoint of a run that was not MoCo leaves the state fresh. */
export async function loadMocoCheckpoint(dir: string, state: MocoState): Promise<void> {
  let text: string;
  try {
    text = await readFile(join(dir, INFO_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // not a MoCo checkpoint: MoCo starts fresh from the resumed weights
    throw err;
  }
  const info = JSON.parse(text) as MocoInfo;
  if (info.version !== 1 || info.queueSize !== state.queueSize) {
    throw new InvalidTrainingConfigError('resume', `the checkpoint in ${dir} has a MoCo queue of ${info.queueSize}; this run asks for ${state.queueSize}`);
  }
  const [key, queue] = await Promise.all([readFile(join(dir, KEY_FILE)), readFile(join(dir, QUEUE_FILE))]);
  state.restore(floats(key), info.dim, { next: info.next, size: info.size, data: floats(queue) });
}
