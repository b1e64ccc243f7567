import { IsString, IsUUID } from 'class-validator';
import { MessageBodyDto } from '@app/messages/dto/send-message.dto';

export class SendChatMessageDto extends MessageBodyDto {
  @IsString()
  @IsUUID('all', { message: 'roomId must be a room id (UUID)' })
  roomId: string;
}
