// Error catalog of the evaluation module (linear probe, kNN, feature helpers). Every error thrown
// on purpose here is one of these constructors, so callers branch on `err.code`, not on messages.
// 400: the caller's features, labels or options are invalid. 500: a caller-supplied embedding
// function broke its contract, or an internal invariant failed.
import createError from '@fastify/error';

/** A feature set is malformed (lengths, dimension). Args: (split name, what is wrong). */
export const EvalInvalidFeaturesError = createError<'FEDCLR_EVAL_INVALID_FEATURES', 400, [string, string]>(
  'FEDCLR_EVAL_INVALID_FEATURES',
  'Invalid %s features: %s',
  400,
);

/** A feature value is NaN or infinite. Args: (split name, example index, feature index, value). */
export const EvalNonFiniteFeatureError = createError<
  'FEDCLR_EVAL_NON_FINITE_FEATURE',
  400,
  [string, number, number, string]
>('FEDCLR_EVAL_NON_FINITE_FEATURE', 'Non-finite %s feature: example %d, feature %d is %s', 400);

/** Labels are malformed (not integers, negative, out of the class range). Args: (split name, what is wrong). */
export const EvalInvalidLabelsError = createError<'FEDCLR_EVAL_INVALID_LABELS', 400, [string, string]>(
  'FEDCLR_EVAL_INVALID_LABELS',
  'Invalid %s labels: %s',
  400,
);

/** Too few training examples for the number of classes. Args: (examples, classes). */
export const EvalTooFewExamplesError = createError<'FEDCLR_EVAL_TOO_FEW_EXAMPLES', 400, [number, number]>(
  'FEDCLR_EVAL_TOO_FEW_EXAMPLES',
  'Too few training examples: %d examples for %d classes (need at least one per class)',
  400,
);

/** Train and test features have different dimensions. Args: (train dim, test dim). */
export const EvalDimensionMismatchError = createError<'FEDCLR_EVAL_DIMENSION_MISMATCH', 400, [number, number]>(
  'FEDCLR_EVAL_DIMENSION_MISMATCH',
  'Train features have dimension %d but test features have dimension %d',
  400,
);

/** An evaluation option is out of its domain. Args: (option name, what is wrong). */
export const EvalInvalidOptionError = createError<'FEDCLR_EVAL_INVALID_OPTION', 400, [string, string]>(
  'FEDCLR_EVAL_INVALID_OPTION',
  'Invalid evaluation option %s: %s',
  400,
);

/** The embedding function given to extractFeatures returned a bad result. Args: (what is wrong). */
export const EvalEmbedOutputError = createError<'FEDCLR_EVAL_EMBED_OUTPUT', 500, [string]>(
  'FEDCLR_EVAL_EMBED_OUTPUT',
  'The embedding function returned an invalid result: %s',
  500,
);

/** A linear probe head file cannot be used: unreadable, not fedclr's format, inconsistent. Args: (path, what is wrong). */
export const EvalHeadFileError = createError<'FEDCLR_EVAL_HEAD_FILE', 400, [string, string]>(
  'FEDCLR_EVAL_HEAD_FILE',
  'Cannot use the probe head %s: %s',
  400,
);
