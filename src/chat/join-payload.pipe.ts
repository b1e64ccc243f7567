import { Injectable, PipeTransform } from '@nestjs/common';
import { createValidationPipe } from '@app/common/pipes/validation.pipe';
import { JoinRoomDto } from './dto/join-room.dto';

/** `chat:join` also takes a bare roomId string, as clients of the reference design send it. */
@Injectable()
export class JoinPayloadPipe implements PipeTransform<unknown, Promise<JoinRoomDto>> {
  private readonly validation = createValidationPipe();

  async transform(payload: unknown): Promise<JoinRoomDto> {
    const value: unknown = typeof payload === 'string' ? { roomId: payload } : payload;
    return (await this.validation.transform(value, {
      type: 'body',
      metatype: JoinRoomDto,
    })) as JoinRoomDto;
  }
}
