import { Module } from '@nestjs/common';
import { AuthModule } from '@app/auth/auth.module';
import { MessagesModule } from '@app/messages/messages.module';
import { RoomsModule } from '@app/rooms/rooms.module';
import { EventStreamSlots } from './event-stream-slots';
import { SseController } from './sse.controller';
import { SseHub } from './sse.hub';
import { SseService } from './sse.service';

@Module({
  imports: [AuthModule, RoomsModule, MessagesModule],
  controllers: [SseController],
  providers: [EventStreamSlots, SseHub, SseService],
})
export class SseModule {}
