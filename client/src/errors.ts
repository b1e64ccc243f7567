import { ErrorCode, type ErrorBody } from './contract';

/** An error of the contract's shape, from any transport, thrown or rejected by the SDK. */
export class ChatError extends Error {
  override readonly name = 'ChatError';

  constructor(
    readonly body: ErrorBody,
    /** The HTTP status when the error came from REST. */
    readonly status?: number,
    /**
     * False for a REST answer without the contract's error body (a proxy's
     * or a login wall's page), whose `body` was made up from the status.
     */
    readonly fromService = true,
  ) {
    super(body.message);
  }

  get code(): ErrorBody['code'] {
    return this.body.code;
  }
}

/** Errors that no retry can fix: the request itself is wrong or not allowed. */
const FINAL_CODES: ReadonlySet<ErrorBody['code']> = new Set([
  ErrorCode.ValidationFailed,
  ErrorCode.NotFound,
  ErrorCode.Forbidden,
  ErrorCode.PayloadTooLarge,
]);

export function isFinalError(body: ErrorBody): boolean {
  return FINAL_CODES.has(body.code);
}

/**
 * INTERNAL answers a request (a message, a join) may get before the SDK stops
 * retrying it: a server that fails on it every time would otherwise be asked
 * for good, and a room's later messages would wait behind it.
 */
export const MAX_INTERNAL_ERRORS = 3;

/** What counts the INTERNAL answers of one request. */
export interface ServerFailures {
  internalErrors: number;
}

/**
 * Whether a refusal ends the retries of what it refused: a final one, or the
 * `MAX_INTERNAL_ERRORS`th INTERNAL in a row, counted in `failures` (any other
 * refusal starts the count again).
 */
export function endsRetries(error: ErrorBody, failures: ServerFailures): boolean {
  if (isFinalError(error)) return true;
  if (error.code !== ErrorCode.Internal) {
    failures.internalErrors = 0;
    return false;
  }
  failures.internalErrors += 1;
  return failures.internalErrors >= MAX_INTERNAL_ERRORS;
}

const ERROR_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** Whether a value received from the server has the contract's error shape. */
export function isErrorBody(value: unknown): value is ErrorBody {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<Record<keyof ErrorBody, unknown>>;
  return (
    typeof candidate.code === 'string' &&
    ERROR_CODES.has(candidate.code) &&
    typeof candidate.message === 'string'
  );
}

/** A contract error for failures that happen on the client side (timeouts, lost connections). */
export function clientError(code: ErrorBody['code'], message: string): ErrorBody {
  return { code, message, details: [] };
}

/** The contract's error a failure carries, or UNAVAILABLE naming it. */
export function errorBodyOf(error: unknown): ErrorBody {
  return error instanceof ChatError ? error.body : clientError('UNAVAILABLE', String(error));
}

/**
 * Reports the failures of work the caller does not await, each once per
 * context however many callers wait on it: every message held behind a gap
 * shares one fill. One error may fail the work of several contexts (rooms
 * waiting on one token request), and is reported for each.
 */
export function failureReporter<Context>(
  report: (error: ErrorBody, context: Context) => void,
): (work: Promise<unknown>, context: Context) => void {
  const reported = new WeakMap<object, Set<Context>>();
  return (work, context) => {
    work.catch((error: unknown) => {
      if (typeof error === 'object' && error !== null) {
        const contexts = reported.get(error) ?? new Set<Context>();
        if (contexts.has(context)) return;
        reported.set(error, contexts.add(context));
      }
      report(errorBodyOf(error), context);
    });
  };
}

/** What a call made after `close()` gets, until `connect()` again. */
export const closedError = () =>
  new ChatError(clientError(ErrorCode.Unavailable, 'The client was closed'));
