// Training slots of fedclr simulate: the parent's FIFO semaphore, the union of the agents'
// training intervals, and the agent's IPC gate (over a fake channel).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ipcTrainingGate, isSlotMessage, SlotSemaphore, unionLength, type SlotChannel, type SlotIpcMessage } from '../src/slots.js';

describe('SlotSemaphore', () => {
  it('grants in FIFO order and never to more than its capacity', () => {
    const slots = new SlotSemaphore(2);
    const granted: string[] = [];
    const ask = (owner: string, id: number): void => slots.acquire(owner, id, () => granted.push(`${owner}#${id}`));
    ask('a', 1);
    ask('b', 1);
    ask('c', 1);
    ask('a', 2);
    ask('d', 1);
    assert.deepEqual(granted, ['a#1', 'b#1']);
    assert.equal(slots.held, 2);
    assert.equal(slots.waiting, 3);
    assert.equal(slots.release('b', 1), 'released');
    assert.deepEqual(granted, ['a#1', 'b#1', 'c#1']);
    assert.equal(slots.release('a', 1), 'released');
    assert.deepEqual(granted, ['a#1', 'b#1', 'c#1', 'a#2']);
    assert.equal(slots.release('c', 1), 'released');
    assert.equal(slots.release('a', 2), 'released');
    assert.deepEqual(granted, ['a#1', 'b#1', 'c#1', 'a#2', 'd#1']);
    assert.equal(slots.release('d', 1), 'released');
    assert.equal(slots.held, 0);
    assert.equal(slots.granted, 5);
    assert.equal(slots.maxHeld, 2);
    // A slot is released once; an unknown one is reported as such.
    assert.equal(slots.release('d', 1), 'unknown');
  });

  it('holds at most capacity slots under random acquire/release, and grants every request once', () => {
    let seed = 12345;
    const rand = (): number => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const slots = new SlotSemaphore(3);
    const holding: string[] = [];
    const grants = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      if (rand() < 0.6) {
        const key = `o${i % 7}#${i}`;
        slots.acquire(`o${i % 7}`, i, () => {
          holding.push(key);
          grants.set(key, (grants.get(key) ?? 0) + 1);
        });
      } else if (holding.length > 0) {
        const [owner, id] = (holding.splice(Math.floor(rand() * holding.length), 1)[0] as string).split('#') as [string, string];
        assert.equal(slots.release(owner, Number(id)), 'released');
      }
      assert.ok(slots.held <= 3 && slots.held === holding.length, `step ${i}: ${slots.held} held`);
      assert.ok(slots.waiting === 0 || slots.held === 3, 'no request waits while a slot is free');
    }
    assert.ok([...grants.values()].every((n) => n === 1));
    assert.equal(slots.maxHeld, 3);
  });

  it('a waiting request can be withdrawn; a repeated one is ignored', () => {
    const slots = new SlotSemaphore(1);
    const granted: string[] = [];
    slots.acquire('a', 1, () => granted.push('a'));
    slots.acquire('b', 1, () => granted.push('b'));
    slots.acquire('b', 1, () => granted.push('b again'));
    slots.acquire('c', 1, () => granted.push('c'));
    assert.equal(slots.waiting, 2);
    assert.equal(slots.release('b', 1), 'withdrawn');
    assert.equal(slots.release('a', 1), 'released');
    assert.deepEqual(granted, ['a', 'c']);
  });

  it('frees the slots and requests of an owner that went away (a dead agent process)', () => {
    const slots = new SlotSemaphore(2);
    const granted: string[] = [];
    for (const [owner, id] of [['a', 1], ['b', 1], ['a', 2], ['c', 1], ['d', 1]] as const) slots.acquire(owner, id, () => granted.push(`${owner}#${id}`));
    assert.deepEqual(granted, ['a#1', 'b#1']);
    // a dies holding a#1 with a#2 queued: its slot goes to the next request that is not a's
    assert.equal(slots.drop('a'), 1);
    assert.deepEqual(granted, ['a#1', 'b#1', 'c#1']);
    assert.equal(slots.held, 2);
    assert.equal(slots.waiting, 1);
    assert.equal(slots.release('a', 1), 'unknown');
    assert.equal(slots.drop('a'), 0);
    assert.equal(slots.freedOnDrop, 1);
    slots.release('b', 1);
    assert.deepEqual(granted, ['a#1', 'b#1', 'c#1', 'd#1']);
  });

  it('refuses a capacity below 1', () => {
    assert.throws(() => new SlotSemaphore(0), RangeError);
    assert.throws(() => new SlotSemaphore(1.5), RangeError);
  });
});

describe('unionLength', () => {
  it('measures the union of intervals clipped to a window', () => {
    assert.equal(unionLength([], 0, 100), 0);
    assert.equal(unionLength([[10, 20]], 0, 100), 10);
    // overlapping, nested, touching and disjoint, in any order
    assert.equal(unionLength([[30, 40], [10, 20], [15, 25], [12, 14], [25, 28], [50, 60]], 0, 100), 15 + 3 + 10 + 10);
    // clipped to [from, to]; intervals outside count nothing, empty ones nothing
    assert.equal(unionLength([[-10, 5], [95, 120], [200, 300], [-50, -40], [50, 50]], 0, 100), 5 + 5);
    assert.equal(unionLength([[0, 100], [20, 30]], 40, 60), 20);
  });

  it('two slots busy in waves: the union is the time at least one trained', () => {
    // slot 1: 0-40, 45-80; slot 2: 5-50, 55-70; idle 80-100
    assert.equal(unionLength([[0, 40], [5, 50], [45, 80], [55, 70]], 0, 100), 80);
  });
});

describe('ipcTrainingGate', () => {
  function fakeChannel(): SlotChannel & { sent: SlotIpcMessage[]; listeners: Set<(m: unknown) => void>; deliver(m: unknown): void } {
    const listeners = new Set<(m: unknown) => void>();
    const sent: SlotIpcMessage[] = [];
    return {
      sent,
      listeners,
      send: (m) => sent.push(m),
      on: (_event, l) => listeners.add(l),
      off: (_event, l) => listeners.delete(l),
      deliver: (m) => {
        for (const l of [...listeners]) l(m);
      },
    };
  }

  it('asks the parent for a slot, waits for the grant, and releases with the loop time', async () => {
    const channel = fakeChannel();
    const gate = ipcTrainingGate(channel);
    let granted = false;
    const pending = gate.acquire(new AbortController().signal).then((slot) => {
      granted = true;
      return slot;
    });
    assert.deepEqual(channel.sent, [{ type: 'slot-acquire', id: 1 }]);
    assert.equal(channel.listeners.size, 1);
    channel.deliver({ type: 'slot-granted', id: 2 }); // someone else's id: ignored
    channel.deliver({ type: 'listening' }); // not a slot message
    await new Promise((r) => setImmediate(r));
    assert.equal(granted, false);
    channel.deliver({ type: 'slot-granted', id: 1 });
    const slot = await pending;
    assert.equal(channel.listeners.size, 0, 'an idle gate does not listen (nor keep the process alive)');
    const before = Date.now();
    slot.release({ trainMs: 1234.4 });
    slot.release({ trainMs: 99 }); // once only
    assert.equal(channel.sent.length, 2);
    const release = channel.sent[1] as Extract<SlotIpcMessage, { type: 'slot-release' }>;
    assert.equal(release.type, 'slot-release');
    assert.equal(release.id, 1);
    assert.equal(release.trainMs, 1234);
    assert.ok(release.at >= before && release.at <= Date.now());
    assert.ok(isSlotMessage(release));
  });

  it('an abort while waiting rejects and withdraws the request', async () => {
    const channel = fakeChannel();
    const gate = ipcTrainingGate(channel);
    const controller = new AbortController();
    const pending = gate.acquire(controller.signal);
    controller.abort(new Error('deadline'));
    await assert.rejects(pending, /deadline/);
    assert.deepEqual(channel.sent.map((m) => [m.type, m.id]), [['slot-acquire', 1], ['slot-release', 1]]);
    assert.equal(channel.listeners.size, 0);
    // a grant that crosses the withdrawal is ignored; an already aborted signal sends nothing
    channel.deliver({ type: 'slot-granted', id: 1 });
    await assert.rejects(gate.acquire(controller.signal), /deadline/);
    assert.equal(channel.sent.length, 2);
  });
});

describe('isSlotMessage', () => {
  it('accepts the three slot messages and nothing else', () => {
    assert.ok(isSlotMessage({ type: 'slot-acquire', id: 3 }));
    assert.ok(isSlotMessage({ type: 'slot-granted', id: 3 }));
    assert.ok(isSlotMessage({ type: 'slot-release', id: 3, trainMs: 0, at: 1 }));
    for (const m of [null, 'slot-acquire', { type: 'slot-acquire' }, { type: 'slot-acquire', id: 1.5 }, { type: 'slot-release', id: 1, trainMs: -1, at: 1 }, { type: 'slot-release', id: 1, trainMs: 1 }, { type: 'round-started', id: 1 }]) {
      assert.equal(isSlotMessage(m), false, JSON.stringify(m));
    }
  });
});
