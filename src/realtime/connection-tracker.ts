import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { AppException } from '@app/common/errors/app.exception';
import type { AllConfig } from '@app/config/app-config';
import { RedisService } from '@app/redis/redis.service';
import { GracefulShutdown } from './graceful-shutdown.service';
import { UserSlots } from './user-slots';

/** Caps each user's open live connections, on every transport but SSE and, with Redis, over all nodes. */
@Injectable()
export class ConnectionTracker extends UserSlots {
  constructor(
    config: ConfigService<AllConfig, true>,
    redis: RedisService,
    private readonly shutdown: GracefulShutdown,
  ) {
    super(config, redis, 'connections', 'connections');
  }

  /**
   * Reserves a slot for the connection; RATE_LIMITED when all of the user's
   * are taken, UNAVAILABLE while the node drains (a keep-alive connection
   * still reaches it after the listener closed, and would hold the exit up).
   */
  override acquire(userId: string, connectionId: string): Promise<void> {
    if (this.shutdown.draining)
      return Promise.reject(AppException.unavailable('The server is shutting down'));
    return super.acquire(userId, connectionId);
  }

  protected get max(): number {
    return this.config.get('realtime.maxSocketsPerUser', { infer: true });
  }
}
