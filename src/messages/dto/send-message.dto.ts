import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsOptional, IsString, Length } from 'class-validator';
import { IsStorableText } from '@app/common/validators/storable-text';

export const MESSAGE_MAX_LENGTH = 4000;
export const CLIENT_MSG_ID_MAX_LENGTH = 64;

export const trimText = ({ value }: { value: unknown }) =>
  typeof value === 'string' ? value.trim() : value;

/** The body of a message; the text is stored trimmed. */
export class MessageBodyDto {
  @ApiProperty({ minLength: 1, maxLength: MESSAGE_MAX_LENGTH, example: 'hello @ada' })
  @Transform(trimText)
  @IsString()
  @Length(1, MESSAGE_MAX_LENGTH)
  @IsStorableText()
  text: string;

  @ApiPropertyOptional({
    maxLength: CLIENT_MSG_ID_MAX_LENGTH,
    description: 'Makes sending idempotent: a retry with the same id returns the original message',
    example: 'c-123',
  })
  @IsOptional()
  @IsString()
  @Length(1, CLIENT_MSG_ID_MAX_LENGTH)
  @IsStorableText()
  clientMsgId?: string;
}
