import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { AuthUser } from '@app/auth/auth-user';
import { Authenticated } from '@app/auth/authenticated.decorator';
import { CurrentUser } from '@app/auth/current-user.decorator';
import { AppException } from '@app/common/errors/app.exception';
import { ErrorCode } from '@app/common/errors/error-code';
import { ApiErrors } from '@app/common/swagger/api-errors.decorator';
import { RateLimitService } from '@app/throttling/rate-limit.service';
import { FindUserQuery } from './dto/find-user.query';
import { UserSummary } from './dto/user.view';
import { UsersService } from './users.service';

@ApiTags('users')
@Authenticated()
@ApiErrors(ErrorCode.RateLimited, ErrorCode.Unavailable)
@Controller('users')
export class UsersController {
  constructor(
    private readonly users: UsersService,
    private readonly rateLimits: RateLimitService,
  ) {}

  /**
   * The one way to learn the id of someone to add to a private room. It tells
   * which names are taken, so each user has a budget of lookups
   * (`RATE_LIMIT_USER_LOOKUP`); an address's sign-ins keep theirs.
   */
  @Get()
  @ApiOkResponse({
    type: UserSummary,
    description: 'The open account of that name, whatever its case; 404 when there is none',
  })
  @ApiErrors(ErrorCode.ValidationFailed, ErrorCode.NotFound)
  async find(
    @CurrentUser() caller: AuthUser,
    @Query() { username }: FindUserQuery,
  ): Promise<UserSummary> {
    await this.rateLimits.consume('lookup', caller.id);
    const user = await this.users.findActiveByUsername(username);
    if (!user) throw AppException.notFound('User not found');
    return { id: user.id, username: user.username };
  }
}
