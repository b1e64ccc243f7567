import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsOptional, IsString } from 'class-validator';
import { CharLength, charRangeSchema, type CharRange } from '@app/common/validators/char-length';
import { ShowsACharacter } from '@app/common/validators/display-name';
import { IsStorableText } from '@app/common/validators/storable-text';

export const MESSAGE_MAX_LENGTH = 4000;
export const CLIENT_MSG_ID_MAX_LENGTH = 64;
export const MESSAGE_TEXT_LENGTH: CharRange = { min: 1, max: MESSAGE_MAX_LENGTH };
/** Within the messages' `varchar(64)` client_msg_id column. */
export const CLIENT_MSG_ID_LENGTH: CharRange = { min: 1, max: CLIENT_MSG_ID_MAX_LENGTH };

export const trimText = ({ value }: { value: unknown }) =>
  typeof value === 'string' ? value.trim() : value;

/** An empty id is none: taken as a key, it would make every later message sent with it a retry. */
const emptyAsAbsent = ({ value }: { value: unknown }) => (value === '' ? undefined : value);

/** The body of a message; the text is stored trimmed. */
export class MessageBodyDto {
  @ApiProperty({
    ...charRangeSchema(MESSAGE_TEXT_LENGTH),
    description:
      'Trimmed before its length is checked; stored trimmed. Must show a character: zero-width characters and fillers alone are refused',
    example: 'hello @ada',
  })
  @Transform(trimText)
  @IsString()
  @CharLength(MESSAGE_TEXT_LENGTH)
  @IsStorableText()
  @ShowsACharacter()
  text: string;

  @ApiPropertyOptional({
    ...charRangeSchema(CLIENT_MSG_ID_LENGTH),
    description:
      'Makes sending idempotent: a retry with the same id returns the original message. Empty, it is absent',
    example: 'c-123',
  })
  @Transform(emptyAsAbsent)
  @IsOptional()
  @IsString()
  @CharLength(CLIENT_MSG_ID_LENGTH)
  @IsStorableText()
  clientMsgId?: string;
}
