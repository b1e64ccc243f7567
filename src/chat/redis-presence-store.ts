import type { UserSummaryJson } from '@app/contract/models';
import type { RedisService } from '@app/redis/redis.service';
import { PresenceStore, type RoomPresence } from './presence-store';

const SWEEP_BATCH = 500;
/** How many presence lifetimes a swept user is remembered, to be announced again if their node returns. */
const SWEPT_MEMORY_TTLS = 20;

/* A connection's entry lives in the room's sorted set (to list who is here)
 * and in one global sorted set (to find expired entries quickly); both are
 * scored by expiry. A hash per room counts each user's connections, so that
 * "first in" and "last out" hold across nodes. Scripts keep the three in step. */

const ENTER = `
local added = redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
if added == 1 then return redis.call('HINCRBY', KEYS[2], ARGV[4], 1) end
return 0`;

/* A heartbeat: ENTER, and 1 when that brings back a user whom a sweep took
 * out of the room (their node missed heartbeats, then came back), so that
 * the others hear they are here again. KEYS[4] holds the users swept out. */
const REFRESH = `
local added = redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
if added == 0 then return 0 end
local count = redis.call('HINCRBY', KEYS[2], ARGV[4], 1)
if redis.call('ZREM', KEYS[4], ARGV[5]) == 1 and count == 1 then return 1 end
return 0`;

const LEAVE = `
redis.call('ZREM', KEYS[3], ARGV[2])
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return -1 end
local left = redis.call('HINCRBY', KEYS[2], ARGV[4], -1)
if left <= 0 then redis.call('HDEL', KEYS[2], ARGV[4]) end
return left`;

const SWEEP = `
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local gone = {}
for _, entry in ipairs(expired) do
  redis.call('ZREM', KEYS[1], entry)
  local roomId, userId, rest = string.match(entry, '^([^|]+)|([^|]+)|(.+)$')
  local roomKey = ARGV[2] .. 'presence:room:' .. roomId
  local countKey = ARGV[2] .. 'presence:count:' .. roomId
  if redis.call('ZREM', roomKey, userId .. '|' .. rest) == 1 then
    local left = redis.call('HINCRBY', countKey, userId, -1)
    if left <= 0 then
      redis.call('HDEL', countKey, userId)
      redis.call('ZADD', KEYS[2], ARGV[1], roomId .. '|' .. userId)
      table.insert(gone, entry)
    end
  end
end
return gone`;

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
  constructor(
    private readonly redis: RedisService,
    private readonly ttlMs: number,
  ) {
    super();
  }

  async enter(roomId: string, user: UserSummaryJson, connectionId: string): Promise<boolean> {
    return (await this.redis.answered(this.run(ENTER, { roomId, user, connectionId }))) === 1;
  }

  async leave(roomId: string, user: UserSummaryJson, connectionId: string): Promise<boolean> {
    return (await this.redis.answered(this.run(LEAVE, { roomId, user, connectionId }))) === 0;
  }

  async users(roomId: string): Promise<UserSummaryJson[]> {
    const members = await this.redis.answered(
      this.redis.client.zRangeByScore(
        this.redis.key('presence', 'room', roomId),
        Date.now(),
        '+inf',
      ),
    );
    const users = new Map<string, UserSummaryJson>();
    for (const member of members) {
      const [id, , username] = member.split('|');
      users.set(id, { id, username });
    }
    return [...users.values()];
  }

  async refresh(entries: Entry[]): Promise<RoomPresence[]> {
    const back = await Promise.all(
      entries.map(async (entry) => ((await this.run(REFRESH, entry)) === 1 ? [entry] : [])),
    );
    return back.flat().map(({ roomId, user }) => ({ roomId, user }));
  }

  async sweep(): Promise<RoomPresence[]> {
    const now = Date.now();
    const keys = [this.redis.key('presence', 'expiry'), this.redis.key('presence', 'swept')];
    const args = [now, this.redis.key(''), SWEEP_BATCH, now - SWEPT_MEMORY_TTLS * this.ttlMs];
    const gone = (await this.redis.client.eval(SWEEP, {
      keys,
      arguments: args.map(String),
    })) as string[];
    return gone.map((entry) => {
      const [roomId, id, , username] = entry.split('|');
      return { roomId, user: { id, username } };
    });
  }

  private run(script: string, { roomId, user, connectionId }: Entry): Promise<number> {
    const member = `${user.id}|${connectionId}|${user.username}`;
    const keys = [
      this.redis.key('presence', 'room', roomId),
      this.redis.key('presence', 'count', roomId),
      this.redis.key('presence', 'expiry'),
      this.redis.key('presence', 'swept'),
    ];
    const expiry = String(Date.now() + this.ttlMs);
    const args = [member, `${roomId}|${member}`, expiry, user.id, `${roomId}|${user.id}`];
    return this.redis.client.eval(script, { keys, arguments: args }) as Promise<number>;
  }
}
