// --labels: where class labels come from, for the losses that take them (fedclr train, fedclr
// agent, and fedclr simulate for its agents). Labels are read where the images are and used only
// there: an agent's never leave it.
import { describeLoss, RECIPE_LOSS_LABELS, type LossRecipe } from '@fedclr/contrastive';
import type { ImageDataset } from '@fedclr/data';
import { UsageError } from './errors.js';

/** 'folders': the first-level sub-folder names of --data DIR; 'dataset': --dataset fashion-mnist's classes. */
export const LABEL_SOURCES = ['folders', 'dataset'] as const;
export type LabelSource = (typeof LABEL_SOURCES)[number];

/** The help lines of --labels, descriptions from `column` on (the command's own alignment), after `lead`. */
export function labelsHelp(column: number, lead: readonly string[] = []): string {
  const lines = [...lead, 'class labels for the losses that take them (supcon needs them; triplet and', 'margin use them when given): folders, the first-level sub-folder names of', '--data DIR; dataset, the classes of --dataset fashion-mnist'];
  return lines.map((l, i) => (i === 0 ? '  --labels folders|dataset'.padEnd(column) : ' '.repeat(column)) + l).join('\n');
}

/** --labels, checked against the data source it reads from (undefined: no labels). */
export function labelsOption(values: Record<string, unknown>, source: { data?: string | undefined; dataset?: string | undefined }): LabelSource | undefined {
  const raw = values['labels'];
  if (raw === undefined) return undefined;
  if (raw === 'folders') {
    if (source.data === undefined) throw new UsageError('--labels folders reads the sub-folder names of --data DIR; with --dataset give --labels dataset');
    return raw;
  }
  if (raw === 'dataset') {
    if (source.data !== undefined) throw new UsageError('--labels dataset takes the classes of --dataset; with --data DIR give --labels folders');
    return raw;
  }
  throw new UsageError(`--labels must be one of ${LABEL_SOURCES.join(', ')}, got '${String(raw)}'`);
}

/** Refuses a loss that needs labels without them, and labels for a loss that takes none. */
export function checkLabelsForLoss(loss: LossRecipe, labels: LabelSource | undefined): void {
  const use = RECIPE_LOSS_LABELS[loss.loss];
  if (use === 'required' && labels === undefined) {
    throw new UsageError(`--loss ${loss.loss} needs class labels: give --labels folders (the sub-folder names of --data DIR) or --labels dataset (the classes of --dataset)`);
  }
  if (use === 'none' && labels !== undefined) throw new UsageError(`--labels: --loss ${loss.loss} is label-free and takes no labels (triplet, margin and supcon do)`);
}

/** Refuses labelled images with fewer than two classes (no negatives of another class). */
export function checkLabelledImages(dataset: ImageDataset, where: string): void {
  const classes = new Set(dataset.labels ?? []).size;
  if (classes < 2) throw new UsageError(`--labels: ${where} has ${classes} class${classes === 1 ? '' : 'es'} with images; label-aware training needs at least 2 (one sub-folder per class)`);
}

/** The log line saying what the loss trains on. */
export function lossLine(loss: LossRecipe, labels: LabelSource | undefined): string {
  return `loss ${describeLoss(loss, labels !== undefined)}${labels === undefined ? '' : ` (labels: ${labels === 'folders' ? 'sub-folder names' : "the dataset's classes"})`}`;
}
