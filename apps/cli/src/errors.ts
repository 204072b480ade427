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
export const MemoryLimitError = createError<'FEDCLR_CLI_MEMORY_LIMIT', 413, [string, string, { cause: unknown }?]>(
  'FEDCLR_CLI_MEMORY_LIMIT',
  '%s. On the command line: raise the limit with --max-memory MB (now %s MB), or read the images smaller (--size)',
  413,
);
