/**
 * Structured logging: one JSON event per line (pino), a fixed vocabulary of keys
 * (component, node, vtep, op, err, durationMs), and secrets redacted wherever they appear.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'password', '*.password', 'token', '*.token', 'authorization', '*.authorization',
  'headers.authorization', '*.headers.authorization', 'headers.Authorization', '*.headers.Authorization',
  'bearerToken', '*.bearerToken',
];

export interface LogOptions {
  readonly component: string;
  readonly level?: string;
  /** Where to write; defaults to stderr so stdout stays free for command output (JSON, tables). */
  readonly destination?: NodeJS.WritableStream;
}

export function createLogger(opts: LogOptions): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { component: opts.component },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination ?? pino.destination({ fd: 2, sync: true }),
  );
}

/** A logger that drops everything (for tests that do not look at logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
