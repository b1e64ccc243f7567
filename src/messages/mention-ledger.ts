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
 * in between), by the first send of the same message again (its clientMsgId)
 * that finds it stored. Shared through Redis where nodes share it; when Redis
 * does not answer, this node's memory decides, which across nodes may notify
 * twice rather than never.
 */
@Injectable()
export class MentionLedger {
  private readonly redisFailed = new OccasionalWarning(new Logger(MentionLedger.name));
  private readonly notifiedHere = new ExpiringCache<true>(NOTIFIED_TTL_MS, MAX_REMEMBERED_HERE);

  constructor(private readonly redis: RedisService) {}

  /** True for the first to ask about the message, who is to notify its mentions. */
  async claim(messageId: string): Promise<boolean> {
    if (!this.redis.enabled) return this.claimHere(messageId);
    try {
      const key = this.redis.key('mentions-notified', messageId);
      const set = await this.redis.answered(
        this.redis.client.set(key, '1', {
          condition: 'NX',
          expiration: { type: 'PX', value: NOTIFIED_TTL_MS },
        }),
      );
      this.notifiedHere.set(messageId, true);
      return set !== null;
    } catch (error) {
      const reason = reasonOf(error);
      this.redisFailed.note(
        (count) => `Mentions of ${count} message(s) told apart on this node only: ${reason}`,
      );
      return this.claimHere(messageId);
    }
  }

  private claimHere(messageId: string): boolean {
    if (this.notifiedHere.get(messageId)) return false;
    this.notifiedHere.set(messageId, true);
    return true;
  }
}
