import { Module } from '@nestjs/common';
import { MessagesModule } from '@app/messages/messages.module';
import { RoomsModule } from '@app/rooms/rooms.module';
import { ChatGateway } from './chat.gateway';
import { ChatService } from './chat.service';
import { PresenceService } from './presence.service';
import { SocketIoDelivery } from './socket-io.delivery';

@Module({
  imports: [RoomsModule, MessagesModule],
  providers: [ChatGateway, ChatService, PresenceService, SocketIoDelivery],
  exports: [ChatService],
})
export class ChatModule {}
