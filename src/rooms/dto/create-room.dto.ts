import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsBoolean, IsString, ValidateIf } from 'class-validator';
import { CharLength, charRangeSchema, type CharRange } from '@app/common/validators/char-length';
import { IsDisplayName } from '@app/common/validators/display-name';
import { IsStorableText } from '@app/common/validators/storable-text';

/** Within the rooms' `varchar(100)` name column. */
export const ROOM_NAME_LENGTH: CharRange = { min: 1, max: 100 };

const trim = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);

export class CreateRoomDto {
  @ApiProperty({
    ...charRangeSchema(ROOM_NAME_LENGTH),
    description:
      'Trimmed before its length is checked; at least one character that shows, no control characters',
    example: 'general',
  })
  @Transform(trim)
  @IsString()
  @CharLength(ROOM_NAME_LENGTH)
  @IsStorableText()
  @IsDisplayName()
  name: string;

  /** Unlike other optional fields, `null` is refused: a privacy flag is said, or left out. */
  @ApiPropertyOptional({ default: false, description: 'Left out means public; `null` is refused' })
  @ValidateIf((dto: CreateRoomDto) => dto.isPrivate !== undefined)
  @IsBoolean()
  isPrivate?: boolean;
}
