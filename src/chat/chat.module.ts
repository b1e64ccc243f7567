import { Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { AuthModule } from '@app/auth/auth.module';
import type { AllConfig } from '@app/config/app-config';
import { SlowConsumerWatch } from '@app/realtime/slow-consumers';
import { RedisService } from '@app/redis/redis.service';
import { MessagesModule } from '@app/messages/messages.module';
import { RoomsModule } from '@app/rooms/rooms.module';
import { ChatGateway } from './chat.gateway';
import { ChatService } from './chat.service';
import { LiveDelivery } from './live-delivery';
import { LocalPresenceStore, PresenceStore } from './presence-store';
import { PresenceService } from './presence.service';
import { RedisPresenceStore } from './redis-presence-store';
import { SocketIoDelivery } from './socket-io.delivery';

function createPresenceStore(
  redis: RedisService,
  config: ConfigService<AllConfig, true>,
): PresenceStore {
  return redis.enabled
    ? new RedisPresenceStore(redis, config.get('redis.presenceTtlMs', { infer: true }))
    : new LocalPresenceStore();
}

@Module({
  imports: [AuthModule, RoomsModule, MessagesModule],
  providers: [
    ChatGateway,
    ChatService,
    PresenceService,
    SocketIoDelivery,
    SlowConsumerWatch,
    LiveDelivery,
    {
      provide: PresenceStore,
      inject: [RedisService, ConfigService],
      useFactory: createPresenceStore,
    },
  ],
  exports: [ChatService, LiveDelivery],
})
export class ChatModule {}
