import { Backoff, type BackoffOptions } from './backoff';
import { TypedEmitter } from './emitter';
import { ChatError } from './errors';
import { ErrorCode, type ErrorBody } from './contract';
import type { ConnectionState, TokenProvider } from './connection-state';
import { withTimeout } from './time-limit';

export interface ReconnectorOptions {
  token: TokenProvider;
  backoff?: Partial<BackoffOptions>;
  /** A token provider that has not answered by then failed the attempt. */
  tokenTimeoutMs?: number;
  /** Starts one connection attempt with a fresh token; its outcome is reported back. */
  open(token: string): void;
}

/** How long a token provider may take, wherever the SDK asks it. */
export const DEFAULT_TOKEN_TIMEOUT_MS = 15_000;

/**
 * The reconnection policy shared by the Socket.IO and raw WebSocket clients:
 * a fresh token for every attempt, jittered backoff after a loss, and one
 * immediate retry with a re-issued token after an authentication refusal —
 * a second refusal in a row stops for good instead of storming the server.
 */
export class Reconnector extends TypedEmitter<{ state: ConnectionState }> {
  private current: ConnectionState = { status: 'offline', reason: 'not-started' };
  private readonly backoff: Backoff;
  private readonly tokenTimeoutMs: number;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Set once the token provider was asked again after a refusal. */
  private authRetried = false;
  /** Tells stale token lookups apart from the current attempt. */
  private generation = 0;
  /** The wait for the token provider of the attempt under way; stopped, it waits no more. */
  private tokenWait = new AbortController();

  constructor(private readonly options: ReconnectorOptions) {
    super();
    this.backoff = new Backoff(options.backoff);
    this.tokenTimeoutMs = options.tokenTimeoutMs ?? DEFAULT_TOKEN_TIMEOUT_MS;
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** Whether the client wants a connection (it is connected or working on it). */
  get active(): boolean {
    return ['connecting', 'connected', 'reconnecting'].includes(this.current.status);
  }

  start(): void {
    if (this.active) return;
    this.authRetried = false;
    this.backoff.reset();
    this.attempt();
  }

  /**
   * Skips the wait of a pending retry, or starts again after giving up, with
   * all its retries. A client never started, or stopped, stays so: only
   * `start()` starts it.
   */
  retryNow(): void {
    const { status } = this.current;
    if (status === 'connected' || status === 'connecting') return;
    if (status === 'offline' && this.current.reason !== 'retries-exhausted') return;
    if (status !== 'reconnecting') this.backoff.reset();
    this.clearRetry();
    this.authRetried = false;
    this.attempt();
  }

  stop(): void {
    this.clearRetry();
    this.tokenWait.abort();
    this.generation += 1;
    this.setState({ status: 'offline', reason: 'closed' });
  }

  succeeded(): void {
    this.authRetried = false;
    this.backoff.connected();
    this.setState({ status: 'connected' });
  }

  /** The connection dropped or an attempt failed for a reason a retry may cure. */
  lost(): void {
    if (!this.active || this.retryTimer !== undefined) return;
    this.backoff.disconnected();
    const delay = this.backoff.next();
    if (delay === null) {
      this.setState({ status: 'offline', reason: 'retries-exhausted' });
      return;
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.attempt();
    }, delay);
    this.setState({
      status: 'reconnecting',
      attempt: this.backoff.attempt,
      retryInMs: delay,
      retryAt: Date.now() + delay,
    });
  }

  /** The server refused the token. */
  rejected(error: ErrorBody): void {
    if (!this.active) return;
    this.backoff.disconnected();
    if (this.authRetried) {
      this.clearRetry();
      this.setState({ status: 'unauthorized', error });
      return;
    }
    this.authRetried = true;
    this.clearRetry();
    this.attempt();
  }

  private attempt(): void {
    const generation = ++this.generation;
    this.setState({ status: 'connecting', attempt: this.backoff.attempt });
    const token = Promise.resolve().then(() => this.options.token());
    this.tokenWait.abort();
    this.tokenWait = new AbortController();
    withTimeout(token, this.tokenTimeoutMs, undefined, this.tokenWait.signal).then(
      (token) => {
        if (generation === this.generation) this.openWith(token);
      },
      (error: unknown) => {
        if (generation !== this.generation) return;
        // A refresh the service refused (the session ended) is a refused token: no retry cures it.
        if (error instanceof ChatError && error.code === ErrorCode.Unauthorized)
          this.rejected(error.body);
        // It failed otherwise, or hung (a refresh call on a network gone): a retry may cure it.
        else this.lost();
      },
    );
  }

  /** A connection that cannot even be made (a malformed URL) is retried like a lost one. */
  private openWith(token: string): void {
    try {
      this.options.open(token);
    } catch {
      this.lost();
    }
  }

  private clearRetry(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private setState(state: ConnectionState): void {
    this.current = state;
    this.emit('state', state);
  }
}
