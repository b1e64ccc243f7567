import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthModule } from '@app/auth/auth.module';
import { RoomsModule } from '@app/rooms/rooms.module';
import { UsersModule } from '@app/users/users.module';
import { MentionLedger } from './mention-ledger';
import { MessageStore } from './message-store.service';
import { Message } from './message.entity';
import { MessagesController } from './messages.controller';
import { MessagesService } from './messages.service';

@Module({
  imports: [TypeOrmModule.forFeature([Message]), AuthModule, RoomsModule, UsersModule],
  controllers: [MessagesController],
  providers: [MentionLedger, MessageStore, MessagesService],
  exports: [MessagesService],
})
export class MessagesModule {}
