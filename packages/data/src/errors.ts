// Error catalog of @fedclr/data. Every error thrown by this package is built here, so codes stay
// stable and greppable. Codes are grouped by concern: RNG, IDX, FMNIST, FOLDER, DATASET, SPLIT,
// PARTITION.
// Messages are util.format templates; each says what was wrong and what to do about it.
import createError from '@fastify/error';

/** Optional trailing argument that carries the underlying error. */
export type Cause = { cause: unknown };

// --- RNG --------------------------------------------------------------------------------------

export const RngInvalidSeedError = createError<'FEDCLR_DATA_RNG_INVALID_SEED', 400, [string]>(
  'FEDCLR_DATA_RNG_INVALID_SEED',
  'Invalid RNG seed %s: use a finite number or a string',
  400,
);

export const RngInvalidArgumentError = createError<'FEDCLR_DATA_RNG_INVALID_ARGUMENT', 400, [string, string]>(
  'FEDCLR_DATA_RNG_INVALID_ARGUMENT',
  'Invalid argument to rng.%s: %s',
  400,
);

export const RngInvalidStateError = createError<'FEDCLR_DATA_RNG_INVALID_STATE', 400, [string]>(
  'FEDCLR_DATA_RNG_INVALID_STATE',
  'Invalid RNG state: %s. Pass an object produced by rng.state()',
  400,
);

// --- IDX files ----------------------------------------------------------------------------------

export const IdxBadMagicError = createError<'FEDCLR_DATA_IDX_BAD_MAGIC', 422, [string, string]>(
  'FEDCLR_DATA_IDX_BAD_MAGIC',
  '%s is not an IDX file: header starts with 0x%s, expected 0x0000 then a type byte and a ' +
    'dimension count. Is the file corrupt, or still gzip-compressed under another name?',
  422,
);

export const IdxUnknownTypeError = createError<'FEDCLR_DATA_IDX_UNKNOWN_TYPE', 422, [string, string]>(
  'FEDCLR_DATA_IDX_UNKNOWN_TYPE',
  '%s has unknown IDX element type 0x%s (known: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64)',
  422,
);

export const IdxTruncatedError = createError<'FEDCLR_DATA_IDX_TRUNCATED', 422, [string, number, number]>(
  'FEDCLR_DATA_IDX_TRUNCATED',
  '%s is truncated: its header announces %s bytes but only %s are present. Re-download or reinstall it',
  422,
);

export const IdxTrailingDataError = createError<'FEDCLR_DATA_IDX_TRAILING_DATA', 422, [string, number, number]>(
  'FEDCLR_DATA_IDX_TRAILING_DATA',
  '%s has trailing data: its header announces %s bytes but %s are present. The file is corrupt',
  422,
);

export const IdxBadShapeError = createError<'FEDCLR_DATA_IDX_BAD_SHAPE', 422, [string, string, string]>(
  'FEDCLR_DATA_IDX_BAD_SHAPE',
  '%s has %s, but %s was expected',
  422,
);

export const IdxReadError = createError<'FEDCLR_DATA_IDX_READ_FAILED', 500, [string, string, Cause?]>(
  'FEDCLR_DATA_IDX_READ_FAILED',
  'Could not read IDX file %s: %s',
  500,
);

// --- Fashion-MNIST ------------------------------------------------------------------------------

export const FashionMnistNotFoundError = createError<'FEDCLR_DATA_FMNIST_NOT_FOUND', 404, [string]>(
  'FEDCLR_DATA_FMNIST_NOT_FOUND',
  'Fashion-MNIST file %s not found. Install it with `apt-get install dataset-fashion-mnist` ' +
    '(Debian package; files go to /usr/share/datasets/fashion-mnist/), or pass `dir` pointing at a ' +
    'folder holding the four *-idx?-ubyte.gz files',
  404,
);

export const FashionMnistMismatchError = createError<
  'FEDCLR_DATA_FMNIST_MISMATCH',
  422,
  [string, number, string, number]
>(
  'FEDCLR_DATA_FMNIST_MISMATCH',
  '%s holds %s images but %s holds %s labels: the files belong to different splits or one is corrupt',
  422,
);

export const FashionMnistBadLabelError = createError<'FEDCLR_DATA_FMNIST_BAD_LABEL', 422, [string, number, number]>(
  'FEDCLR_DATA_FMNIST_BAD_LABEL',
  '%s: label %s at index %s is outside 0..9; the file is corrupt',
  422,
);

export const FashionMnistInvalidOptionError = createError<'FEDCLR_DATA_FMNIST_INVALID_OPTION', 400, [string]>(
  'FEDCLR_DATA_FMNIST_INVALID_OPTION',
  'Invalid Fashion-MNIST option: %s',
  400,
);

// --- Image folders ------------------------------------------------------------------------------

export const FolderNotFoundError = createError<'FEDCLR_DATA_FOLDER_NOT_FOUND', 404, [string]>(
  'FEDCLR_DATA_FOLDER_NOT_FOUND',
  'Image folder %s does not exist or is not a directory',
  404,
);

export const FolderInvalidOptionError = createError<'FEDCLR_DATA_FOLDER_INVALID_OPTION', 400, [string]>(
  'FEDCLR_DATA_FOLDER_INVALID_OPTION',
  'Invalid image-folder option: %s',
  400,
);

export const FolderTooManyClassesError = createError<'FEDCLR_DATA_FOLDER_TOO_MANY_CLASSES', 400, [string, number]>(
  'FEDCLR_DATA_FOLDER_TOO_MANY_CLASSES',
  'Image folder %s has %s class sub-folders but labels are stored as bytes (at most 256 classes); ' +
    'read it unlabeled or pass `classNames` with the classes to keep',
  400,
);

export const FolderTooLargeError = createError<'FEDCLR_DATA_FOLDER_TOO_LARGE', 413, [string, number, string, number, number]>(
  'FEDCLR_DATA_FOLDER_TOO_LARGE',
  'Image folder %s has %s candidate images; decoded at %s (height x width x channels) they take %s bytes, ' +
    'above the memory limit of %s bytes (images are held in memory, not streamed). Raise the limit ' +
    '(maxBytes), read the images smaller, or use part of the folder',
  413,
);

export const ImageDecodeError = createError<'FEDCLR_DATA_IMAGE_DECODE_FAILED', 422, [string, Cause?]>(
  'FEDCLR_DATA_IMAGE_DECODE_FAILED',
  'Could not decode image: %s',
  422,
);

export const FolderReadError = createError<'FEDCLR_DATA_FOLDER_READ_FAILED', 500, [string, string, Cause?]>(
  'FEDCLR_DATA_FOLDER_READ_FAILED',
  'Could not list image folder %s: %s',
  500,
);

// --- Datasets -----------------------------------------------------------------------------------

export const DatasetInvalidError = createError<'FEDCLR_DATA_DATASET_INVALID', 400, [string]>(
  'FEDCLR_DATA_DATASET_INVALID',
  'Invalid dataset operation: %s',
  400,
);

// --- Partitioners -------------------------------------------------------------------------------

// --- Train/test splits --------------------------------------------------------------------------

export const SplitInvalidError = createError<'FEDCLR_DATA_SPLIT_INVALID', 400, [string]>(
  'FEDCLR_DATA_SPLIT_INVALID',
  'Cannot split the dataset into train and test: %s',
  400,
);

export const PartitionInvalidOptionError = createError<'FEDCLR_DATA_PARTITION_INVALID_OPTION', 400, [string]>(
  'FEDCLR_DATA_PARTITION_INVALID_OPTION',
  'Invalid partition option: %s',
  400,
);

export const PartitionInvalidLabelsError = createError<'FEDCLR_DATA_PARTITION_INVALID_LABELS', 400, [string]>(
  'FEDCLR_DATA_PARTITION_INVALID_LABELS',
  'Invalid labels for partitioning: %s',
  400,
);

export const PartitionNotEnoughExamplesError = createError<
  'FEDCLR_DATA_PARTITION_NOT_ENOUGH_EXAMPLES',
  400,
  [number, number, string, number]
>(
  'FEDCLR_DATA_PARTITION_NOT_ENOUGH_EXAMPLES',
  'Cannot give %s clients at least %s %s each from only %s; use fewer clients or a smaller minimum',
  400,
);

export const PartitionMinSizeUnmetError = createError<
  'FEDCLR_DATA_PARTITION_MIN_SIZE_UNMET',
  422,
  [number, number, number, number]
>(
  'FEDCLR_DATA_PARTITION_MIN_SIZE_UNMET',
  'Dirichlet(alpha=%s) partition left some client with fewer than %s examples after %s draws ' +
    '(smallest client: %s); raise alpha, lower minPerClient, use fewer clients, or raise maxAttempts',
  422,
);
