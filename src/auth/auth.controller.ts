import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ErrorCode } from '@app/common/errors/error-code';
import { ApiErrors } from '@app/common/swagger/api-errors.decorator';
import { StrictRateLimit } from '@app/throttling/strict-rate-limit.decorator';
import { UserView } from '@app/users/dto/user.view';
import type { AuthUser } from './auth-user';
import { AuthService } from './auth.service';
import { Authenticated } from './authenticated.decorator';
import { CurrentUser } from './current-user.decorator';
import { LoginDto, RegisterDto } from './dto/credentials.dto';
import { TokenView } from './dto/token.view';

@ApiTags('auth')
@ApiErrors(ErrorCode.RateLimited, ErrorCode.Unavailable)
@Controller('auth')
export class AuthController {
  constructor(private readonly auth: AuthService) {}

  @Post('register')
  @StrictRateLimit()
  @ApiCreatedResponse({ type: UserView })
  @ApiErrors(ErrorCode.ValidationFailed, ErrorCode.Conflict)
  async register(@Body() dto: RegisterDto): Promise<UserView> {
    return UserView.from(await this.auth.register(dto));
  }

  @Post('login')
  @HttpCode(HttpStatus.OK)
  @StrictRateLimit({ failuresOnly: true })
  @ApiOkResponse({ type: TokenView })
  @ApiErrors(ErrorCode.ValidationFailed, ErrorCode.Unauthorized)
  login(@Body() dto: LoginDto): Promise<TokenView> {
    return this.auth.login(dto);
  }

  @Post('refresh')
  @Authenticated()
  @HttpCode(HttpStatus.OK)
  @ApiOkResponse({
    type: TokenView,
    description:
      'A new token of the same session, for a token still valid: clients refresh before it expires. ' +
      'A session older than JWT_SESSION_MAX_AGE (30 days by default) gets 401: log in again.',
  })
  refresh(@CurrentUser() user: AuthUser): Promise<TokenView> {
    return this.auth.refresh(user);
  }

  @Get('me')
  @Authenticated()
  @ApiOkResponse({ type: UserView })
  async me(@CurrentUser() user: AuthUser): Promise<UserView> {
    return UserView.from(await this.auth.profile(user.id));
  }

  @Delete('me')
  @Authenticated()
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiNoContentResponse({ description: 'The account is deleted; its tokens stop working' })
  deleteMe(@CurrentUser() user: AuthUser): Promise<void> {
    return this.auth.deleteAccount(user.id);
  }
}
