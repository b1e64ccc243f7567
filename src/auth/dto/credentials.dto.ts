import { ApiProperty } from '@nestjs/swagger';
import { IsString } from 'class-validator';
import { CharLength, charRangeSchema, type CharRange } from '@app/common/validators/char-length';
import { IsStorableText, IsWellFormedText } from '@app/common/validators/storable-text';
import { IsUsername } from '@app/common/validators/username';

export const PASSWORD_LENGTH: CharRange = { min: 8, max: 128 };
export const LOGIN_USERNAME_LENGTH: CharRange = { min: 1, max: 128 };
export const LOGIN_PASSWORD_LENGTH: CharRange = { min: 1, max: 1024 };

export class RegisterDto {
  @IsUsername()
  username: string;

  /** Well-formed, since passwords are hashed as UTF-8: lone surrogates would all become U+FFFD. */
  @ApiProperty({ ...charRangeSchema(PASSWORD_LENGTH), example: 'correct horse battery' })
  @IsString()
  @CharLength(PASSWORD_LENGTH)
  @IsWellFormedText()
  password: string;
}

/** Login checks only shape: rules that would tell which usernames exist are not applied. */
export class LoginDto {
  @ApiProperty({ ...charRangeSchema(LOGIN_USERNAME_LENGTH), example: 'ada' })
  @IsString()
  @CharLength(LOGIN_USERNAME_LENGTH)
  @IsStorableText()
  username: string;

  /** Unchecked beyond its length: an account registered before passwords had to be well-formed can log in. */
  @ApiProperty({ ...charRangeSchema(LOGIN_PASSWORD_LENGTH), example: 'correct horse battery' })
  @IsString()
  @CharLength(LOGIN_PASSWORD_LENGTH)
  password: string;
}
