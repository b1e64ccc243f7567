import type { LoggerService } from '@nestjs/common';
import type { Logger as Pino, Level } from 'pino';

const STACK_TRACE = /\n\s*at /;

/** `error('Failed', 'Error: Failed\n    at …', context?)` becomes an Error with that stack. */
function withStackAsError(message: unknown, params: unknown[]): [unknown, unknown[]] {
  const [stack, ...rest] = params;
  if (typeof message !== 'string' || typeof stack !== 'string' || !STACK_TRACE.test(stack))
    return [message, params];
  return [Object.assign(new Error(message), { stack }), rest];
}

/**
 * Nest's logger interface over one pino logger: `Logger.log(message, context)`
 * becomes `{"level":30,"context":"…","msg":"…"}`. Errors keep their stack under `err`.
 */
export class AppLogger implements LoggerService {
  constructor(private readonly pino: Pino) {}

  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }

  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }

  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }

  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }

  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  /**
   * Nest passes the context last, and its exception handlers call
   * `error(message, stack)`; anything else between is printf arguments.
   */
  private write(level: Level, rawMessage: unknown, rawParams: unknown[]): void {
    if (!this.pino.isLevelEnabled(level)) return;
    const [message, params] = withStackAsError(rawMessage, rawParams);
    const fields: Record<string, unknown> = {};
    if (params.length > 0) fields.context = params.at(-1);
    const args = params.slice(0, -1);
    if (message instanceof Error) {
      fields.err = message;
      this.pino[level](fields, message.message, ...args);
    } else if (typeof message === 'object' && message !== null) {
      this.pino[level]({ ...fields, ...message }, ...(args as [string?]));
    } else {
      this.pino[level](fields, String(message), ...args);
    }
  }
}
