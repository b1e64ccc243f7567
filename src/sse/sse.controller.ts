import { Controller, Get, Headers, Param, Query, Res, UseFilters } from '@nestjs/common';
import { ApiHeader, ApiOkResponse, ApiParam, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import type { AuthUser } from '@app/auth/auth-user';
import { Authenticated } from '@app/auth/authenticated.decorator';
import { ConfirmAccount, CurrentUser } from '@app/auth/current-user.decorator';
import { AppException } from '@app/common/errors/app.exception';
import { ErrorCode } from '@app/common/errors/error-code';
import { EventSourceRefusalFilter } from '@app/common/filters/event-source-refusal.filter';
import { ApiErrors } from '@app/common/swagger/api-errors.decorator';
import { RoomEventsQuery, sinceFromLastEventId } from './dto/room-events.query';
import { SseService } from './sse.service';

/** The reference design's path of the personal stream, served as it is (outside the API prefix). */
export const REFERENCE_PERSONAL_EVENTS_PATH = 'events/:userId';

/** Last-Event-ID, sent by a reconnecting EventSource, wins over `?since`. */
function resumePoint(
  lastEventId: string | undefined,
  since: number | undefined,
): number | undefined {
  return lastEventId ? sinceFromLastEventId(lastEventId) : since;
}

/** Server-Sent Events: server-to-client streams, resumable with Last-Event-ID. */
@ApiTags('events')
@Authenticated({ allowQueryToken: true })
@ApiProduces('text/event-stream')
@ApiErrors(ErrorCode.RateLimited, ErrorCode.Unavailable)
@ApiHeader({
  name: 'Accept',
  required: false,
  description:
    'text/event-stream, without an Authorization header (a browser EventSource): a refusal for now (429, 503) is answered 200 with `retry:` and a `refused` event carrying the error, then the end',
})
@UseFilters(EventSourceRefusalFilter)
@Controller()
export class SseController {
  constructor(private readonly sse: SseService) {}

  @Get('events')
  @ApiOkResponse({
    description:
      '`connected` { userId }, then `notification` events; `:heartbeat` comments; `closed` (the error shape) when the server ends the stream',
  })
  personal(
    @CurrentUser() user: AuthUser,
    @ConfirmAccount() confirmAccount: () => void,
    @Res() response: Response,
  ): Promise<void> {
    return this.sse.openPersonal(user, confirmAccount, response);
  }

  /** The personal stream where clients of the reference design look for it: `/events/<own id>`. */
  @Get(REFERENCE_PERSONAL_EVENTS_PATH)
  @ApiParam({ name: 'userId', format: 'uuid', description: "the caller's own id" })
  @ApiOkResponse({ description: 'the same stream as `GET /api/events`' })
  @ApiErrors(ErrorCode.Forbidden)
  personalAt(
    @CurrentUser() user: AuthUser,
    @Param('userId') userId: string,
    @ConfirmAccount() confirmAccount: () => void,
    @Res() response: Response,
  ): Promise<void> {
    if (userId.toLowerCase() !== user.id) {
      throw AppException.forbidden('A user may only stream their own events');
    }
    return this.sse.openPersonal(user, confirmAccount, response);
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
      '`chat:message` events with `id: <seq>`: stored ones after the resume point, then live; `closed` (the error shape) when the server ends the stream',
  })
  @ApiErrors(ErrorCode.NotFound, ErrorCode.ValidationFailed)
  room(
    @CurrentUser() user: AuthUser,
    @Param('id') roomId: string,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Query() query: RoomEventsQuery,
    @ConfirmAccount() confirmAccount: () => void,
    @Res() response: Response,
  ): Promise<void> {
    const since = resumePoint(lastEventId || query.lastEventId, query.since);
    return this.sse.openRoom(user, confirmAccount, roomId, since, response);
  }
}
