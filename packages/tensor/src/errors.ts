// Error catalog of @fedclr/tensor: stable codes, grouped by concern, with HTTP status attached.
import createError from '@fastify/error';

// Backend selection
export const BackendUnknownError = createError(
  'FEDCLR_TENSOR_BACKEND_UNKNOWN',
  "Unknown tfjs backend '%s' in FEDCLR_BACKEND; use one of: node, wasm, cpu",
  500,
);
export const BackendUnavailableError = createError(
  'FEDCLR_TENSOR_BACKEND_UNAVAILABLE',
  "The tfjs backend '%s' was requested but could not start: %s",
  500,
);

// Weights and manifests
export const ManifestMismatchError = createError(
  'FEDCLR_TENSOR_MANIFEST_MISMATCH',
  'Weights do not match the model: %s',
  400,
);
export const WeightLengthError = createError(
  'FEDCLR_TENSOR_WEIGHT_LENGTH',
  'Flat weight vector has %d values but the manifest describes %d',
  400,
);
export const UnsupportedDtypeError = createError(
  'FEDCLR_TENSOR_UNSUPPORTED_DTYPE',
  "Weight '%s' has dtype '%s'; only float32 and int32 weights can be flattened",
  400,
);

// Model files
export const ModelFileError = createError(
  'FEDCLR_TENSOR_MODEL_FILE',
  'Cannot read the tfjs model at %s: %s',
  400,
);

// Kernels
export const NativeSettingError = createError(
  'FEDCLR_TENSOR_NATIVE_SETTING',
  "FEDCLR_NATIVE_GEMM='%s' is not a setting; use 1 (require the native kernels), 0 (wasm kernels only) or leave it unset (native when built)",
  500,
);
export const NativeUnavailableError = createError(
  'FEDCLR_TENSOR_NATIVE_UNAVAILABLE',
  'FEDCLR_NATIVE_GEMM=1 requires the native kernels, but %s',
  500,
);
export const KernelShapeError = createError(
  'FEDCLR_TENSOR_KERNEL_SHAPE',
  'Kernel %s cannot handle these shapes: %s',
  500,
);
