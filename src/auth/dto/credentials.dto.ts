import { ApiProperty } from '@nestjs/swagger';
import { IsString, Length, Matches } from 'class-validator';
import { IsStorableText } from '@app/common/validators/storable-text';

export const USERNAME_PATTERN = /^[a-zA-Z0-9_.-]+$/;

export class RegisterDto {
  @ApiProperty({ minLength: 3, maxLength: 32, pattern: USERNAME_PATTERN.source, example: 'ada' })
  @IsString()
  @Length(3, 32)
  @Matches(USERNAME_PATTERN, { message: 'username may contain only letters, digits, _ . and -' })
  username: string;

  @ApiProperty({ minLength: 8, maxLength: 128, example: 'correct horse battery' })
  @IsString()
  @Length(8, 128)
  password: string;
}

/** Login checks only shape: rules that would tell which usernames exist are not applied. */
export class LoginDto {
  @ApiProperty({ example: 'ada' })
  @IsString()
  @Length(1, 128)
  @IsStorableText()
  username: string;

  @ApiProperty({ example: 'correct horse battery' })
  @IsString()
  @Length(1, 1024)
  password: string;
}
