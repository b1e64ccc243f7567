import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsBoolean, IsOptional, IsString } from 'class-validator';
import { CharLength, charRangeSchema, type CharRange } from '@app/common/validators/char-length';
import { IsStorableText } from '@app/common/validators/storable-text';

/** Within the rooms' `varchar(100)` name column. */
export const ROOM_NAME_LENGTH: CharRange = { min: 1, max: 100 };

const trim = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);

export class CreateRoomDto {
  @ApiProperty({
    ...charRangeSchema(ROOM_NAME_LENGTH),
    description: 'Trimmed before its length is checked',
    example: 'general',
  })
  @Transform(trim)
  @IsString()
  @CharLength(ROOM_NAME_LENGTH)
  @IsStorableText()
  name: string;

  @ApiPropertyOptional({ default: false })
  @IsOptional()
  @IsBoolean()
  isPrivate?: boolean;
}
