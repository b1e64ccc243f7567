import { ApiProperty } from '@nestjs/swagger';
import type { MessageJson } from '@app/contract/models';
import type { Message } from '../message.entity';

export class MessageView implements MessageJson {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ format: 'uuid' })
  roomId: string;

  @ApiProperty({ description: 'Per room, from 1, gapless', example: 42 })
  seq: number;

  @ApiProperty({ format: 'uuid' })
  userId: string;

  @ApiProperty({ example: 'ada' })
  username: string;

  @ApiProperty({ example: 'hello' })
  text: string;

  @ApiProperty({ type: String, nullable: true, example: 'c-123' })
  clientMsgId: string | null;

  @ApiProperty({ format: 'date-time' })
  createdAt: string;

  static from(message: Message): MessageView {
    return {
      id: message.id,
      roomId: message.roomId,
      seq: message.seq,
      userId: message.userId,
      username: message.username,
      text: message.text,
      clientMsgId: message.clientMsgId,
      createdAt: message.createdAt.toISOString(),
    };
  }
}

export class MessagePage {
  @ApiProperty({ type: [MessageView] })
  items: MessageView[];

  @ApiProperty({
    type: Number,
    nullable: true,
    description:
      'null exactly when there is nothing more; otherwise the seq to pass as `since` (ascending) or `before` (descending) for the next page',
  })
  nextCursor: number | null;
}
