import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { Authenticated } from '@app/auth/authenticated.decorator';
import { AppException } from '@app/common/errors/app.exception';
import { ErrorCode } from '@app/common/errors/error-code';
import { ApiErrors } from '@app/common/swagger/api-errors.decorator';
import { StrictRateLimit } from '@app/throttling/strict-rate-limit.decorator';
import { FindUserQuery } from './dto/find-user.query';
import { UserSummary } from './dto/user.view';
import { UsersService } from './users.service';

@ApiTags('users')
@Authenticated()
@ApiErrors(ErrorCode.RateLimited, ErrorCode.Unavailable)
@Controller('users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  /**
   * The one way to learn the id of someone to add to a private room. It tells
   * which names are taken, as registration does, so it shares the sign-ins'
   * stricter budget.
   */
  @Get()
  @StrictRateLimit()
  @ApiOkResponse({
    type: UserSummary,
    description: 'The open account of that name, whatever its case; 404 when there is none',
  })
  @ApiErrors(ErrorCode.ValidationFailed, ErrorCode.NotFound)
  async find(@Query() { username }: FindUserQuery): Promise<UserSummary> {
    const user = await this.users.findActiveByUsername(username);
    if (!user) throw AppException.notFound('User not found');
    return { id: user.id, username: user.username };
  }
}
