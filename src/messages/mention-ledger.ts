import { Injectable, Logger } from '@nestjs/common';
import { reasonOf } from '@app/common/errors/reason-of';
import { ExpiringCache } from '@app/common/expiring-cache';
import { OccasionalWarning } from '@app/common/occasional-warning';
import { RedisService } from '@app/redis/redis.service';

/** How long a message stays known as notified: longer than clients go on sending one again. */
export const NOTIFIED_TTL_MS = 60 * 60_000;
/** How many messages a node alone remembers at most. */
const MAX_REMEMBERED_HERE = 50_000;

/**
 * Which messages' mentions have been notified, so that each message's are
 * notified once: by the send that stored it or, where that one stopped short
 * of it (its write was given up on and committed after all, or its node died
 * between the commit and the claim), by the first send of the same message
 * again (its clientMsgId) that finds it stored. A claim whose notifications
 * fail is released. Shared through Redis where nodes share it; when Redis
 * does not answer, this node's memory decides, which across nodes may notify
 * twice rather than never.
 */
@Injectable()
export class MentionLedger {
  private readonly redisFailed = new OccasionalWarning(new Logger(MentionLedger.name));
  private readonly notifiedHere = new ExpiringCache<true>(NOTIFIED_TTL_MS, MAX_REMEMBERED_HERE);

  constructor(private readonly redis: RedisService) {}

  /**
   * True for the first to ask about the message, who is to notify its
   * mentions, or to `release` it if that fails.
   */
  async claim(messageId: string): Promise<boolean> {
    // Also what this node claimed while Redis was away, which Redis never heard of.
    if (this.notifiedHere.get(messageId)) return false;
    this.notifiedHere.set(messageId, true);
    if (!this.redis.enabled) return true;
    try {
      const set = await this.redis.answered(
        this.redis.client.set(this.key(messageId), '1', {
          condition: 'NX',
          expiration: { type: 'PX', value: NOTIFIED_TTL_MS },
        }),
      );
      return set !== null;
    } catch (error) {
      const reason = reasonOf(error);
      this.redisFailed.note(
        (count) => `Mentions of ${count} message(s) told apart on this node only: ${reason}`,
      );
      return true;
    }
  }

  /** The claim's notifications failed: the next send of the message is to try again. */
  async release(messageId: string): Promise<void> {
    this.notifiedHere.delete(messageId);
    if (!this.redis.enabled) return;
    await this.redis.answered(this.redis.client.del(this.key(messageId))).catch(() => undefined);
  }

  private key(messageId: string): string {
    return this.redis.key('mentions-notified', messageId);
  }
}
