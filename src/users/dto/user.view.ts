import { ApiProperty } from '@nestjs/swagger';
import type { User } from '../user.entity';

export class UserView {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ example: 'ada' })
  username: string;

  @ApiProperty({ format: 'date-time' })
  createdAt: string;

  static from(user: User): UserView {
    return { id: user.id, username: user.username, createdAt: user.createdAt.toISOString() };
  }
}

/** How a user appears inside rooms, presence lists and messages. */
export class UserSummary {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ example: 'ada' })
  username: string;
}
