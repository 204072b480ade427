// Error catalog of the fedclr command.
import createError from '@fastify/error';

export const UsageError = createError<'FEDCLR_CLI_USAGE', 400, [string]>('FEDCLR_CLI_USAGE', '%s (see `fedclr --help`)', 400);
export const UnknownCommandError = createError<'FEDCLR_CLI_UNKNOWN_COMMAND', 400, [string, string]>(
  'FEDCLR_CLI_UNKNOWN_COMMAND',
  "Unknown command '%s'; commands: %s",
  400,
);
