// fedclr partition: writes the parts `fedclr simulate` gives its agents as image folders, one per
// agent, so that a deployed federation (`fedclr coordinator` + `fedclr agent --data DIR` on other
// machines) can be rehearsed, or compared with simulate, on exactly the same private data.
import { readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writePngFolder, type LabeledImageDataset } from '@fedclr/data';
import { intOption } from '../common.js';
import { UsageError } from '../errors.js';
import { loadSimulationTrain, partitionOption, splitSimulation, type SimulationDataSpec } from '../federation.js';

export const partitionHelp = `fedclr partition --out DIR [options]   write simulate's agent partitions as PNG folders
  --dataset fashion-mnist --clients 10
  --partition iid|dirichlet|shards --alpha 0.5 --shards-per-client 2 --seed 0 --holdout H --limit N
                              the same flags, and so the same parts, as fedclr simulate
  --out DIR                   a new (or empty) directory: DIR/agent-NN/img-IIIII.png, where IIIII is the
                              image's index in the train split (sorted names keep simulate's order), no labels;
                              DIR/partition.json records the spec and each part's size
  --json                      print {"out", "clients", "sizes"} as the last line`;

const OPTIONS = {
  dataset: { type: 'string' },
  clients: { type: 'string' },
  partition: { type: 'string' },
  alpha: { type: 'string' },
  'shards-per-client': { type: 'string' },
  seed: { type: 'string' },
  holdout: { type: 'string' },
  limit: { type: 'string' },
  out: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

function dataSpecOf(values: Record<string, unknown>): SimulationDataSpec {
  const dataset = (values['dataset'] as string | undefined) ?? 'fashion-mnist';
  if (dataset !== 'fashion-mnist') throw new UsageError(`unknown --dataset '${dataset}'; available: fashion-mnist`);
  return {
    dataset,
    clients: intOption(values, 'clients', 10, 1),
    partition: partitionOption(values),
    seed: intOption(values, 'seed', 0, 0),
    ...(values['holdout'] !== undefined ? { holdout: intOption(values, 'holdout', 0, 0) } : {}),
    ...(values['limit'] !== undefined ? { limit: intOption(values, 'limit', 60_000, 2) } : {}),
  };
}

/** Refuses an --out that holds anything: a partition is never mixed into other files. */
async function assertEmptyOrMissing(dir: string): Promise<void> {
  try {
    if ((await readdir(dir)).length > 0) throw new UsageError(`--out ${dir} is not empty; give a new directory`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

export async function partitionCommand(argv: string[], out: (line: string) => void, log: (line: string) => void): Promise<number> {
  const { values } = parseArgs({ args: argv, options: OPTIONS, strict: true });
  if (values.out === undefined) throw new UsageError('--out DIR is required');
  const spec = dataSpecOf(values);
  const target = resolve(values.out);
  await assertEmptyOrMissing(target);
  const train = (await loadSimulationTrain(spec)) as LabeledImageDataset;
  const { parts } = splitSimulation(train.labels, spec);
  const sizes = parts.map((p) => p.length);
  // Written beside the target and renamed into place: an interrupted run leaves no partial partition.
  const staging = join(dirname(target), `.${values.out.split('/').pop() ?? 'partition'}.partial-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  try {
    const width = String(spec.clients - 1).length;
    for (const [client, indices] of parts.entries()) {
      await writePngFolder(train, indices, join(staging, `agent-${String(client).padStart(width, '0')}`));
      log(`partition: agent ${client}: ${indices.length} images`);
    }
    await writeFile(join(staging, 'partition.json'), `${JSON.stringify({ ...spec, sizes }, null, 2)}\n`);
    await rm(target, { recursive: true, force: true }); // empty or missing (checked above)
    await rename(staging, target);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  log(`partition: ${spec.clients} folders under ${target} (${sizes.reduce((a, b) => a + b, 0)} images)`);
  if (values.json) out(JSON.stringify({ out: target, clients: spec.clients, sizes }));
  return 0;
}
