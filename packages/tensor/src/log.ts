// One pino logger for the library (fastify's logger is pino too, so apps can pass theirs).
import { pino, type Logger } from 'pino';

export type { Logger };

let current: Logger | undefined;

/** The logger used by fedclr libraries: JSON lines on stderr, level from FEDCLR_LOG_LEVEL. */
export function getLogger(): Logger {
  current ??= pino({ name: 'fedclr', level: process.env.FEDCLR_LOG_LEVEL ?? 'info' }, pino.destination(2));
  return current;
}

/** Routes library logs through the caller's logger (e.g. `fastify.log`). */
export function setLogger(logger: Logger): void {
  current = logger;
}
