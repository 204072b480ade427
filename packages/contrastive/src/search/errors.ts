// Error catalog of embeddings files and similarity search. Every error thrown on purpose here is
// one of these constructors, so callers branch on `err.code`, not on messages.
import createError from '@fastify/error';

/** An embeddings file (.npz) cannot be read or written: missing, damaged, not fedclr's layout. Args: (path, what is wrong). */
export const EmbeddingsFileError = createError<'FEDCLR_SEARCH_EMBEDDINGS_FILE', 400, [string, string]>(
  'FEDCLR_SEARCH_EMBEDDINGS_FILE',
  'Cannot use the embeddings file %s: %s',
  400,
);

/** The approximate (HNSW) index beside an embeddings file is missing, damaged or stale. Args: (path, what is wrong). */
export const AnnIndexError = createError<'FEDCLR_SEARCH_ANN_INDEX', 400, [string, string]>(
  'FEDCLR_SEARCH_ANN_INDEX',
  'Cannot use the approximate index %s: %s (embed again to rebuild it, or search with --exact)',
  400,
);

/** A search or index option is out of its domain. Args: (option, what is wrong). */
export const SearchInvalidOptionError = createError<'FEDCLR_SEARCH_INVALID_OPTION', 400, [string, string]>(
  'FEDCLR_SEARCH_INVALID_OPTION',
  'Invalid search option %s: %s',
  400,
);

/** A query's width is not the index's. Args: (query width, index width). */
export const SearchDimensionMismatchError = createError<'FEDCLR_SEARCH_DIMENSION_MISMATCH', 400, [number, number]>(
  'FEDCLR_SEARCH_DIMENSION_MISMATCH',
  'The query has %d values but the index holds %d-wide embeddings',
  400,
);
