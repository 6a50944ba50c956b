import { pino, type Logger } from 'pino';

export type { Logger };

/** Structured logs. Tokens, codes, passwords and secrets are never passed in. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: undefined,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', '*.token', '*.secret', '*.password'],
      censor: '[redacted]',
    },
  });
}
