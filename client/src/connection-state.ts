import type { ErrorBody } from './contract';

/** Returns the current access token; called again before every (re)connection. */
export type TokenProvider = () => string | Promise<string>;

/** Where a client's connection stands; every change is emitted as a `state` event. */
export type ConnectionState =
  | { status: 'connecting'; attempt: number }
  | { status: 'connected' }
  | {
      status: 'reconnecting';
      /** 1 for the first retry after a loss. */
      attempt: number;
      retryInMs: number;
      /** Epoch milliseconds of the next try, for countdowns. */
      retryAt: number;
    }
  | { status: 'offline'; reason: 'not-started' | 'closed' | 'retries-exhausted' }
  | { status: 'unauthorized'; error: ErrorBody };

export type ConnectionStatus = ConnectionState['status'];
