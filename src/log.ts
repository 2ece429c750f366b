// The one logger of the process (pino). Logs go to stderr so that stdout stays clean for
// transcripts and machine-readable output.
import { pino } from 'pino';

export const log = pino(
  { level: process.env.EARSHOT_LOG_LEVEL ?? 'info', base: undefined },
  pino.destination(2),
);
