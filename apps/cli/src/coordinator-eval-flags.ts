// fedclr simulate --eval-data DIR [--eval-every K]: the coordinator that simulate starts evaluates
// its checkpoints on a labeled folder (as `fedclr coordinator --eval-data DIR --eval-every K`), so
// that the dashboard and each round's metrics show a linear probe and kNN score while the run goes on.
// With --eval-data, --eval-every is the coordinator's: simulate itself then evaluates only the final
// model on its own test split, so that no checkpoint is encoded twice on the same cores.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { intOption } from './common.js';
import { UsageError } from './errors.js';

export const COORDINATOR_EVAL_FLAG_OPTIONS = {
  'eval-data': { type: 'string' },
} as const;

export const COORDINATOR_EVAL_FLAGS_HELP = `  --eval-data DIR             the coordinator also evaluates its checkpoints on this labeled folder (DIR/<class>/images,
                              read at the model's input; fedclr coordinator --eval-data): linear probe + kNN in its
                              worker thread, shown on the dashboard and in each round's coordinatorEval. --eval-every K
                              is then the coordinator's (default 1) and simulate evaluates only the final model itself`;

/** Where and how often the coordinator evaluates; undefined without --eval-data. */
export interface CoordinatorEvalSettings {
  readonly dir: string;
  readonly every: number;
}

/** --eval-data and --eval-every, checked before any process starts. */
export function coordinatorEvalFromFlags(values: Record<string, unknown>): CoordinatorEvalSettings | undefined {
  const raw = values['eval-data'];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || raw.trim() === '') throw new UsageError('--eval-data needs a directory (a labeled folder: DIR/<class>/images)');
  const dir = resolve(raw);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (err) {
    throw new UsageError(`--eval-data ${raw} is not a readable directory: ${(err as Error).message}`);
  }
  if (!isDir) throw new UsageError(`--eval-data ${raw} is not a directory (give a labeled folder: DIR/<class>/images)`);
  const every = intOption(values, 'eval-every', 1, 0);
  if (every === 0) throw new UsageError('--eval-every 0 does not go with --eval-data: the coordinator evaluates every K-th round (K >= 1, default 1) and the last');
  return { dir, every };
}

/** The flags that hand `settings` to `fedclr coordinator` (simulate's pass-through). */
export function coordinatorEvalFlags(settings: CoordinatorEvalSettings | undefined): string[] {
  return settings === undefined ? [] : ['--eval-data', settings.dir, '--eval-every', String(settings.every)];
}
