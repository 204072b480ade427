// GET /api/model/model.json + weights.bin: the latest global model in the tfjs layers format, as
// stock tfjs-layers loads it over HTTP, with exactly the global model's weights, before and after
// a round (the files follow the model version).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { io } from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { pino } from 'pino';
import { createFakeTrainer, startAgent } from '@fedclr/agent';
import type { Manifest } from '@fedclr/protocol';
import { Network, flattenWeights, initBackend, manifestOfSpec, type GraphSpec } from '@fedclr/tensor';
import { startCoordinator, type CoordinatorHandle } from '../src/coordinator.js';
import { LayersModelJsonSchema } from '../src/http.js';
import { schemaProblem } from './helpers.js';
import { tempDir, trust, withTimeout } from './harness.js';

// Convolutions, BatchNorm (trainable scale/offset and non-trainable moving statistics) and a head,
// which the served model leaves out: it outputs the representation (exportOutput).
const spec: GraphSpec = {
  name: 'layers-http-test',
  input: { height: 8, width: 8, channels: 1 },
  nodes: [
    { op: 'conv', name: 'c1', input: 'input', filters: 4, kernel: 3, stride: 1 },
    { op: 'bn', name: 'b1', input: 'c1', relu: true },
    { op: 'conv', name: 'c2', input: 'b1', filters: 6, kernel: 3, stride: 2 },
    { op: 'bn', name: 'b2', input: 'c2', relu: true },
    { op: 'gap', name: 'representation', input: 'b2' },
    { op: 'dense', name: 'projection', input: 'representation', units: 5 },
  ],
  output: 'projection',
  exportOutput: 'representation',
};
const HEAD = ['projection/kernel', 'projection/bias'];

interface ModelJson {
  format: string;
  modelTopology: object;
  weightsManifest: { paths: string[]; weights: io.WeightsManifestEntry[] }[];
  userDefinedMetadata: { fedclr: { spec: GraphSpec; info: Record<string, unknown> } };
}

/**
 * A loaded layers model has every tensor of the flat weights but the head's, each equal to its
 * same-named slice, and outputs the representation (6 wide).
 */
function assertSameWeights(model: tfl.LayersModel, manifest: Manifest, flat: Float32Array): void {
  assert.deepEqual(model.outputs[0]?.shape, [null, 6]);
  const offsets = new Map<string, { offset: number; size: number }>();
  let offset = 0;
  for (const t of manifest) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    offsets.set(t.name, { offset, size });
    offset += size;
  }
  assert.deepEqual(model.weights.map((w) => w.originalName).sort(), manifest.map((t) => t.name).filter((n) => !HEAD.includes(n)).sort());
  for (const w of model.weights) {
    const at = offsets.get(w.originalName);
    assert.ok(at !== undefined, `layers weight '${w.originalName}' is not in the manifest`);
    assert.deepEqual(w.read().dataSync(), flat.subarray(at.offset, at.offset + at.size), w.originalName);
  }
}

let coordinator: CoordinatorHandle;
let dir: string;
const logger = pino({ level: process.env['FEDCLR_LOG_LEVEL'] ?? 'warn' });
const manifest: Manifest = manifestOfSpec(spec).tensors.map((t) => ({ name: t.name, shape: [...t.shape], dtype: t.dtype }));

before(async () => {
  await initBackend({ prefer: 'wasm' });
  dir = tempDir();
  const net = new Network(spec, 5);
  // Moving statistics away from their 0/1 initial values, so a mix-up would show.
  const weights = flattenWeights(net).map((w, i) => w + 0.01 * Math.sin(i));
  net.dispose();
  coordinator = await startCoordinator(
    { stateDir: join(dir, 'coordinator'), port: 0, logLevel: 'warn', rounds: 1, minCohort: 2, maxCohort: 2, aggregation: 'plain', retryDelayMs: 100, enrolment: { mode: 'open' } },
    { initialModel: { architecture: 'layers-http-test@8x8x1', manifest, weights }, modelSpec: spec, logger },
  );
});

after(async () => {
  await coordinator.close();
});

test('GET /api/model redirects to model.json, which stock tfjs-layers loads over HTTP with the global weights', async () => {
  const base = coordinator.url;
  const redirect = await fetch(`${base}/api/model`, { redirect: 'manual' });
  assert.equal(redirect.status, 302);
  assert.equal(redirect.headers.get('location'), '/api/model/model.json');

  const global = coordinator.globalModel();
  const res = await fetch(`${base}/api/model/model.json`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(res.headers.get('x-fedclr-model-version'), global.modelVersion);
  const json = (await res.json()) as ModelJson;
  assert.equal(schemaProblem(LayersModelJsonSchema, json), undefined);
  assert.equal(json.format, 'layers-model');
  assert.deepEqual(json.weightsManifest[0]?.paths, ['weights.bin']);
  assert.equal(json.userDefinedMetadata.fedclr.spec.name, spec.name);
  assert.deepEqual(json.userDefinedMetadata.fedclr.info, { roundId: 0, completedRounds: 0, modelVersion: global.modelVersion, architecture: global.architecture });

  const bin = await fetch(`${base}/api/model/weights.bin`);
  assert.equal(bin.status, 200);
  assert.equal(bin.headers.get('content-type'), 'application/octet-stream');
  assert.equal(bin.headers.get('x-fedclr-model-version'), global.modelVersion);
  const bytes = new Uint8Array(await bin.arrayBuffer());
  const described = (json.weightsManifest[0]?.weights ?? []).reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1) * 4, 0);
  assert.equal(bytes.byteLength, described, 'weightsManifest describes exactly weights.bin');
  assert.equal(bytes.byteLength, global.weights.byteLength - 4 * (6 * 5 + 5), 'all but the head (6 x 5 kernel, 5 biases)');

  // tfjs's own HTTP loader: model.json, then weights.bin resolved against its URL.
  const model = await tfl.loadLayersModel(`${base}/api/model/model.json`);
  try {
    assertSameWeights(model, global.manifest, global.weights);
  } finally {
    model.dispose();
  }
});

test('after a round, model.json and weights.bin carry the new global model', async () => {
  const base = coordinator.url;
  const initial = coordinator.globalModel().modelVersion;
  const agents = await Promise.all(
    [0, 1].map((i) => startAgent({ coordinatorUrl: base, stateDir: join(dir, `a${i}`), trainer: createFakeTrainer({ seed: i, delayMs: 50 }), logger, ...trust(coordinator.publicKey) })),
  );
  try {
    await withTimeout(coordinator.finished, 15_000, 'the round');
  } finally {
    await Promise.all(agents.map((a) => a.close()));
  }
  const global = coordinator.globalModel();
  assert.notEqual(global.modelVersion, initial);
  assert.equal(global.completedRounds, 1);

  const res = await fetch(`${base}/api/model/model.json`);
  const json = (await res.json()) as ModelJson;
  assert.equal(res.headers.get('x-fedclr-model-version'), global.modelVersion);
  assert.equal(json.userDefinedMetadata.fedclr.info['modelVersion'], global.modelVersion);
  assert.equal(json.userDefinedMetadata.fedclr.info['completedRounds'], 1);
  const bin = new Uint8Array(await (await fetch(`${base}/api/model/weights.bin`)).arrayBuffer());
  // The fetched files through a custom IOHandler (what a browser cache or a proxy would hand tfjs).
  const group = json.weightsManifest[0] as ModelJson['weightsManifest'][number];
  const handler: io.IOHandler = {
    load: async () => ({ modelTopology: json.modelTopology, weightSpecs: group.weights, weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength) }),
  };
  const model = await tfl.loadLayersModel(handler);
  try {
    assertSameWeights(model, global.manifest, global.weights);
  } finally {
    model.dispose();
  }
});

test('a graph spec that does not describe the model is refused at start', async () => {
  const wider: GraphSpec = { ...spec, nodes: spec.nodes.map((n) => (n.name === 'c1' ? { ...n, filters: 8 } : n)) };
  await assert.rejects(
    startCoordinator(
      { stateDir: join(tempDir(), 'coordinator'), port: 0, logLevel: 'warn', aggregation: 'plain' },
      { initialModel: { architecture: 'x', manifest, weights: new Float32Array(coordinator.globalModel().weights.length) }, modelSpec: wider, logger },
    ),
    { code: 'FEDCLR_COORD_MODEL_MISMATCH' },
  );
});
