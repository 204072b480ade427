// A CheckpointExporter that adds the global model, in the standard tfjs layers format, to each
// round's checkpoint directory:
//
//   <stateDir>/checkpoints/round-00000007/tfjs/model.json + weights.bin
//
// `fedclr eval --model <that dir>` evaluates it; tf.loadLayersModel('file://.../model.json')
// loads it in stock tfjs. The model.json carries the architecture (userDefinedMetadata.fedclr)
// and the round, completed rounds and model version it came from.
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { architectureId, protocolManifest } from '@fedclr/agent';
import type { Checkpoint, CheckpointExporter } from '@fedclr/coordinator';
import { canonicalManifest } from '@fedclr/protocol';
import { saveModel, type GraphSpec } from '@fedclr/tensor';
import { ExporterMismatchError } from './errors.js';

/** Sub-directory of a round's checkpoint directory that holds the tfjs model. */
export const TFJS_SUBDIR = 'tfjs';

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Exports every checkpoint of a model with architecture `spec` as a tfjs layers model. */
export function createTfjsExporter(spec: GraphSpec, subdir = TFJS_SUBDIR): CheckpointExporter {
  const architecture = architectureId(spec);
  const manifest = canonicalManifest(protocolManifest(spec));
  return {
    name: 'tfjs-layers',
    async write(checkpoint: Checkpoint, dir: string): Promise<void> {
      if (checkpoint.architecture !== architecture) throw new ExporterMismatchError(checkpoint.roundId, `architecture '${checkpoint.architecture}', the exporter writes '${architecture}'`);
      if (canonicalManifest(checkpoint.manifest) !== manifest) throw new ExporterMismatchError(checkpoint.roundId, `a manifest that differs from ${spec.name}'s`);
      const target = join(dir, subdir);
      await saveModel(target, spec, checkpoint.weights, {
        roundId: checkpoint.roundId,
        completedRounds: checkpoint.completedRounds,
        modelVersion: checkpoint.modelVersion,
        architecture,
      });
      // The store fsyncs its own files and the round directory; make the exported files as durable.
      for (const name of await readdir(target)) await fsyncPath(join(target, name));
      await fsyncPath(target);
    },
  };
}

/** Where the tfjs model of a completed round lives. */
export function tfjsCheckpointDir(stateDir: string, checkpointDirName: string, subdir = TFJS_SUBDIR): string {
  return join(stateDir, 'checkpoints', checkpointDirName, subdir);
}
