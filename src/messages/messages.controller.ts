import { Body, Controller, Get, Param, Post, Query, UseGuards } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import type { AuthUser } from '@app/auth/auth-user';
import { Authenticated } from '@app/auth/authenticated.decorator';
import { CurrentUser } from '@app/auth/current-user.decorator';
import { ErrorCode } from '@app/common/errors/error-code';
import { UserRateLimitGuard } from '@app/common/guards/user-rate-limit.guard';
import { ApiErrors } from '@app/common/swagger/api-errors.decorator';
import { Transport } from '@app/metrics/transport';
import { HistoryQuery } from './dto/history.query';
import { MessagePage, MessageView } from './dto/message.view';
import { MessageBodyDto } from './dto/send-message.dto';
import { RateLimit } from '@app/throttling/rate-limit.decorator';
import { MessagesService } from './messages.service';

@ApiTags('messages')
@Authenticated()
@ApiErrors(
  ErrorCode.RateLimited,
  ErrorCode.NotFound,
  ErrorCode.ValidationFailed,
  ErrorCode.Unavailable,
)
@ApiParam({ name: 'roomId', format: 'uuid' })
@Controller('rooms/:roomId/messages')
export class MessagesController {
  constructor(private readonly messages: MessagesService) {}

  @Get()
  @ApiOkResponse({
    type: MessagePage,
    description: 'since: ascending after it; otherwise descending',
  })
  history(
    @CurrentUser() user: AuthUser,
    @Param('roomId') roomId: string,
    @Query() query: HistoryQuery,
  ): Promise<MessagePage> {
    return this.messages.history(user, roomId, query);
  }

  @Post()
  @UseGuards(UserRateLimitGuard)
  @RateLimit('message')
  @ApiCreatedResponse({
    type: MessageView,
    description: 'Committed, then delivered live on every transport',
  })
  send(
    @CurrentUser() user: AuthUser,
    @Param('roomId') roomId: string,
    @Body() body: MessageBodyDto,
  ): Promise<MessageView> {
    return this.messages.send(user, roomId, body, Transport.Rest);
  }
}
