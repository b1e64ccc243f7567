import {
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { createClient, type RedisClientType } from 'redis';
import { oneAtATime, withinTime } from '@app/common/time-limit';
import type { AllConfig } from '@app/config/app-config';

const CONNECT_TIMEOUT_MS = 5_000;
/** How long start-up waits for Redis before it gives up, naming the setting. */
const STARTUP_WAIT_MS = 15_000;
const MAX_RECONNECT_DELAY_MS = 2_000;

type Client = RedisClientType;

/** What the service keeps of each connection. */
interface Connection {
  /** When it last showed a sign of life (an answer to a ping, ready, an attempt of its own), on the monotonic clock. */
  heardAt: number;
  /**
   * Connected, its setup (HELLO, subscriptions) not yet answered. Otherwise,
   * when not ready, the client waits on its own connect timeout or retry
   * delay, and is left to them: made anew then, its old attempt would go on
   * beside the new one.
   */
  inSetup: boolean;
  /** Lost for a reason the client does not see itself (it went silent). */
  lost(reason: string): void;
}

/**
 * The node's Redis connections: one for commands and publishing, one for
 * subscriptions. Commands fail fast while Redis is away (no offline queue),
 * and those of live paths (`answered`) after REDIS_COMMAND_TIMEOUT_MS while
 * it does not answer, so callers degrade to local behaviour; both reconnect
 * on their own.
 */
/** What a trouble listener hears: a connection failed, or one that had failed is back. */
export enum RedisTrouble {
  Lost = 'lost',
  Restored = 'restored',
}

@Injectable()
export class RedisService implements BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger(RedisService.name);
  private commandClient?: Client;
  private subscriberClient?: Client;
  private closed = false;
  private lastError?: string;
  private readonly troubleListeners = new Set<(trouble: RedisTrouble) => void>();
  private readonly connections = new Map<Client, Connection>();
  private silenceWatch?: NodeJS.Timeout;
  /** When the silence watch last ran. */
  private watchedAt = 0;

  /** Read once: `answered` runs on live paths. */
  private readonly timeoutMs: number;
  private readonly silentAfterMs: number;

  constructor(private readonly config: ConfigService<AllConfig, true>) {
    this.timeoutMs = config.get('redis.commandTimeoutMs', { infer: true });
    this.silentAfterMs = config.get('redis.silentAfterMs', { infer: true });
  }

  /** Pings every third of the silence allowed: one is answered well within it. */
  private get pingIntervalMs(): number {
    return Math.floor(this.silentAfterMs / 3);
  }

  get enabled(): boolean {
    return this.config.get('redis.url', { infer: true }) !== undefined;
  }

  get client(): Client {
    if (!this.commandClient) throw new Error('Redis is not connected');
    return this.commandClient;
  }

  get subscriber(): Client {
    if (!this.subscriberClient) throw new Error('Redis is not connected');
    return this.subscriberClient;
  }

  /** Both connections up, and neither silent. */
  get ready(): boolean {
    return [this.commandClient, this.subscriberClient].every(
      (client) => client?.isReady && !this.silent(client),
    );
  }

  /**
   * The answer to a command, or a failure once it has waited
   * REDIS_COMMAND_TIMEOUT_MS: the client's own timeout covers only the wait
   * before a command is written, not a Redis that takes it and never answers.
   */
  answered<T>(command: Promise<T>): Promise<T> {
    return withinTime(command, this.timeoutMs, () => new Error('Redis did not answer in time'));
  }

  /**
   * `listener` runs when a connection to Redis fails and when it is back:
   * for what must not trust timings that Redis's absence may have upset.
   */
  onTrouble(listener: (trouble: RedisTrouble) => void): () => void {
    this.troubleListeners.add(listener);
    return () => this.troubleListeners.delete(listener);
  }

  /** Every key and channel of the service lives under the configured prefix. */
  key(...parts: string[]): string {
    return `${this.config.get('redis.keyPrefix', { infer: true })}${parts.join(':')}`;
  }

  /**
   * Connects both clients once; start-up waits for them, then they reconnect
   * by themselves. A Redis that cannot be reached at start stops the start,
   * saying why, rather than leaving a process that never listens.
   */
  async connect(): Promise<void> {
    if (!this.enabled || this.commandClient) return;
    this.commandClient = this.createClient('commands');
    this.subscriberClient = this.commandClient.duplicate();
    this.listen(this.subscriberClient, 'subscriber');
    const connected = Promise.all([this.commandClient.connect(), this.subscriberClient.connect()]);
    try {
      await withinTime(connected, STARTUP_WAIT_MS, () => this.unreachableError());
    } catch (error) {
      this.abandon();
      throw error;
    }
    this.watchedAt = performance.now();
    this.silenceWatch = setInterval(() => this.reconnectSilent(), this.pingIntervalMs);
    this.silenceWatch.unref();
  }

  /**
   * A connection that carries nothing yet never closes (a proxy or firewall
   * in between that lost its other side) raises no error: its pings go
   * unanswered, and commands and deliveries with them. It is dropped and made
   * again, which brings the subscriptions back and, once ready, what
   * follows a lost connection (the deliveries' catch-up).
   */
  private reconnectSilent(): void {
    if (this.closed) return;
    this.forgiveOwnStall();
    for (const [client, connection] of this.connections) {
      if (!client.isOpen || !this.silent(client)) continue;
      connection.lost(`no sign of life for ${this.silentAfterMs} ms`);
      connection.heardAt = performance.now();
      // A destroy says neither 'error' nor 'reconnecting': the next attempt is not in its setup yet.
      connection.inSetup = false;
      client.destroy();
      // On a later turn: a setup still under way learns of the destroy only then, and would
      // otherwise go on, on a socket of its own that no later destroy reaches (both reading
      // into one client: every delivery and subscription twice). Failures to connect are
      // reported as errors, and retried, by the client itself.
      setImmediate(() => {
        if (!this.closed && !client.isOpen) client.connect().catch(() => undefined);
      });
    }
  }

  /**
   * A stalled event loop neither sent pings nor read their answers: every
   * connection would look silent after it, be made again, and have the node
   * catch every room up from storage. The time the stall took beyond one
   * round of this watch is not held against them; a connection silent before
   * and after it still ages by a round each round, and is caught.
   */
  private forgiveOwnStall(): void {
    const now = performance.now();
    const lateMs = now - this.watchedAt - this.pingIntervalMs;
    this.watchedAt = now;
    if (lateMs <= 0) return;
    for (const connection of this.connections.values())
      connection.heardAt = Math.min(now, connection.heardAt + lateMs);
  }

  /**
   * Nothing heard for the silence allowed: no answer to a ping when ready,
   * and, when not, neither its setup's end nor an attempt of its own (a
   * proxy that accepts the connection with nothing behind it).
   */
  private silent(client: Client): boolean {
    const connection = this.connections.get(client);
    if (!connection || !(client.isReady || connection.inSetup)) return false;
    return performance.now() - connection.heardAt > this.silentAfterMs;
  }

  /**
   * Before Socket.IO closes: its Redis adapter unsubscribes without waiting,
   * and a connection made anew meanwhile would fail those commands (dropped,
   * see `withCaughtCommands`, but to no purpose).
   */
  beforeApplicationShutdown(): void {
    clearInterval(this.silenceWatch);
  }

  /** Stops both clients' attempts to connect. */
  private abandon(): void {
    this.closed = true;
    for (const client of [this.commandClient, this.subscriberClient]) {
      try {
        client?.destroy();
      } catch {
        // Never connected: nothing to stop.
      }
    }
  }

  private unreachableError(): Error {
    const reason = this.lastError ? `: ${this.lastError}` : '';
    return new Error(
      `Redis at REDIS_URL did not answer within ${STARTUP_WAIT_MS / 1000} s${reason}`,
    );
  }

  async ping(timeoutMs: number): Promise<void> {
    await withinTime(this.pingOnce(), timeoutMs, () => new Error('Redis ping timed out'));
  }

  /** Probes share the ping still waiting for its answer rather than queue one each. */
  private readonly pingOnce = oneAtATime(() => this.client.ping());

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    clearInterval(this.silenceWatch);
    const clients = [this.commandClient, this.subscriberClient].filter(
      (client) => client !== undefined,
    );
    await Promise.allSettled(clients.map((client) => this.closeClient(client)));
  }

  /**
   * Politely: `close()` waits for the commands still pending. If Redis does
   * not answer, the client is left to the process exit rather than
   * destroyed: destroying it would fail those commands, and one whose
   * caller does not handle its failure would end the process with an
   * unhandled rejection.
   */
  private async closeClient(client: Client): Promise<void> {
    const closing = client.close().then(
      () => 'closed' as const,
      () => 'failed' as const,
    );
    const outcome = await withinTime(closing, this.timeoutMs, () => new Error('no answer')).catch(
      () => 'unanswered' as const,
    );
    if (outcome === 'failed') client.destroy();
    if (outcome === 'unanswered') {
      this.logger.warn('Redis did not answer: its connections are left to the exit');
      client.unref();
    }
  }

  private createClient(role: string): Client {
    const client: Client = createClient({
      url: this.config.get('redis.url', { infer: true }),
      disableOfflineQueue: true,
      pingInterval: this.pingIntervalMs,
      socket: {
        connectTimeout: CONNECT_TIMEOUT_MS,
        reconnectStrategy: (retries) =>
          this.closed ? false : Math.min(100 * 2 ** retries, MAX_RECONNECT_DELAY_MS),
      },
    });
    this.listen(client, role);
    return client;
  }

  private listen(client: Client, role: string): void {
    let healthy = true;
    const troubled = (trouble: RedisTrouble) => {
      for (const listener of this.troubleListeners) listener(trouble);
    };
    const lost = (reason: string) => {
      this.lastError = reason;
      if (healthy) this.logger.warn(`Redis ${role} connection lost: ${reason}`);
      healthy = false;
      troubled(RedisTrouble.Lost);
    };
    const connection: Connection = { heardAt: performance.now(), inSetup: false, lost };
    this.connections.set(client, connection);
    const heard = () => (connection.heardAt = performance.now());
    const setUpEnded = () => {
      heard();
      connection.inSetup = false;
    };
    client.on('error', (error: Error) => {
      setUpEnded();
      lost(error.message);
    });
    // Signs of life: an answer, or the client's own attempts to connect again.
    client.on('ping-interval', heard);
    client.on('reconnecting', setUpEnded);
    client.on('connect', () => {
      heard();
      connection.inSetup = true;
    });
    client.on('ready', () => {
      setUpEnded();
      if (healthy) return;
      this.logger.log(`Redis ${role} connection restored`);
      healthy = true;
      troubled(RedisTrouble.Restored);
    });
  }
}
