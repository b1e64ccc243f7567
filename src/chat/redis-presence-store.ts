import type { UserSummaryJson } from '@app/contract/models';
import { REDIS_NOW_MS } from '@app/redis/redis-time';
import { RedisTrouble, type RedisService } from '@app/redis/redis.service';
import {
  PresenceStore,
  type PresenceRefresh,
  type PresenceSweep,
  type RoomPresence,
} from './presence-store';

/** Entries per sweep script, so that one script keeps Redis busy only briefly. */
const SWEEP_BATCH = 500;
/** Sweep scripts per heartbeat at most: a dead node's 50 000 entries leave within one. */
const SWEEP_ROUNDS = 100;
/** Entries per heartbeat script: one script for all would keep Redis busy for long at many connections. */
const REFRESH_BATCH = 500;
/** How many presence lifetimes a swept user is remembered, to be announced again if their node returns. */
const SWEPT_MEMORY_TTLS = 20;
/** What LEAVE answers for an entry Redis lost with its data. */
const VANISHED = -2;
/**
 * Trouble postpones sweeps by an entry life each time, but not past this many
 * entry lives after it began (or Redis first came back from it): a Redis
 * that flaps for good would otherwise
 * keep a crashed node's users present in every room, for good.
 */
const MAX_SWEEP_POSTPONEMENT_TTLS = 3;

/* A connection's entry lives in the room's sorted set (to list who is here)
 * and in one global sorted set (to find expired entries quickly); both are
 * scored by expiry. A hash per room counts each user's connections, so that
 * "first in" and "last out" hold across nodes. Scripts keep the three in step,
 * with expiries on Redis's clock. */

/* ARGV[3]: the entry's life in ms. */
const ENTER = `${REDIS_NOW_MS}
local expiry = now + tonumber(ARGV[3])
local added = redis.call('ZADD', KEYS[1], expiry, ARGV[1])
redis.call('ZADD', KEYS[3], expiry, ARGV[2])
if added == 1 then return redis.call('HINCRBY', KEYS[2], ARGV[4], 1) end
return 0`;

/* The heartbeat of a batch of this node's entries: ENTER for each, and the
 * (1-based) positions of those that bring back a user whom a sweep took out
 * of the room (their node missed heartbeats, then came back), so that the
 * others hear they are here again; then of those that make a user present
 * whom Redis did not know of otherwise (their entry was never stored, or
 * lost with Redis's data). ARGV: key prefix, entry life in ms, then per
 * entry roomId, userId, member. */
const REFRESH = `${REDIS_NOW_MS}
local expiry = now + tonumber(ARGV[2])
local back = {}
local added = {}
for i = 3, #ARGV, 3 do
  local roomId, userId, member = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local roomKey = ARGV[1] .. 'presence:room:' .. roomId
  local position = (i - 3) / 3 + 1
  redis.call('ZADD', KEYS[1], expiry, roomId .. '|' .. member)
  if redis.call('ZADD', roomKey, expiry, member) == 1 then
    local count = redis.call('HINCRBY', ARGV[1] .. 'presence:count:' .. roomId, userId, 1)
    local swept = redis.call('ZREM', KEYS[2], roomId .. '|' .. userId) == 1
    if count == 1 and swept then table.insert(back, position) end
    if count == 1 and not swept then table.insert(added, position) end
  end
end
return {back, added}`;

/* -1: the entry was swept (its user announced gone then, or still here
 * through another entry); -2: it vanished with Redis's data, and the node
 * must tell. */
const LEAVE = `
redis.call('ZREM', KEYS[3], ARGV[2])
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  if redis.call('HEXISTS', KEYS[2], ARGV[4]) == 1 or redis.call('ZSCORE', KEYS[4], ARGV[5]) then
    return -1
  end
  return -2
end
local left = redis.call('HINCRBY', KEYS[2], ARGV[4], -1)
if left <= 0 then redis.call('HDEL', KEYS[2], ARGV[4]) end
return left`;

/* ARGV: key prefix, batch size, how long swept users are remembered in ms. */
const SWEEP = `${REDIS_NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[3]))
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[2])
local gone = {}
for _, entry in ipairs(expired) do
  redis.call('ZREM', KEYS[1], entry)
  local roomId, userId, rest = string.match(entry, '^([^|]+)|([^|]+)|(.+)$')
  local roomKey = ARGV[1] .. 'presence:room:' .. roomId
  local countKey = ARGV[1] .. 'presence:count:' .. roomId
  if redis.call('ZREM', roomKey, userId .. '|' .. rest) == 1 then
    local left = redis.call('HINCRBY', countKey, userId, -1)
    if left <= 0 then
      redis.call('HDEL', countKey, userId)
      redis.call('ZADD', KEYS[2], now, roomId .. '|' .. userId)
      table.insert(gone, entry)
    end
  end
end
return {#expired, gone}`;

/* The room's entries not yet expired. */
const LIVE_ENTRIES = `${REDIS_NOW_MS}
return redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')`;

/** What one sweep script did: entries it took out, and the users who left a room with them. */
interface SweptBatch {
  removed: number;
  gone: RoomPresence[];
}

/** What one heartbeat script reports: positions of the entries that brought users back, and added them. */
type RefreshedBatch = [back: number[], added: number[]];

interface Entry {
  roomId: string;
  user: UserSummaryJson;
  connectionId: string;
}

/**
 * Joins, leaves and presence queries answer live events, so they give up on a
 * Redis that does not answer (the caller then answers for the node). The
 * heartbeat and the sweep wait: their replies say whom to announce, and the
 * scripts change Redis whether or not anyone still listens.
 */
export class RedisPresenceStore extends PresenceStore {
  /**
   * Sweeps wait until then. After Redis was away or slow, every node's
   * entries may have expired meanwhile: a sweep must first give each node
   * a heartbeat, or it would announce all their users gone, then back.
   */
  private sweepsFrom = 0;
  /** When the trouble that postpones sweeps began; a sweep that runs ends it. */
  private troubledSince?: number;
  /** When Redis first came back during that trouble: a Redis that keeps coming back and going away postpones no further. */
  private restoredSince?: number;
  /** When the connection to Redis was lost, until it is back. */
  private lostSince?: number;
  /**
   * After an outage long enough to miss a heartbeat, sweeps wait at least
   * this long (half an entry life after Redis is back), cap or not: every
   * node beats first.
   */
  private beatsFirstUntil = 0;

  constructor(
    private readonly redis: RedisService,
    private readonly ttlMs: number,
  ) {
    super();
    redis.onTrouble((trouble) =>
      trouble === RedisTrouble.Restored ? this.restored() : this.lost(),
    );
  }

  async enter(roomId: string, user: UserSummaryJson, connectionId: string): Promise<boolean> {
    return (await this.answered(this.run(ENTER, { roomId, user, connectionId }))) === 1;
  }

  async leave(
    roomId: string,
    user: UserSummaryJson,
    connectionId: string,
  ): Promise<boolean | undefined> {
    const left = await this.answered(this.run(LEAVE, { roomId, user, connectionId }));
    return left === VANISHED ? undefined : left === 0;
  }

  async users(roomId: string): Promise<UserSummaryJson[]> {
    const members = (await this.redis.answered(
      this.redis.client.eval(LIVE_ENTRIES, { keys: [this.redis.key('presence', 'room', roomId)] }),
    )) as string[];
    const users = new Map<string, UserSummaryJson>();
    for (const member of members) {
      const [id, , username] = member.split('|');
      users.set(id, { id, username });
    }
    return [...users.values()];
  }

  /**
   * All batches at once: one that fails must not leave the others' entries
   * to expire. A node without entries pings, so that it too finds out about
   * a Redis that stalled (a heartbeat slower than a third of the entries'
   * life may have let other nodes' entries expire).
   */
  async refresh(entries: Entry[]): Promise<PresenceRefresh> {
    const batches: Entry[][] = [];
    for (let start = 0; start < entries.length; start += REFRESH_BATCH) {
      batches.push(entries.slice(start, start + REFRESH_BATCH));
    }
    const startedAt = Date.now();
    const beats =
      batches.length > 0
        ? batches.map((batch) => this.refreshBatch(batch))
        : [this.redis.client.ping().then((): RefreshedBatch => [[], []])];
    const outcomes = await Promise.allSettled(beats);
    const failed = outcomes.some((outcome) => outcome.status === 'rejected');
    if (failed || Date.now() - startedAt > this.ttlMs / 3) this.troubled();
    const refresh: PresenceRefresh = { back: [], added: [] };
    outcomes.forEach((outcome, index) => {
      if (outcome.status === 'rejected') {
        refresh.error = outcome.reason as Error;
        return;
      }
      const [back, added] = outcome.value;
      const at = (position: number) => {
        const { roomId, user } = batches[index][position - 1];
        return { roomId, user };
      };
      refresh.back.push(...back.map(at));
      refresh.added!.push(...added.map(at));
    });
    return refresh;
  }

  /**
   * The users whose last entry in a room expired, script after script while
   * one removes a full batch of entries. A script that fails ends the sweep
   * with what the earlier ones found: they took those entries out for good,
   * so the users must still be announced. None runs for one entry life
   * after Redis was away or slow (`sweepsFrom`).
   */
  async sweep(): Promise<PresenceSweep> {
    const gone: RoomPresence[] = [];
    if (Date.now() < Math.max(this.sweepsFrom, this.beatsFirstUntil)) return { gone };
    this.troubledSince = this.restoredSince = undefined;
    for (let round = 0; round < SWEEP_ROUNDS; round += 1) {
      let batch: SweptBatch;
      try {
        batch = await this.sweepBatch();
      } catch (error) {
        return { gone, error: error as Error };
      }
      gone.push(...batch.gone);
      if (batch.removed < SWEEP_BATCH) break;
    }
    return { gone };
  }

  private async sweepBatch(): Promise<SweptBatch> {
    const keys = [this.redis.key('presence', 'expiry'), this.redis.key('presence', 'swept')];
    const args = [this.redis.key(''), SWEEP_BATCH, SWEPT_MEMORY_TTLS * this.ttlMs];
    const [removed, gone] = (await this.redis.client.eval(SWEEP, {
      keys,
      arguments: args.map(String),
    })) as [number, string[]];
    const users = gone.map((entry) => {
      const [roomId, id, , username] = entry.split('|');
      return { roomId, user: { id, username } };
    });
    return { removed, gone: users };
  }

  private refreshBatch(batch: Entry[]): Promise<RefreshedBatch> {
    const args = [this.redis.key(''), String(this.ttlMs)];
    for (const { roomId, user, connectionId } of batch) {
      args.push(roomId, user.id, memberOf(user, connectionId));
    }
    const keys = [this.redis.key('presence', 'expiry'), this.redis.key('presence', 'swept')];
    return this.redis.client.eval(REFRESH, { keys, arguments: args }) as Promise<RefreshedBatch>;
  }

  /** A live path's command; one that fails or times out means Redis is in trouble. */
  private answered<T>(command: Promise<T>): Promise<T> {
    return this.redis.answered(command).catch((error: unknown) => {
      this.troubled();
      throw error;
    });
  }

  /**
   * Every node gets an entry life to beat before a sweep, counted from
   * Redis's first return during the trouble and capped from there; back after
   * an outage long enough to miss a heartbeat (entries may have expired
   * meanwhile), at least half an entry life whatever the cap.
   */
  private restored(): void {
    const now = Date.now();
    if (now - (this.lostSince ?? now) >= this.ttlMs / 3)
      this.beatsFirstUntil = now + this.ttlMs / 2;
    this.lostSince = undefined;
    this.restoredSince ??= now;
    this.sweepsFrom = Math.max(this.sweepsFrom, this.postponedFrom(now));
  }

  private lost(): void {
    this.lostSince ??= Date.now();
    this.troubled();
  }

  private troubled(): void {
    const now = Date.now();
    this.troubledSince ??= now;
    this.sweepsFrom = this.postponedFrom(now);
  }

  /** An entry life from now, but no later than the cap counted from when trouble began or Redis first came back. */
  private postponedFrom(now: number): number {
    const since = this.restoredSince ?? this.troubledSince ?? now;
    return Math.min(now + this.ttlMs, since + MAX_SWEEP_POSTPONEMENT_TTLS * this.ttlMs);
  }

  private run(script: string, { roomId, user, connectionId }: Entry): Promise<number> {
    const member = memberOf(user, connectionId);
    const keys = [
      this.redis.key('presence', 'room', roomId),
      this.redis.key('presence', 'count', roomId),
      this.redis.key('presence', 'expiry'),
      this.redis.key('presence', 'swept'),
    ];
    const args = [
      member,
      `${roomId}|${member}`,
      String(this.ttlMs),
      user.id,
      `${roomId}|${user.id}`,
    ];
    return this.redis.client.eval(script, { keys, arguments: args }) as Promise<number>;
  }
}

/** A connection's entry in a room's set; its room id prefixes it in the expiry set. */
function memberOf(user: UserSummaryJson, connectionId: string): string {
  return `${user.id}|${connectionId}|${user.username}`;
}
