// Error catalog of the fedclr command.
import createError from '@fastify/error';

export const UsageError = createError<'FEDCLR_CLI_USAGE', 400, [string]>('FEDCLR_CLI_USAGE', '%s (see `fedclr --help`)', 400);
export const UnknownCommandError = createError<'FEDCLR_CLI_UNKNOWN_COMMAND', 400, [string, string]>(
  'FEDCLR_CLI_UNKNOWN_COMMAND',
  "Unknown command '%s'; commands: %s",
  400,
);
export const ExporterMismatchError = createError<'FEDCLR_CLI_EXPORT_MISMATCH', 500, [number, string]>(
  'FEDCLR_CLI_EXPORT_MISMATCH',
  'Cannot export the checkpoint of round %s in the tfjs format: it has %s',
  500,
);
export const SimulationError = createError<'FEDCLR_CLI_SIMULATION', 500, [string]>('FEDCLR_CLI_SIMULATION', 'Simulation failed: %s', 500);
export const ProcessError = createError<'FEDCLR_CLI_PROCESS', 500, [string]>('FEDCLR_CLI_PROCESS', '%s', 500);

// Encoders, embeddings, search and probe heads (fedclr embed | search | probe | classify). The
// file formats' own errors keep their packages' codes: FEDCLR_SEARCH_EMBEDDINGS_FILE (a damaged
// or foreign .npz), FEDCLR_SEARCH_ANN_INDEX (a damaged, missing or stale .hnsw index),
// FEDCLR_EVAL_HEAD_FILE (a malformed probe head), FEDCLR_TENSOR_MODEL_FILE (a model directory).
export const NoImagesError = createError<'FEDCLR_CLI_NO_IMAGES', 400, [string, string]>(
  'FEDCLR_CLI_NO_IMAGES',
  'No readable PNG or JPEG images under %s%s; nothing was written',
  400,
);
export const ModelInputError = createError<'FEDCLR_CLI_MODEL_INPUT', 400, [string, string, string]>(
  'FEDCLR_CLI_MODEL_INPUT',
  'The model %s takes %s images, but %s',
  400,
);
export const ModelMismatchError = createError<'FEDCLR_CLI_MODEL_MISMATCH', 400, [string, string, string]>(
  'FEDCLR_CLI_MODEL_MISMATCH',
  '%s was made with another encoder (%s) than --model %s: use the model it was made with, or make it again with this one',
  400,
);
export const ImageReadError = createError<'FEDCLR_CLI_IMAGE', 400, [string, string]>('FEDCLR_CLI_IMAGE', 'Cannot read the image %s: %s', 400);
export const MemoryLimitError = createError<'FEDCLR_CLI_MEMORY_LIMIT', 413, [string, string, { cause: unknown }?]>(
  'FEDCLR_CLI_MEMORY_LIMIT',
  '%s. On the command line: raise the limit with --max-memory MB (now %s MB), or read the images smaller (--size)',
  413,
);
