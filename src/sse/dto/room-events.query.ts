import { ApiPropertyOptional } from '@nestjs/swagger';
import { plainToInstance, Transform } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, Min, validateSync } from 'class-validator';
import { AppException } from '@app/common/errors/app.exception';
import { toQueryInt } from '@app/common/pagination/page-query.dto';
import { MAX_SEQ } from '@app/contract/limits';

export class RoomEventsQuery {
  @ApiPropertyOptional({
    description:
      'Replay the messages after this seq first (Last-Event-ID wins when both are given)',
    minimum: 0,
    maximum: MAX_SEQ,
  })
  @IsOptional()
  @Transform(toQueryInt)
  @IsInt()
  @Min(0)
  @Max(MAX_SEQ)
  since?: number;

  @ApiPropertyOptional({
    description:
      'Last-Event-ID as a query parameter, as EventSource polyfills that cannot set headers send it: the same rule as `since`, which it wins over; the header wins over it',
  })
  @IsOptional()
  @IsString()
  lastEventId?: string;

  /** Read by the auth guard; declared so that validation accepts it. */
  @IsOptional()
  @IsString()
  token?: string;
}

/**
 * Last-Event-ID is the `since` of a reconnecting EventSource, valid under
 * exactly the rule of `?since`. EventSource sends the same id on every
 * reconnect and gives up only on a non-200 answer, so a bad one is refused.
 */
export function sinceFromLastEventId(lastEventId: string): number {
  const query = plainToInstance(RoomEventsQuery, { since: lastEventId });
  if (query.since === undefined || validateSync(query).length > 0) {
    const message = `Last-Event-ID must be the seq of a received message, 0 to ${MAX_SEQ}`;
    throw AppException.validation(message, [{ field: 'Last-Event-ID', constraints: [message] }]);
  }
  return query.since;
}
