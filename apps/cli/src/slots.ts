// Training slots for `fedclr simulate`: at most S of the simulated agents train at the same time,
// as in a real federation where each agent has its own machine (N agents training at once on a
// few cores waste a third of the machine on oversubscription).
//
// The parent (simulate) holds a FIFO semaphore; each agent process asks it for a slot over the
// fork IPC channel before each local training and gives it back afterwards:
//   agent  -> parent  {type: 'slot-acquire', id}
//   parent -> agent   {type: 'slot-granted', id}
//   agent  -> parent  {type: 'slot-release', id, trainMs, at}   (also withdraws a request still waiting)
// An agent process that exits gives up its slots and requests. The parent also records, per
// release, the interval its training loop ran ([at - trainMs, at], `at` being the release time by
// the agent's clock, the same machine's, so that the parent's own event-loop lag does not shift
// it): a round's training time is the length of the union of those intervals within the round.
import type { TrainingGate, TrainingSlot } from '@fedclr/agent';

export type SlotIpcMessage =
  | { type: 'slot-acquire'; id: number }
  | { type: 'slot-granted'; id: number }
  | { type: 'slot-release'; id: number; trainMs: number; at: number };

export function isSlotMessage(m: unknown): m is SlotIpcMessage {
  if (typeof m !== 'object' || m === null) return false;
  const { type, id, trainMs, at } = m as Record<string, unknown>;
  if (typeof id !== 'number' || !Number.isSafeInteger(id)) return false;
  if (type === 'slot-acquire' || type === 'slot-granted') return true;
  const time = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  return type === 'slot-release' && time(trainMs) && time(at);
}

interface SlotRequest {
  readonly owner: string;
  readonly id: number;
  readonly grant: () => void;
}

const keyOf = (owner: string, id: number): string => `${owner}\0${id}`;

/** A FIFO counting semaphore over requests (owner, id): at most `capacity` are held at a time. */
export class SlotSemaphore {
  private readonly holders = new Map<string, SlotRequest>();
  private readonly queue: SlotRequest[] = [];
  /** Slots granted so far. */
  granted = 0;
  /** Most slots held at the same time so far. */
  maxHeld = 0;
  /** Slots freed because their holder went away (drop()). */
  freedOnDrop = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`slot capacity must be an integer >= 1, got ${capacity}`);
  }

  get held(): number {
    return this.holders.size;
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** Queues a request; `grant` is called (at once if a slot is free) when it gets its slot. A repeated request is ignored. */
  acquire(owner: string, id: number, grant: () => void): void {
    const key = keyOf(owner, id);
    if (this.holders.has(key) || this.queue.some((r) => r.owner === owner && r.id === id)) return;
    this.queue.push({ owner, id, grant });
    this.pump();
  }

  /** Frees a held slot ('released') or withdraws a waiting request ('withdrawn'). */
  release(owner: string, id: number): 'released' | 'withdrawn' | 'unknown' {
    if (this.holders.delete(keyOf(owner, id))) {
      this.pump();
      return 'released';
    }
    const i = this.queue.findIndex((r) => r.owner === owner && r.id === id);
    if (i < 0) return 'unknown';
    this.queue.splice(i, 1);
    return 'withdrawn';
  }

  /** Frees every slot and request of an owner that went away (a dead agent process); returns the slots freed. */
  drop(owner: string): number {
    let freed = 0;
    for (const [key, r] of this.holders) {
      if (r.owner === owner) {
        this.holders.delete(key);
        freed++;
      }
    }
    for (let i = this.queue.length - 1; i >= 0; i--) if ((this.queue[i] as SlotRequest).owner === owner) this.queue.splice(i, 1);
    this.freedOnDrop += freed;
    if (freed > 0) this.pump();
    return freed;
  }

  private pump(): void {
    while (this.holders.size < this.capacity) {
      const next = this.queue.shift();
      if (next === undefined) return;
      this.holders.set(keyOf(next.owner, next.id), next);
      this.granted++;
      this.maxHeld = Math.max(this.maxHeld, this.holders.size);
      next.grant();
    }
  }
}

/** Length of the union of the intervals [start, end], clipped to [from, to]. */
export function unionLength(intervals: readonly (readonly [number, number])[], from: number, to: number): number {
  const clipped = intervals
    .map(([a, b]) => [Math.max(a, from), Math.min(b, to)] as const)
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  let total = 0;
  let run: [number, number] | undefined;
  for (const [a, b] of clipped) {
    if (run === undefined || a > run[1]) {
      if (run !== undefined) total += run[1] - run[0];
      run = [a, b];
    } else {
      run[1] = Math.max(run[1], b);
    }
  }
  return run === undefined ? total : total + (run[1] - run[0]);
}

/** The agent's end of the IPC channel to its parent. */
export interface SlotChannel {
  send(message: SlotIpcMessage): void;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

/** This process's IPC channel to its parent, or undefined if it was not forked with one. */
export function parentChannel(): SlotChannel | undefined {
  if (typeof process.send !== 'function') return undefined;
  return {
    // A parent that is gone gets nothing; the agent stops on 'disconnect' anyway.
    send: (message) => {
      if (process.connected) process.send?.(message, undefined, undefined, () => undefined);
    },
    on: (event, listener) => process.on(event, listener),
    off: (event, listener) => process.off(event, listener),
  };
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('aborted');
}

/**
 * A TrainingGate that asks the parent process for each slot. It listens on the channel only
 * while a request waits, so an idle gate does not keep the process alive.
 */
export function ipcTrainingGate(channel: SlotChannel): TrainingGate {
  let nextId = 0;
  const waiting = new Map<number, () => void>();
  const onMessage = (m: unknown): void => {
    if (isSlotMessage(m) && m.type === 'slot-granted') waiting.get(m.id)?.();
  };
  const unwait = (id: number): void => {
    if (waiting.delete(id) && waiting.size === 0) channel.off('message', onMessage);
  };
  return {
    acquire(signal) {
      return new Promise<TrainingSlot>((resolve, reject) => {
        if (signal.aborted) {
          reject(abortReason(signal));
          return;
        }
        const id = ++nextId;
        let released = false;
        const slot: TrainingSlot = {
          release(report) {
            if (released) return;
            released = true;
            channel.send({ type: 'slot-release', id, trainMs: Math.max(0, Math.round(report.trainMs)), at: Date.now() });
          },
        };
        const onAbort = (): void => {
          unwait(id);
          slot.release({ trainMs: 0 }); // withdraws the request (or frees a slot granted meanwhile)
          reject(abortReason(signal));
        };
        if (waiting.size === 0) channel.on('message', onMessage);
        waiting.set(id, () => {
          unwait(id);
          signal.removeEventListener('abort', onAbort);
          resolve(slot);
        });
        signal.addEventListener('abort', onAbort, { once: true });
        channel.send({ type: 'slot-acquire', id });
      });
    },
  };
}
