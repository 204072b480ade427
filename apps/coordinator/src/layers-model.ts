// The latest global model in the standard tfjs layers format (GET /api/model/model.json and
// /api/model/weights.bin), so stock tfjs loads it straight from the coordinator:
//   tf.loadLayersModel('http://host:port/api/model/model.json')
// The files are built in memory from the flat weights and the architecture's graph spec, once per
// model version (at most once a round), and shared by concurrent requests.
import { canonicalManifest, type Manifest } from '@fedclr/protocol';
import { initBackend, layersModelArtifacts, manifestOfSpec, type GraphSpec, type LayersModelJson } from '@fedclr/tensor';
import type { GlobalModel } from './engine.js';
import { ModelMismatchError } from './errors.js';

/** The weights file as model.json names it: a sibling, which tfjs resolves against model.json's URL. */
export const LAYERS_WEIGHTS_PATH = 'weights.bin';

export interface LayersModelFiles {
  readonly modelVersion: string;
  readonly roundId: number;
  readonly architecture: string;
  readonly modelJson: LayersModelJson;
  readonly weightData: Uint8Array;
}

/** Refuses a graph spec whose weights are not exactly the model's tensors (names, shapes, order). */
export function checkSpecManifest(spec: GraphSpec, manifest: Manifest): void {
  const fromSpec: Manifest = manifestOfSpec(spec).tensors.map((t) => ({ name: t.name, shape: [...t.shape], dtype: t.dtype }));
  if (canonicalManifest(fromSpec) !== canonicalManifest(manifest)) {
    throw new ModelMismatchError(`the model spec '${spec.name}' (for GET /api/model/model.json) does not describe the model's tensors`);
  }
}

/** A getter of the current model's layers files, built on first use per model version. */
export function layersModelSource(spec: GraphSpec, current: () => GlobalModel): () => Promise<LayersModelFiles> {
  let cached: { version: string; files: Promise<LayersModelFiles> } | undefined;
  return () => {
    const m = current();
    if (cached === undefined || cached.version !== m.modelVersion) {
      const files = build(spec, m);
      const entry = { version: m.modelVersion, files };
      cached = entry;
      // A failed build is not cached: the next request tries again.
      files.catch(() => {
        if (cached === entry) cached = undefined;
      });
    }
    return cached.files;
  };
}

async function build(spec: GraphSpec, m: GlobalModel): Promise<LayersModelFiles> {
  await initBackend(); // a no-op when the host (e.g. fedclr coordinator) already chose one
  const info = { roundId: m.roundId, completedRounds: m.completedRounds, modelVersion: m.modelVersion, architecture: m.architecture };
  const { modelJson, weightData } = await layersModelArtifacts(spec, m.weights, info, LAYERS_WEIGHTS_PATH);
  return { modelVersion: m.modelVersion, roundId: m.roundId, architecture: m.architecture, modelJson, weightData };
}
