// fedclr probe: fits a linear classifier on a frozen encoder's representation of labeled images
// (classes from first-level sub-folders) and saves it as a head file for fedclr classify.
import { parseArgs } from 'node:util';
import { fitProbeHead, writeFileAtomic } from '@fedclr/contrastive';
import { initBackend } from '@fedclr/tensor';
import { intOption, nonNegativeOption } from '../common.js';
import { IMAGE_SET_OPTIONS, embedImages, loadEncoder, readImageSet } from '../encoder.js';
import { UsageError } from '../errors.js';

export const probeHelp = `fedclr probe --model DIR (--data DIR | --dataset fashion-mnist) --out HEAD.json [options]
  --model DIR                 the encoder (a model written by fedclr train or a coordinator checkpoint)
  --data DIR                  labeled images: DIR/<class>/... (PNG/JPEG), one sub-folder per class
  --dataset fashion-mnist     Fashion-MNIST's labeled train split (--split test for the test split)
  --out HEAD                  the head file (JSON, README: Probe head), written atomically
  --holdout 0.2               fraction of each class held out to score the head (0: fit on all)
  --l2 auto|X                 L2 strength; auto chooses it on 10% of the fit images (default auto)
  --seed 0 --workers N --json`;

export async function probeCommand(argv: string[], out: (line: string) => void, log: (line: string) => void): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...IMAGE_SET_OPTIONS,
      out: { type: 'string' },
      holdout: { type: 'string' },
      l2: { type: 'string' },
      seed: { type: 'string' },
    },
    strict: true,
  });
  if (values.model === undefined) throw new UsageError('give --model DIR');
  if (values.out === undefined) throw new UsageError('give --out HEAD (the head file, JSON)');
  const holdout = values.holdout === undefined ? 0.2 : nonNegativeOption(values, 'holdout', 0.2);
  if (holdout >= 1) throw new UsageError(`--holdout must be in [0, 1), got ${holdout}`);
  const l2: number | 'auto' = values.l2 === undefined || values.l2 === 'auto' ? 'auto' : nonNegativeOption(values, 'l2', 0);
  await initBackend();
  const encoder = await loadEncoder(values.model);
  const set = await readImageSet(encoder, values, true, log);
  log(`embedding ${set.count} images of ${set.classNames.length} classes with ${encoder.spec.name}`);
  const features = await embedImages(encoder, set.images, set.count, values);
  const head = await fitProbeHead({ features, labels: set.labels as Uint8Array, dim: encoder.dim }, set.classNames, encoder.model, set.source, {
    holdout,
    l2,
    seed: intOption(values, 'seed', 0, 0),
  });
  await writeFileAtomic(values.out, new TextEncoder().encode(`${JSON.stringify(head)}\n`));
  const summary = { out: values.out, classes: head.classes, dim: head.dim, ...head.fit };
  if (values.json) out(JSON.stringify(summary));
  else {
    const score = head.fit.holdoutAccuracy === null ? `fit accuracy ${(head.fit.fitAccuracy * 100).toFixed(2)}% (no holdout)` : `holdout accuracy ${(head.fit.holdoutAccuracy * 100).toFixed(2)}% on ${head.fit.holdoutCount} images`;
    out(`probe head of ${head.classes.length} classes fitted on ${head.fit.fitCount} images: ${score}; written to ${values.out}`);
  }
  return 0;
}
