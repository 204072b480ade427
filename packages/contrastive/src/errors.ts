// Error catalog of @fedclr/contrastive. Every error thrown on purpose by this package is one of
// these constructors, so callers can branch on `err.code` (stable) instead of on messages.
// Status codes: 400 for a caller's bad input or configuration (it may arrive through a round
// config over HTTP), 500 for an internal invariant that should never break.
import createError from '@fastify/error';

/** A tensor argument has the wrong rank, shape or dtype. Args: (argument name, what is wrong). */
export const ShapeError = createError<'FEDCLR_CONTRASTIVE_SHAPE', 400, [string, string]>(
  'FEDCLR_CONTRASTIVE_SHAPE',
  'Invalid tensor %s: %s',
  400,
);

/** An option of a loss or an op is out of its domain. Args: (option name, what is wrong). */
export const InvalidOptionError = createError<'FEDCLR_CONTRASTIVE_INVALID_OPTION', 400, [string, string]>(
  'FEDCLR_CONTRASTIVE_INVALID_OPTION',
  'Invalid option %s: %s',
  400,
);

/** Labels (class ids or pair flags) are malformed. Args: (argument name, what is wrong). */
export const InvalidLabelsError = createError<'FEDCLR_CONTRASTIVE_INVALID_LABELS', 400, [string, string]>(
  'FEDCLR_CONTRASTIVE_INVALID_LABELS',
  'Invalid labels %s: %s',
  400,
);

/** An augmentation pipeline config is invalid. Args: (config path such as "crop.scale", what is wrong). */
export const InvalidAugmentConfigError = createError<
  'FEDCLR_CONTRASTIVE_INVALID_AUGMENT_CONFIG',
  400,
  [string, string]
>('FEDCLR_CONTRASTIVE_INVALID_AUGMENT_CONFIG', 'Invalid augmentation config at %s: %s', 400);

// Encoders and training

/** An encoder or head configuration is invalid. Args: (option, what is wrong). */
export const InvalidEncoderConfigError = createError<'FEDCLR_CONTRASTIVE_INVALID_ENCODER', 400, [string, string]>(
  'FEDCLR_CONTRASTIVE_INVALID_ENCODER',
  'Invalid encoder config %s: %s',
  400,
);

/** A training option is invalid. Args: (option, what is wrong). */
export const InvalidTrainingConfigError = createError<'FEDCLR_CONTRASTIVE_INVALID_TRAINING', 400, [string, string]>(
  'FEDCLR_CONTRASTIVE_INVALID_TRAINING',
  'Invalid training config %s: %s',
  400,
);

/** A training worker failed or stopped answering. Args: (worker index, reason). */
export const TrainingWorkerError = createError<'FEDCLR_CONTRASTIVE_WORKER', 500, [number, string]>(
  'FEDCLR_CONTRASTIVE_WORKER',
  'Training worker %d failed: %s',
  500,
);

/** A training recipe (recipe.ts) cannot be run: unknown encoder, widths, view size, ... Args: (field, what is wrong). */
export const InvalidRecipeError = createError<'FEDCLR_CONTRASTIVE_INVALID_RECIPE', 400, [string, string]>(
  'FEDCLR_CONTRASTIVE_INVALID_RECIPE',
  'Invalid recipe %s: %s',
  400,
);

/** A loss that needs class labels was asked to train without them. Args: (loss, where labels come from). */
export const LabelsRequiredError = createError<'FEDCLR_CONTRASTIVE_LABELS_REQUIRED', 400, [string, string]>(
  'FEDCLR_CONTRASTIVE_LABELS_REQUIRED',
  "Loss '%s' needs class labels and none were given: %s",
  400,
);
