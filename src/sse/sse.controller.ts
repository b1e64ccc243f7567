import { Controller, Get, Headers, Param, Query, Req, Res } from '@nestjs/common';
import { ApiHeader, ApiOkResponse, ApiParam, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import type { AuthUser } from '@app/auth/auth-user';
import { Authenticated } from '@app/auth/authenticated.decorator';
import { CurrentUser } from '@app/auth/current-user.decorator';
import { AppException } from '@app/common/errors/app.exception';
import { ErrorCode } from '@app/common/errors/error-code';
import { ApiErrors } from '@app/common/swagger/api-errors.decorator';
import { RoomEventsQuery } from './dto/room-events.query';
import { SseService } from './sse.service';

const LAST_EVENT_ID = /^\d{1,10}$/;

/** The reference design's path of the personal stream, served as it is (outside the API prefix). */
export const REFERENCE_PERSONAL_EVENTS_PATH = 'events/:userId';

function resumePoint(
  lastEventId: string | undefined,
  since: number | undefined,
): number | undefined {
  if (lastEventId === undefined || lastEventId === '') return since;
  if (!LAST_EVENT_ID.test(lastEventId.trim())) {
    throw AppException.validation('Last-Event-ID must be the seq of a received message');
  }
  return Number(lastEventId.trim());
}

/** Server-Sent Events: server-to-client streams, resumable with Last-Event-ID. */
@ApiTags('events')
@Authenticated({ allowQueryToken: true })
@ApiProduces('text/event-stream')
@ApiErrors(ErrorCode.RateLimited)
@Controller()
export class SseController {
  constructor(private readonly sse: SseService) {}

  @Get('events')
  @ApiOkResponse({
    description: '`connected` { userId }, then `notification` events; `:heartbeat` comments',
  })
  personal(
    @CurrentUser() user: AuthUser,
    @Req() request: Request,
    @Res() response: Response,
  ): void {
    this.sse.openPersonal(user, request, response);
  }

  /** The personal stream where clients of the reference design look for it: `/events/<own id>`. */
  @Get(REFERENCE_PERSONAL_EVENTS_PATH)
  @ApiParam({ name: 'userId', format: 'uuid', description: "the caller's own id" })
  @ApiOkResponse({ description: 'the same stream as `GET /api/events`' })
  @ApiErrors(ErrorCode.Forbidden)
  personalAt(
    @CurrentUser() user: AuthUser,
    @Param('userId') userId: string,
    @Req() request: Request,
    @Res() response: Response,
  ): void {
    if (userId.toLowerCase() !== user.id) {
      throw AppException.forbidden('A user may only stream their own events');
    }
    this.sse.openPersonal(user, request, response);
  }

  @Get('rooms/:id/events')
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiHeader({
    name: 'Last-Event-ID',
    required: false,
    description: 'seq of the last message received',
  })
  @ApiOkResponse({
    description:
      '`chat:message` events with `id: <seq>`: stored ones after the resume point, then live',
  })
  @ApiErrors(ErrorCode.NotFound, ErrorCode.ValidationFailed)
  room(
    @CurrentUser() user: AuthUser,
    @Param('id') roomId: string,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Query() query: RoomEventsQuery,
    @Req() request: Request,
    @Res() response: Response,
  ): Promise<void> {
    return this.sse.openRoom(
      user,
      roomId,
      resumePoint(lastEventId, query.since),
      request,
      response,
    );
  }
}
