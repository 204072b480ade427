// End-to-end runs of the protocol in process (advertise, share-keys, share-check, masked-input,
// consistency, unmask): exact sums with dropouts at every stage, clean aborts beyond the
// tolerance, masked data looks uniform, the coordinator never holds an individual unmasked
// vector.
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
  type ServerStatus,
} from '../src/index.js';
import { CHI2_255_P001, chiSquareBytes, makeFederation, plainSum, throwsWithCode, type Federation } from './helpers.js';

function expectDone(status: ServerStatus): AggregationResult {
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

function run(fed: Federation, dropBefore: Partial<Record<DropPoint, readonly string[]>> = {}, inputTiming: 'early' | 'late' = 'early') {
  return runInProcess({ server: fed.server, agents: fed.agents, input: (id) => fed.input(id), dropBefore, inputTiming });
}

const ALL_DROP_POINTS = ['advertise', 'share-keys', 'share-check', 'masked-input', 'consistency', 'unmask-response'] as const;

test('no dropouts: complete graph, exact sum', () => {
  const fed = makeFederation({ n: 8, dropoutFraction: 0.25, corruptFraction: 0.125 });
  assert.equal(fed.server.params.graph, 'complete');
  const outcome = run(fed);
  const result = expectDone(outcome.status);
  assert.deepEqual(result.survivors, fed.ids);
  assert.deepEqual(result.misbehaviour, []);
  assert.equal(outcome.failed.size, 0);
  assert.equal(outcome.dropped.size, 0);
  for (const list of Object.values(result.dropouts)) assert.deepEqual(list, []);
  checkAgainstPlaintext(fed, result);
  for (const agent of fed.agents.values()) assert.equal(agent.state, 'done');
});

test('sparse Harary graph (n=24) without dropouts: exact sum', () => {
  const fed = makeFederation({ n: 24, label: 'sparse-clean' });
  assert.equal(fed.server.params.graph, 'harary');
  const result = expectDone(run(fed).status);
  assert.deepEqual(result.survivors, fed.ids);
  checkAgainstPlaintext(fed, result);
});

test('input provided after the participants arrive gives the same protocol result', () => {
  const fed = makeFederation({ n: 6, dropoutFraction: 0.2, corruptFraction: 0, label: 'late' });
  const result = expectDone(run(fed, {}, 'late').status);
  checkAgainstPlaintext(fed, result);
});

for (const point of ALL_DROP_POINTS) {
  test(`dropouts before ${point}, up to the tolerated number`, () => {
    const fed = makeFederation({ n: 10, dropoutFraction: 0.2, corruptFraction: 0.1, label: `drop-${point}` });
    const D = fed.server.params.maxDropouts;
    assert.equal(D, 2);
    const dropped = fed.ids.slice(3, 3 + D);
    const outcome = run(fed, { [point]: dropped });
    const result = expectDone(outcome.status);
    assert.deepEqual([...outcome.dropped.keys()].sort(), dropped);
    const others = fed.ids.filter((id) => !dropped.includes(id));
    const field = {
      advertise: 'advertise',
      'share-keys': 'shareKeys',
      'share-check': 'shareCheck',
      'masked-input': 'maskedInput',
      consistency: 'consistency',
      'unmask-response': 'unmask',
    } as const;
    for (const [p, name] of Object.entries(field)) {
      assert.deepEqual(result.dropouts[name], p === point ? dropped : [], `dropouts.${name}`);
    }
    if (point === 'consistency' || point === 'unmask-response') {
      // Their masked inputs are in: they survive, they just do not help unmask.
      assert.deepEqual(result.survivors, fed.ids);
    } else {
      assert.deepEqual(result.survivors, others);
    }
    checkAgainstPlaintext(fed, result);
    for (const id of others) assert.equal(fed.agents.get(id)?.state, 'done');
  });
}

test('dropouts spread over every stage at once (within the tolerance)', () => {
  const fed = makeFederation({ n: 15, dropoutFraction: 0.4, corruptFraction: 0, label: 'mixed' });
  const D = fed.server.params.maxDropouts;
  assert.equal(D, 6);
  const at = (i: number): string[] => [fed.ids[i] as string];
  const outcome = run(fed, {
    advertise: at(0),
    'share-keys': at(4),
    'share-check': at(6),
    'masked-input': at(7),
    consistency: at(9),
    'unmask-response': at(11),
  });
  const result = expectDone(outcome.status);
  assert.deepEqual(result.dropouts.advertise, at(0));
  assert.deepEqual(result.dropouts.shareKeys, at(4));
  assert.deepEqual(result.dropouts.shareCheck, at(6));
  assert.deepEqual(result.dropouts.maskedInput, at(7));
  assert.deepEqual(result.dropouts.consistency, at(9));
  assert.deepEqual(result.dropouts.unmask, at(11));
  assert.deepEqual(result.survivors, fed.ids.filter((_, i) => ![0, 4, 6, 7].includes(i)));
  checkAgainstPlaintext(fed, result);
});

test('sparse Harary graph (n=24): exact sum with dropouts after masked input', () => {
  const fed = makeFederation({ n: 24, dropoutFraction: 0.1, corruptFraction: 0.05, securityBits: 8, label: 'sparse' });
  const params = fed.server.params;
  assert.equal(params.graph, 'harary');
  assert.ok(params.neighbours < 23);
  const dropped = fed.ids.slice(0, params.maxDropouts);
  const result = expectDone(run(fed, { 'masked-input': dropped }).status);
  checkAgainstPlaintext(fed, result);
});

test('sparse Harary graph (n=24): exact sum with dropouts at share-check and consistency', () => {
  const fed = makeFederation({ n: 24, dropoutFraction: 0.1, corruptFraction: 0.05, securityBits: 8, label: 'sparse-new-stages' });
  const params = fed.server.params;
  assert.equal(params.graph, 'harary');
  assert.equal(params.maxDropouts, 2);
  const result = expectDone(run(fed, { 'share-check': [fed.ids[2] as string], consistency: [fed.ids[13] as string] }).status);
  assert.deepEqual(result.dropouts.shareCheck, [fed.ids[2]]);
  assert.deepEqual(result.dropouts.consistency, [fed.ids[13]]);
  assert.equal(result.survivors.length, 23);
  checkAgainstPlaintext(fed, result);
});

test('every PRG choice unmasks exactly', () => {
  for (const prg of ['aes-256-ctr', 'chacha20', 'xsalsa20'] as const) {
    const fed = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, prg, label: `prg-${prg}` });
    const result = expectDone(run(fed, { 'masked-input': [fed.ids[2] as string] }).status);
    checkAgainstPlaintext(fed, result);
  }
});

for (const point of ALL_DROP_POINTS) {
  test(`too many dropouts before ${point}: clean abort with a reason`, () => {
    const fed = makeFederation({ n: 10, dropoutFraction: 0.2, corruptFraction: 0.1, label: `abort-${point}` });
    const t = fed.server.params.threshold;
    // Leave t - 1 agents alive after this stage: every neighbourhood falls below t.
    const dropped = fed.ids.slice(t - 1);
    const outcome = run(fed, { [point]: dropped });
    const status = outcome.status;
    assert.equal(status.kind, 'aborted');
    if (status.kind !== 'aborted') return;
    assert.equal(status.abort.code, 'FEDCLR_SECAGG_ABORTED');
    assert.ok(['too-few-survivors', 'insufficient-neighbours'].includes(status.abort.reason));
    assert.equal(status.abort.threshold, t);
    assert.ok(status.abort.available < t);
    assert.match(status.abort.message, /threshold/);
    const expectedStage = {
      advertise: 'advertise',
      'share-keys': 'share-keys',
      'share-check': 'share-check',
      'masked-input': 'masked-input',
      consistency: 'consistency',
      'unmask-response': 'unmask',
    }[point];
    assert.equal(status.abort.stage, expectedStage);
    assert.equal(fed.server.result, undefined);
    // No agent revealed a share when the abort came before the unmask stage.
    if (point !== 'unmask-response') {
      for (const id of fed.ids.slice(0, t - 1)) assert.notEqual(fed.agents.get(id)?.state, 'done');
    }
    // After an abort the coordinator refuses further work.
    throwsWithCode(() => fed.server.stageDeadline(), 'FEDCLR_SECAGG_SESSION_ENDED');
  });
}

test('masked vectors are indistinguishable from uniform (chi-square, p = 0.001)', () => {
  // A very non-uniform input: all zeros but the weight.
  const fed = makeFederation({ n: 4, dimension: 16384, dropoutFraction: 0, corruptFraction: 0, label: 'chi' });
  const masked: Uint32Array[] = [];
  runInProcess({
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

test('the coordinator stores only masked data and can produce only the sum', () => {
  const fed = makeFederation({ n: 6, dropoutFraction: 0.2, corruptFraction: 0, label: 'privacy' });
  const inputs = fed.ids.map((id) => fed.input(id));
  const equalsAnInput = (v: Uint32Array): boolean => inputs.some((x) => x.length === v.length && x.every((w, i) => w === v[i]));
  const checkedAt = new Set<string>();
  const inspect = (stage: string): void => {
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
    checkedAt.add(stage);
  };
  runInProcess({
    server: fed.server,
    agents: fed.agents,
    input: (id) => fed.input(id),
    dropBefore: { 'masked-input': [fed.ids[1] as string] },
    onSend: (_from, message) => {
      // Once when the check round starts, once when the unmask round starts.
      if ((message.stage === 'check' || message.stage === 'unmask') && !checkedAt.has(message.stage)) inspect(message.stage);
    },
  });
  assert.deepEqual([...checkedAt].sort(), ['check', 'unmask']);
  const result = fed.server.result;
  assert.ok(result);
  const held = typedArraysIn(fed.server).filter((v) => v.length === fed.encoding.length);
  assert.equal(held.length, 1, 'after unmasking, the one vector is the survivors sum');
  assert.deepEqual(held[0], plainSum(result.survivors.map((id) => fed.input(id)), fed.encoding.length));
  assert.equal(result.survivors.length, 5);
  for (const x of inputs) assert.notDeepEqual(held[0], x);
});

test('decodeFixedPointSum of the result matches the result decoding', () => {
  const fed = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'decode' });
  const result = expectDone(run(fed).status);
  const again = decodeFixedPointSum(result.sum, fed.encoding, result.survivors.length);
  assert.deepEqual(again.values, result.decoded.values);
  assert.equal(again.weight, result.decoded.weight);
});

test('one agent losing too many neighbours aborts with insufficient-neighbours naming it', () => {
  const fed = makeFederation({ n: 24, dropoutFraction: 0.1, corruptFraction: 0.05, securityBits: 8, label: 'neighbourhood' });
  const { neighbours: k, threshold: t } = fed.server.params;
  assert.equal(fed.server.params.graph, 'harary');
  const victim = fed.ids[5] as string;
  // Drop k - t + 1 of its neighbours after sharing: the overall count stays far above t.
  const dropped = fed.server.graph.neighbours(victim).slice(0, k - t + 1);
  assert.ok(fed.ids.length - dropped.length >= t);
  const status = run(fed, { 'masked-input': dropped }).status;
  assert.equal(status.kind, 'aborted');
  if (status.kind !== 'aborted') return;
  assert.equal(status.abort.reason, 'insufficient-neighbours');
  assert.equal(status.abort.stage, 'masked-input');
  assert.ok(status.abort.agent !== undefined);
  assert.equal(status.abort.available, t - 1);
});

test('an agent losing too many neighbours at share-check is left out, the rest still sum exactly', () => {
  const fed = makeFederation({ n: 24, dropoutFraction: 0.1, corruptFraction: 0.05, securityBits: 8, neighbours: 12, label: 'starved' });
  const { neighbours: k, threshold: t } = fed.server.params;
  const victim = fed.ids[5] as string;
  // k - t + 1 of its neighbours go silent at share-check: it would keep t - 1 masking
  // neighbours and refuse to mask, so the coordinator drops it from the participants.
  // Pick them so that nobody else falls below t once the victim is gone too (no cascade).
  const graph = fed.server.graph;
  const subsets = (items: readonly string[], size: number): string[][] =>
    size === 0 ? [[]] : items.flatMap((x, i) => subsets(items.slice(i + 1), size - 1).map((rest) => [x, ...rest]));
  const dropped = subsets(graph.neighbours(victim), k - t + 1).find((candidate) => {
    const gone = new Set([...candidate, victim]);
    return fed.ids.every((u) => gone.has(u) || graph.neighbours(u).filter((v) => !gone.has(v)).length >= t);
  });
  assert.ok(dropped !== undefined);
  const outcome = run(fed, { 'share-check': dropped });
  const result = expectDone(outcome.status);
  assert.ok(!result.survivors.includes(victim));
  assert.deepEqual(result.dropouts.shareCheck, [...dropped, victim].sort());
  assert.equal(fed.agents.get(victim)?.state, 'awaiting-participants');
  checkAgainstPlaintext(fed, result);
});

test('seeded runs are reproducible: identical masked inputs and sums', () => {
  const capture = (): Uint32Array[] => {
    const fed = makeFederation({ n: 5, dropoutFraction: 0.2, corruptFraction: 0, label: 'repro' });
    const masked: Uint32Array[] = [];
    const outcome = runInProcess({
      server: fed.server,
      agents: fed.agents,
      input: (id) => fed.input(id),
      onSend: (_from, message: SecAggMessage) => {
        if (message.stage === 'masked-input') masked.push((message as MaskedInputMessage).payload.masked);
      },
    });
    return [...masked, expectDone(outcome.status).sum];
  };
  assert.deepEqual(capture(), capture());
});

test('agents refuse input before setup and a second input', () => {
  const fed = makeFederation({ n: 4, dropoutFraction: 0, corruptFraction: 0, label: 'input-order' });
  const agent = fed.agents.get(fed.ids[0] as string);
  assert.ok(agent);
  throwsWithCode(() => agent.setInput(new Uint32Array(fed.encoding.length)), 'FEDCLR_SECAGG_UNEXPECTED_STAGE');
  const setup = fed.server.start()[0];
  assert.ok(setup);
  agent.receive(setup);
  throwsWithCode(() => agent.setInput(new Uint32Array(3)), 'FEDCLR_SECAGG_MALFORMED');
  assert.deepEqual(agent.setInput(fed.input(agent.id)), [], 'the masked input waits for the participants');
  throwsWithCode(() => agent.setInput(fed.input(agent.id)), 'FEDCLR_SECAGG_UNEXPECTED_STAGE');
});
