import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { AllConfig } from '@app/config/app-config';
import { RedisService } from '@app/redis/redis.service';
import { UserSlots } from '@app/realtime/user-slots';

/** Caps each user's open event streams, personal and room alike and, with Redis, over all nodes. */
@Injectable()
export class EventStreamSlots extends UserSlots {
  constructor(config: ConfigService<AllConfig, true>, redis: RedisService) {
    super(config, redis, 'event-streams', 'event streams');
  }

  protected get max(): number {
    return this.config.get('realtime.maxSseStreamsPerUser', { infer: true });
  }
}
