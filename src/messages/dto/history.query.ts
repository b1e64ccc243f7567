import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';
import { LimitQuery, toQueryInt } from '@app/common/pagination/page-query.dto';
import { MAX_SEQ } from '@app/contract/limits';

export class HistoryQuery extends LimitQuery {
  @ApiPropertyOptional({
    description: 'Ascending page of the messages after this seq (not with `before`)',
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
      'Descending page of the messages before this seq (default: the newest; not with `since`)',
    minimum: 1,
    maximum: MAX_SEQ,
  })
  @IsOptional()
  @Transform(toQueryInt)
  @IsInt()
  @Min(1)
  @Max(MAX_SEQ)
  before?: number;
}
