// Error catalog of @fedclr/privacy. Every error thrown on purpose by this package is one of these
// constructors, so callers branch on `err.code` (stable) rather than on messages.
// Status codes: 400 bad input or saved state, 422 a budget no allowed noise level can meet,
// 500 a numerical failure (a bug or an input far outside the tested range).
import createError from '@fastify/error';

/** An argument is out of its domain. Args: (parameter name, what is wrong and what is allowed). */
export const InvalidArgumentError = createError<
  'FEDCLR_PRIVACY_INVALID_ARGUMENT',
  400,
  [string, string]
>('FEDCLR_PRIVACY_INVALID_ARGUMENT', 'Invalid privacy-accounting argument %s: %s', 400);

/** A saved accountant state cannot be loaded. Args: (field, what is wrong). */
export const StateInvalidError = createError<'FEDCLR_PRIVACY_STATE_INVALID', 400, [string, string]>(
  'FEDCLR_PRIVACY_STATE_INVALID',
  'Refusing to load RDP accountant state: %s %s (the file is corrupt or from another version)',
  400,
);

/** No noise multiplier up to the allowed maximum meets the budget. Args: (budget, what to change). */
export const TargetUnreachableError = createError<
  'FEDCLR_PRIVACY_TARGET_UNREACHABLE',
  422,
  [string, string]
>('FEDCLR_PRIVACY_TARGET_UNREACHABLE', 'Privacy budget %s is unreachable: %s', 422);

/** A log-space computation broke down (NaN, negative difference, no convergence). Args: (details). */
export const NumericalError = createError<'FEDCLR_PRIVACY_NUMERICAL', 500, [string]>(
  'FEDCLR_PRIVACY_NUMERICAL',
  'RDP computation failed numerically: %s',
  500,
);

/** Stable codes, for exhaustive switches in callers. */
export const ErrorCodes = {
  INVALID_ARGUMENT: 'FEDCLR_PRIVACY_INVALID_ARGUMENT',
  STATE_INVALID: 'FEDCLR_PRIVACY_STATE_INVALID',
  TARGET_UNREACHABLE: 'FEDCLR_PRIVACY_TARGET_UNREACHABLE',
  NUMERICAL: 'FEDCLR_PRIVACY_NUMERICAL',
} as const;
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];
