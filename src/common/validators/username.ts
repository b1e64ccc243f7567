import { applyDecorators } from '@nestjs/common';
import { ApiProperty } from '@nestjs/swagger';
import { IsString, Matches } from 'class-validator';
import { USERNAME_LENGTH, USERNAME_PATTERN } from '@app/contract/usernames';
import { CharLength, charRangeSchema } from './char-length';

/** A username as registration takes it, validated and documented. */
export function IsUsername(description?: string): PropertyDecorator {
  return applyDecorators(
    ApiProperty({
      ...charRangeSchema(USERNAME_LENGTH),
      pattern: USERNAME_PATTERN.source,
      example: 'ada',
      description,
    }),
    IsString(),
    CharLength(USERNAME_LENGTH),
    Matches(USERNAME_PATTERN, { message: 'username may contain only letters, digits, _ . and -' }),
  );
}
