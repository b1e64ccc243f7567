import { Logger } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type { RedisService } from '@app/redis/redis.service';
import { KeyedInOrder } from '@app/common/serial-queue';
import {
  MemoryThrottlerStorage,
  type RefundableThrottlerStorage,
  type ThrottlerStorageRecord,
} from './memory-throttler.storage';

/** key, ttl, limit, blockDuration, throttlerName */
type IncrementRequest = Parameters<ThrottlerStorage['increment']>;

/*
 * Fixed window per key; once over the limit, the key stays blocked for the
 * block duration. Nothing counts while it is blocked, and its window ends
 * with the block: a client that keeps trying through a block would otherwise
 * fill the next window before the block ends, and be blocked again for good.
 */
const INCREMENT = `
local blocked = redis.call('PTTL', KEYS[2])
if blocked > 0 then
  return { tonumber(redis.call('GET', KEYS[1]) or '0'), redis.call('PTTL', KEYS[1]), blocked }
end
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if hits > tonumber(ARGV[2]) and tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  blocked = tonumber(ARGV[3])
end
return { hits, redis.call('PTTL', KEYS[1]), blocked }`;

/** One hit fewer, unless blocked; a window emptied so ends, as in memory. */
const REFUND = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local hits = tonumber(redis.call('GET', KEYS[1]) or '0')
if hits <= 1 then redis.call('DEL', KEYS[1]) else redis.call('DECR', KEYS[1]) end
return hits`;

/** How long the node counts alone after Redis failed, before it asks Redis again. */
export const LOCAL_COUNTING_MS = 5_000;

/**
 * The throttler's counters in Redis, so that a budget is one budget over all
 * nodes. While Redis is away, each node counts in its own memory: for
 * `LOCAL_COUNTING_MS` after a failure, then one request asks Redis again
 * while the others go on counting locally until it answers, so that a Redis
 * that does not answer delays one request per period rather than every one
 * (and the log says so once per change, not per request).
 */
export class RedisThrottlerStorage implements RefundableThrottlerStorage {
  private readonly logger = new Logger(RedisThrottlerStorage.name);
  private readonly fallback = new MemoryThrottlerStorage();
  private countingLocallyUntil: number | undefined;
  /** One request is asking Redis again after a period of counting locally. */
  private probing = false;
  private readonly answers = new KeyedInOrder<string>();

  constructor(private readonly redis: RedisService) {}

  /**
   * Answers each key's requests in the order they came: a request counted
   * locally at once must not overtake one still waiting on a stalled Redis
   * (a user's messages to a room would then be stored out of the order
   * sent). Redis answers a connection's commands in order anyway.
   */
  increment(...request: IncrementRequest): Promise<ThrottlerStorageRecord> {
    return this.answers.inOrder(request[0], this.count(...request));
  }

  private count(...request: IncrementRequest): Promise<ThrottlerStorageRecord> {
    const [key, ttl, limit, blockDuration, throttlerName] = request;
    return this.sharedOrLocal(
      async () => {
        const args = [String(ttl), String(limit), String(blockDuration)];
        const [totalHits, ttlMs, blockedMs] = (await this.redis.answered(
          this.redis.client.eval(INCREMENT, {
            keys: this.keysOf(throttlerName, key),
            arguments: args,
          }),
        )) as [number, number, number];
        return {
          totalHits,
          timeToExpire: Math.ceil(Math.max(ttlMs, 0) / 1000),
          isBlocked: blockedMs > 0,
          timeToBlockExpire: Math.ceil(Math.max(blockedMs, 0) / 1000),
        };
      },
      () => this.fallback.increment(...request),
    );
  }

  /** Gives back one hit where it is counted now: Redis, or this node while Redis is away. */
  refund(key: string, throttlerName: string): Promise<void> {
    return this.sharedOrLocal(
      async () => {
        await this.redis.answered(
          this.redis.client.eval(REFUND, { keys: this.keysOf(throttlerName, key) }),
        );
      },
      () => this.fallback.refund(key, throttlerName),
    );
  }

  private keysOf(throttlerName: string, key: string): string[] {
    return [
      this.redis.key('throttle', throttlerName, key),
      this.redis.key('throttle', throttlerName, key, 'blocked'),
    ];
  }

  private async sharedOrLocal<T>(shared: () => Promise<T>, local: () => Promise<T>): Promise<T> {
    if (this.countingLocally()) return local();
    try {
      const answer = await shared();
      this.sharedAgain();
      return answer;
    } catch (error) {
      this.countAlone(error as Error);
      return local();
    }
  }

  /** False for the request that is to ask Redis: the first one after each local period. */
  private countingLocally(): boolean {
    if (this.countingLocallyUntil === undefined) return false;
    if (this.probing || performance.now() < this.countingLocallyUntil) return true;
    this.probing = true;
    return false;
  }

  private countAlone(error: Error): void {
    if (this.countingLocallyUntil === undefined)
      this.logger.warn(`Rate limits counted on this node only: ${error.message}`);
    this.countingLocallyUntil = performance.now() + LOCAL_COUNTING_MS;
    this.probing = false;
  }

  private sharedAgain(): void {
    if (this.countingLocallyUntil === undefined) return;
    this.countingLocallyUntil = undefined;
    this.probing = false;
    this.logger.log('Rate limits shared over Redis again');
  }
}
