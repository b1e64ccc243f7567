import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { AppException } from '@app/common/errors/app.exception';
import type { AllConfig } from '@app/config/app-config';
import { RedisService } from '@app/redis/redis.service';
import { GracefulShutdown } from './graceful-shutdown.service';

/* One sorted set per user, of their connections on every node, scored by
 * expiry: a dead node's connections stop counting once they expire. */
const ACQUIRE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`;

/**
 * Caps each user's open live connections, on every transport and, with
 * Redis, over all nodes. Without Redis (or while it is away) it counts this
 * node's connections only.
 */
@Injectable()
export class ConnectionTracker implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ConnectionTracker.name);
  /** userId → this node's connection ids */
  private readonly local = new Map<string, Set<string>>();
  private heartbeat?: NodeJS.Timeout;

  constructor(
    private readonly config: ConfigService<AllConfig, true>,
    private readonly redis: RedisService,
    private readonly shutdown: GracefulShutdown,
  ) {}

  onModuleInit(): void {
    if (!this.redis.enabled) return;
    this.heartbeat = setInterval(() => void this.refresh(), this.ttlMs / 3);
    this.heartbeat.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.heartbeat);
  }

  /**
   * Reserves a slot for the connection; RATE_LIMITED when all of the user's
   * are taken, UNAVAILABLE while the node drains (a keep-alive connection
   * still reaches it after the listener closed, and would hold the exit up).
   */
  async acquire(userId: string, connectionId: string): Promise<void> {
    if (this.shutdown.draining) throw AppException.unavailable('The server is shutting down');
    const granted = this.redis.enabled
      ? await this.acquireShared(userId, connectionId)
      : this.localCount(userId) < this.max;
    if (!granted) throw AppException.rateLimited('Too many open connections for this user');
    const mine = this.local.get(userId) ?? new Set<string>();
    mine.add(connectionId);
    this.local.set(userId, mine);
  }

  release(userId: string, connectionId: string): void {
    const mine = this.local.get(userId);
    mine?.delete(connectionId);
    if (mine?.size === 0) this.local.delete(userId);
    if (this.redis.enabled) {
      this.redis.client.zRem(this.key(userId), connectionId).catch(() => undefined);
    }
  }

  private async acquireShared(userId: string, connectionId: string): Promise<boolean> {
    try {
      const now = Date.now();
      const args = [now, this.max, now + this.ttlMs, connectionId, this.ttlMs].map(String);
      const granted = await this.redis.answered(
        this.redis.client.eval(ACQUIRE, { keys: [this.key(userId)], arguments: args }),
      );
      return granted === 1;
    } catch (error) {
      this.logger.warn(`Connection cap checked on this node only: ${(error as Error).message}`);
      return this.localCount(userId) < this.max;
    }
  }

  /** Keeps this node's connections counted; those of a dead node expire. */
  private async refresh(): Promise<void> {
    const expiresAt = Date.now() + this.ttlMs;
    try {
      await Promise.all(
        [...this.local].map(async ([userId, connections]) => {
          await this.redis.client.zAdd(
            this.key(userId),
            [...connections].map((value) => ({ score: expiresAt, value })),
          );
          await this.redis.client.pExpire(this.key(userId), this.ttlMs);
        }),
      );
    } catch (error) {
      this.logger.warn(`Connection heartbeat failed: ${(error as Error).message}`);
    }
  }

  private localCount(userId: string): number {
    return this.local.get(userId)?.size ?? 0;
  }

  private key(userId: string): string {
    return this.redis.key('connections', userId);
  }

  private get max(): number {
    return this.config.get('realtime.maxSocketsPerUser', { infer: true });
  }

  private get ttlMs(): number {
    return this.config.get('redis.presenceTtlMs', { infer: true });
  }
}
