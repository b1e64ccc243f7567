import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, Min } from 'class-validator';
import { toQueryInt } from '@app/common/pagination/page-query.dto';

export class RoomEventsQuery {
  @ApiPropertyOptional({
    description:
      'Replay the messages after this seq first (Last-Event-ID wins when both are given)',
  })
  @IsOptional()
  @Transform(toQueryInt)
  @IsInt()
  @Min(0)
  @Max(2 ** 31 - 1)
  since?: number;

  /** Read by the auth guard; declared so that validation accepts it. */
  @IsOptional()
  @IsString()
  token?: string;
}
