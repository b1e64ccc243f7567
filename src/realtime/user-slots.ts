import { Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { ConfigService } from '@nestjs/config';
import { AppException } from '@app/common/errors/app.exception';
import { nonOverlapping } from '@app/common/non-overlapping';
import type { AllConfig } from '@app/config/app-config';
import { REDIS_NOW_MS } from '@app/redis/redis-time';
import type { RedisService } from '@app/redis/redis.service';

/* One sorted set per user, of their holders on every node, scored by
 * expiry on Redis's clock (the nodes' clocks may disagree): a dead node's
 * holders stop counting once they expire. ARGV: max, holder, life in ms. */
const ACQUIRE = `${REDIS_NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`;

/* The heartbeat of one user's holders on this node, in one script: a key whose
 * expiry a lost connection skipped would stay for good. ARGV: life in ms, then
 * the holders. */
const REFRESH = `${REDIS_NOW_MS}
local expiry = now + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], expiry, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 0`;

/**
 * A cap on how many of something each user holds open at once (connections,
 * event streams), over all nodes with Redis. Without Redis, or while it is
 * away, it counts this node's only.
 */
export abstract class UserSlots implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(this.constructor.name);
  /** userId → the ids this node holds */
  private readonly local = new Map<string, Set<string>>();
  private heartbeat?: NodeJS.Timeout;

  /**
   * @param keyName the name of the users' Redis sets, under the app's prefix
   * @param noun what the slots are held by, plural, for messages
   */
  protected constructor(
    protected readonly config: ConfigService<AllConfig, true>,
    private readonly redis: RedisService,
    private readonly keyName: string,
    private readonly noun: string,
  ) {}

  /** How many slots each user has. */
  protected abstract get max(): number;

  onModuleInit(): void {
    if (!this.redis.enabled) return;
    this.heartbeat = setInterval(
      nonOverlapping(() => this.refresh()),
      this.ttlMs / 3,
    );
    this.heartbeat.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.heartbeat);
  }

  /** Takes a slot for `holderId`; RATE_LIMITED when all of the user's are taken. */
  async acquire(userId: string, holderId: string): Promise<void> {
    const granted = this.redis.enabled
      ? await this.acquireShared(userId, holderId)
      : this.localCount(userId) < this.max;
    if (!granted) throw AppException.rateLimited(`Too many open ${this.noun} for this user`);
    const mine = this.local.get(userId) ?? new Set<string>();
    mine.add(holderId);
    this.local.set(userId, mine);
  }

  release(userId: string, holderId: string): void {
    const mine = this.local.get(userId);
    mine?.delete(holderId);
    if (mine?.size === 0) this.local.delete(userId);
    if (this.redis.enabled) {
      this.redis.client.zRem(this.key(userId), holderId).catch(() => undefined);
    }
  }

  private async acquireShared(userId: string, holderId: string): Promise<boolean> {
    try {
      const args = [this.max, holderId, this.ttlMs].map(String);
      const granted = await this.redis.answered(
        this.redis.client.eval(ACQUIRE, { keys: [this.key(userId)], arguments: args }),
      );
      return granted === 1;
    } catch (error) {
      this.logger.warn(`Open ${this.noun} capped on this node only: ${(error as Error).message}`);
      return this.localCount(userId) < this.max;
    }
  }

  /** Keeps this node's slots counted; those of a dead node expire. */
  private async refresh(): Promise<void> {
    try {
      await Promise.all(
        [...this.local].map(([userId, holders]) =>
          this.redis.client.eval(REFRESH, {
            keys: [this.key(userId)],
            arguments: [String(this.ttlMs), ...holders],
          }),
        ),
      );
    } catch (error) {
      this.logger.warn(`Heartbeat of open ${this.noun} failed: ${(error as Error).message}`);
    }
  }

  private localCount(userId: string): number {
    return this.local.get(userId)?.size ?? 0;
  }

  private key(userId: string): string {
    return this.redis.key(this.keyName, userId);
  }

  private get ttlMs(): number {
    return this.config.get('redis.presenceTtlMs', { infer: true });
  }
}
