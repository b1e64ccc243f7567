import { ApiProperty } from '@nestjs/swagger';
import { IsString, Matches } from 'class-validator';
import { CharLength, charRangeSchema } from '@app/common/validators/char-length';
import { USERNAME_LENGTH, USERNAME_PATTERN } from '@app/contract/usernames';

/** A name as registration takes it: any other cannot belong to anyone. */
export class FindUserQuery {
  @ApiProperty({
    ...charRangeSchema(USERNAME_LENGTH),
    pattern: USERNAME_PATTERN.source,
    example: 'ada',
    description: 'Matched regardless of case',
  })
  @IsString()
  @CharLength(USERNAME_LENGTH)
  @Matches(USERNAME_PATTERN, { message: 'username may contain only letters, digits, _ . and -' })
  username: string;
}
