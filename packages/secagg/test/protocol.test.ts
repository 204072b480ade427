// End-to-end runs of the four stages, in process: exact sums with dropouts at every stage,
// clean aborts beyond the tolerance, masked data looks uniform, the coordinator never holds
// an individual unmasked vector.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeFixedPointSum,
  preQuantized,
  runInProcess,
  type AggregationResult,
  type DropPoint,
  type MaskedInputMessage,
  type SecAggMessage,
} from '../src/index.js';
import { CHI2_255_P001, chiSquareBytes, makeFederation, plainSum, type Federation } from './helpers.js';

function expectDone(status: Awaited<ReturnType<typeof runInProcess>>['status']): AggregationResult {
  if (status.kind !== 'done') {
    assert.fail(`expected done, got ${status.kind}: ${status.kind === 'aborted' ? status.abort.message : ''}`);
  }
  return status.result;
}

function checkAgainstPlaintext(fed: Federation, result: AggregationResult): void {
  const survivors = result.survivors;
  const expected = plainSum(
    survivors.map((id) => fed.input(id)),
    fed.encoding.length,
  );
  assert.deepEqual(result.sum, expected, 'unmasked sum is bit-exact');
  // Decoded float sum within the quantisation bound of the exact (clipped, weighted) sum.
  const exact = new Float64Array(fed.encoding.dimension);
  let weight = 0;
  for (const id of survivors) {
    const u = fed.updates.get(id);
    assert.ok(u);
    const z = preQuantized(u.values, u.weight, fed.encoding);
    for (let i = 0; i < exact.length; i++) exact[i] = (exact[i] as number) + (z[i] as number);
    weight += u.weight;
  }
  const decoded = result.decoded;
  assert.equal(decoded.count, survivors.length);
  let worst = 0;
  for (let i = 0; i < exact.length; i++) worst = Math.max(worst, Math.abs((decoded.values[i] as number) - (exact[i] as number)));
  assert.ok(worst < decoded.valueErrorBound, `max error ${worst} within bound ${decoded.valueErrorBound}`);
  assert.ok(Math.abs(decoded.weight - weight) < decoded.weightErrorBound || decoded.weight === weight);
}

async function run(fed: Federation, dropBefore: Partial<Record<DropPoint, readonly string[]>> = {}, inputTiming: 'early' | 'late' = 'early') {
  return runInProcess({ server: fed.server, agents: fed.agents, input: (id) => fed.input(id), dropBefore, inputTiming });
}

test('no dropouts: complete graph, exact sum', async () => {
  const fed = makeFederation({ n: 8, dropoutFraction: 0.25, corruptFraction: 0.125 });
  assert.equal(fed.server.params.graph, 'complete');
  const outcome = await run(fed);
  const result = expectDone(outcome.status);
  assert.deepEqual(result.survivors, fed.ids);
  checkAgainstPlaintext(fed, result);
  for (const agent of fed.agents.values()) assert.equal(agent.state, 'done');
});

test('input provided after the shares arrive gives the same protocol result', async () => {
  const fed = makeFederation({ n: 6, dropoutFraction: 0.2, corruptFraction: 0, label: 'late' });
  const result = expectDone((await run(fed, {}, 'late')).status);
  checkAgainstPlaintext(fed, result);
});

for (const point of ['advertise', 'share-keys', 'masked-input', 'unmask-response'] as const) {
  test(`dropouts before ${point}, up to the tolerated number`, async () => {
    const fed = makeFederation({ n: 10, dropoutFraction: 0.2, corruptFraction: 0.1, label: `drop-${point}` });
    const D = fed.server.params.maxDropouts;
    assert.equal(D, 2);
    const dropped = fed.ids.slice(3, 3 + D);
    const outcome = await run(fed, { [point]: dropped });
    const result = expectDone(outcome.status);
    if (point === 'unmask-response') {
      // Their masked inputs are in: they survive, they just do not help unmask.
      assert.deepEqual(result.survivors, fed.ids);
      assert.deepEqual(result.dropouts.unmask, dropped);
    } else {
      assert.deepEqual(result.survivors, fed.ids.filter((id) => !dropped.includes(id)));
    }
    checkAgainstPlaintext(fed, result);
  });
}

test('dropouts spread over every stage at once (within the tolerance)', async () => {
  const fed = makeFederation({ n: 12, dropoutFraction: 0.34, corruptFraction: 0, label: 'mixed' });
  const D = fed.server.params.maxDropouts;
  assert.equal(D, 4);
  const outcome = await run(fed, {
    advertise: [fed.ids[0] as string],
    'share-keys': [fed.ids[4] as string],
    'masked-input': [fed.ids[7] as string],
    'unmask-response': [fed.ids[11] as string],
  });
  const result = expectDone(outcome.status);
  assert.deepEqual(result.dropouts.advertise, [fed.ids[0]]);
  assert.deepEqual(result.dropouts.shareKeys, [fed.ids[4]]);
  assert.deepEqual(result.dropouts.maskedInput, [fed.ids[7]]);
  assert.deepEqual(result.dropouts.unmask, [fed.ids[11]]);
  checkAgainstPlaintext(fed, result);
});

test('sparse Harary graph (n=24): exact sum with dropouts after masked input', async () => {
  const fed = makeFederation({ n: 24, dropoutFraction: 0.1, corruptFraction: 0.05, securityBits: 8, label: 'sparse' });
  const params = fed.server.params;
  assert.equal(params.graph, 'harary');
  assert.ok(params.neighbours < 23);
  const dropped = fed.ids.slice(0, params.maxDropouts);
  const result = expectDone((await run(fed, { 'masked-input': dropped })).status);
  checkAgainstPlaintext(fed, result);
});

test('every PRG choice unmasks exactly', async () => {
  for (const prg of ['aes-256-ctr', 'chacha20', 'xsalsa20'] as const) {
    const fed = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, prg, label: `prg-${prg}` });
    const result = expectDone((await run(fed, { 'masked-input': [fed.ids[2] as string] })).status);
    checkAgainstPlaintext(fed, result);
  }
});

for (const point of ['advertise', 'share-keys', 'masked-input', 'unmask-response'] as const) {
  test(`too many dropouts before ${point}: clean abort with a reason`, async () => {
    const fed = makeFederation({ n: 10, dropoutFraction: 0.2, corruptFraction: 0.1, label: `abort-${point}` });
    const t = fed.server.params.threshold;
    // Leave t - 1 agents alive after this stage: every neighbourhood falls below t.
    const dropped = fed.ids.slice(t - 1);
    const outcome = await run(fed, { [point]: dropped });
    const status = outcome.status;
    assert.equal(status.kind, 'aborted');
    if (status.kind !== 'aborted') return;
    assert.equal(status.abort.code, 'FEDCLR_SECAGG_ABORTED');
    assert.ok(['too-few-survivors', 'insufficient-neighbours'].includes(status.abort.reason));
    assert.equal(status.abort.threshold, t);
    assert.ok(status.abort.available < t);
    assert.match(status.abort.message, /threshold/);
    const expectedStage = { advertise: 'advertise', 'share-keys': 'share-keys', 'masked-input': 'masked-input', 'unmask-response': 'unmask' }[point];
    assert.equal(status.abort.stage, expectedStage);
    assert.equal(fed.server.result, undefined);
    // After an abort the coordinator refuses further work.
    await assert.rejects(fed.server.stageDeadline(), { code: 'FEDCLR_SECAGG_SESSION_ENDED' });
  });
}

test('masked vectors are indistinguishable from uniform (chi-square, p = 0.001)', async () => {
  // A very non-uniform input: all zeros but the weight.
  const fed = makeFederation({ n: 4, dimension: 16384, dropoutFraction: 0, corruptFraction: 0, label: 'chi' });
  const masked: Uint32Array[] = [];
  await runInProcess({
    server: fed.server,
    agents: fed.agents,
    input: () => {
      const v = new Uint32Array(fed.encoding.length);
      v[fed.encoding.dimension] = 7;
      return v;
    },
    onSend: (_from, message: SecAggMessage) => {
      if (message.stage === 'masked-input') masked.push((message as MaskedInputMessage).payload.masked);
    },
  });
  assert.equal(masked.length, 4);
  for (const vector of masked) {
    const bytes = new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength);
    const chi = chiSquareBytes(bytes);
    assert.ok(chi < CHI2_255_P001, `byte chi-square ${chi} < ${CHI2_255_P001}`);
    // Top byte of each word (the values' sign/magnitude byte) is uniform too.
    const top = new Uint8Array(vector.length);
    for (let i = 0; i < vector.length; i++) top[i] = (vector[i] as number) >>> 24;
    const chiTop = chiSquareBytes(top);
    assert.ok(chiTop < CHI2_255_P001, `top-byte chi-square ${chiTop} < ${CHI2_255_P001}`);
  }
});

function typedArraysIn(root: unknown): Uint32Array[] {
  const found: Uint32Array[] = [];
  const seen = new Set<unknown>();
  const walk = (value: unknown, depth: number): void => {
    if (value === null || typeof value !== 'object' || seen.has(value) || depth > 12) return;
    seen.add(value);
    if (value instanceof Uint32Array) {
      found.push(value);
      return;
    }
    if (ArrayBuffer.isView(value)) return;
    const entries: unknown[] =
      value instanceof Map ? [...value.keys(), ...value.values()] : value instanceof Set ? [...value] : Object.values(value);
    for (const v of entries) walk(v, depth + 1);
  };
  walk(root, 0);
  return found;
}

test('the coordinator stores only masked data and can produce only the sum', async () => {
  const fed = makeFederation({ n: 6, dropoutFraction: 0.2, corruptFraction: 0, label: 'privacy' });
  const inputs = fed.ids.map((id) => fed.input(id));
  const equalsAnInput = (v: Uint32Array): boolean => inputs.some((x) => x.length === v.length && x.every((w, i) => w === v[i]));
  let checkedMidway = false;
  await runInProcess({
    server: fed.server,
    agents: fed.agents,
    input: (id) => fed.input(id),
    dropBefore: { 'masked-input': [fed.ids[1] as string] },
    onSend: (_from, message) => {
      if (message.stage === 'unmask') {
        // All masked inputs are in; unmasking has not started. Walk everything the server holds.
        const held = typedArraysIn(fed.server);
        assert.ok(held.length >= 1);
        for (const v of held) {
          assert.ok(!equalsAnInput(v), 'no stored vector equals an agent input');
          if (v.length === fed.encoding.length) {
            const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
            assert.ok(chiSquareBytes(bytes) < CHI2_255_P001 * 4, 'stored vector looks masked');
          }
        }
        // Exactly one vector-sized array: the running masked sum (no per-agent vectors).
        assert.equal(held.filter((v) => v.length === fed.encoding.length).length, 1);
        checkedMidway = true;
      }
    },
  });
  assert.ok(checkedMidway);
  const result = fed.server.result;
  assert.ok(result);
  const held = typedArraysIn(fed.server).filter((v) => v.length === fed.encoding.length);
  assert.equal(held.length, 1, 'after unmasking, the one vector is the survivors sum');
  assert.deepEqual(held[0], plainSum(result.survivors.map((id) => fed.input(id)), fed.encoding.length));
  assert.equal(result.survivors.length, 5);
  for (const x of inputs) assert.notDeepEqual(held[0], x);
});

test('decodeFixedPointSum of the result matches the result decoding', async () => {
  const fed = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'decode' });
  const result = expectDone((await run(fed)).status);
  const again = decodeFixedPointSum(result.sum, fed.encoding, result.survivors.length);
  assert.deepEqual(again.values, result.decoded.values);
  assert.equal(again.weight, result.decoded.weight);
});

test('one agent losing too many neighbours aborts with insufficient-neighbours naming it', async () => {
  const fed = makeFederation({ n: 24, dropoutFraction: 0.1, corruptFraction: 0.05, securityBits: 8, label: 'neighbourhood' });
  const { neighbours: k, threshold: t } = fed.server.params;
  assert.equal(fed.server.params.graph, 'harary');
  const victim = fed.ids[5] as string;
  // Drop k - t + 1 of its neighbours after sharing: the overall count stays far above t.
  const dropped = fed.server.graph.neighbours(victim).slice(0, k - t + 1);
  assert.ok(fed.ids.length - dropped.length >= t);
  const status = (await run(fed, { 'masked-input': dropped })).status;
  assert.equal(status.kind, 'aborted');
  if (status.kind !== 'aborted') return;
  assert.equal(status.abort.reason, 'insufficient-neighbours');
  assert.equal(status.abort.stage, 'masked-input');
  assert.ok(status.abort.agent !== undefined);
  assert.equal(status.abort.available, t - 1);
});

test('seeded runs are reproducible: identical masked inputs and sums', async () => {
  const capture = async (): Promise<Uint32Array[]> => {
    const fed = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'repro' });
    const masked: Uint32Array[] = [];
    const outcome = await runInProcess({
      server: fed.server,
      agents: fed.agents,
      input: (id) => fed.input(id),
      onSend: (_from, message: SecAggMessage) => {
        if (message.stage === 'masked-input') masked.push((message as MaskedInputMessage).payload.masked);
      },
    });
    return [...masked, expectDone(outcome.status).sum];
  };
  assert.deepEqual(await capture(), await capture());
});

test('agents refuse input before setup and a second input', async () => {
  const fed = makeFederation({ n: 4, dropoutFraction: 0, corruptFraction: 0, label: 'input-order' });
  const agent = fed.agents.get(fed.ids[0] as string);
  assert.ok(agent);
  await assert.rejects(agent.setInput(new Uint32Array(fed.encoding.length)), { code: 'FEDCLR_SECAGG_UNEXPECTED_STAGE' });
  const setup = fed.server.start()[0];
  assert.ok(setup);
  await agent.receive(setup);
  await assert.rejects(agent.setInput(new Uint32Array(3)), { code: 'FEDCLR_SECAGG_MALFORMED' });
  await agent.setInput(fed.input(agent.id));
  await assert.rejects(agent.setInput(fed.input(agent.id)), { code: 'FEDCLR_SECAGG_UNEXPECTED_STAGE' });
});
