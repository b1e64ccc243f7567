import { DynamicModule, Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { AuthModule } from './auth/auth.module';
import { ChatModule } from './chat/chat.module';
import { CommonModule } from './common/common.module';
import { AppConfigModule } from './config/config.module';
import type { RawEnvironment } from './config/env.validation';
import { DatabaseModule } from './database/database.module';
import { DeliveryModule } from './delivery/delivery.module';
import { HealthModule } from './health/health.module';
import { LoggingModule } from './logging/logging.module';
import { MessagesModule } from './messages/messages.module';
import { MetricsModule } from './metrics/metrics.module';
import { RawWsModule } from './raw-ws/raw-ws.module';
import { RealtimeModule } from './realtime/realtime.module';
import { RedisModule } from './redis/redis.module';
import { RoomsModule } from './rooms/rooms.module';
import { SseModule } from './sse/sse.module';
import { ThrottlingModule } from './throttling/throttling.module';
import { UsersModule } from './users/users.module';

@Module({})
export class AppModule {
  /**
   * `env`: the settings, `serviceEnvironment()` for the service, their own for
   * tests. `logger`: the root logger Nest logs through from its start.
   */
  static forRoot(env: RawEnvironment | undefined, logger: Logger): DynamicModule {
    return {
      module: AppModule,
      imports: [
        AppConfigModule.forRoot(env),
        LoggingModule.forRoot(logger),
        CommonModule,
        ThrottlingModule,
        DatabaseModule,
        RedisModule,
        MetricsModule,
        HealthModule,
        DeliveryModule,
        UsersModule,
        AuthModule,
        RoomsModule,
        MessagesModule,
        RealtimeModule,
        ChatModule,
        RawWsModule,
        SseModule,
      ],
    };
  }
}
