import { Module } from '@nestjs/common';
import { AuthModule } from '@app/auth/auth.module';
import { ChatModule } from '@app/chat/chat.module';
import { RoomsModule } from '@app/rooms/rooms.module';
import { RawWsGateway } from './raw-ws.gateway';

@Module({
  imports: [AuthModule, ChatModule, RoomsModule],
  providers: [RawWsGateway],
})
export class RawWsModule {}
