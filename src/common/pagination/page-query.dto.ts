import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsInt, IsOptional, IsUUID, Max, Min } from 'class-validator';

export const MAX_PAGE_SIZE = 200;
export const DEFAULT_PAGE_SIZE = 50;

/** Query strings are text: only plain decimal digits become a number, anything else fails validation. */
export const toQueryInt = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : value;

export class LimitQuery {
  @ApiPropertyOptional({ minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE })
  @IsOptional()
  @Transform(toQueryInt)
  @IsInt()
  @Min(1)
  @Max(MAX_PAGE_SIZE)
  limit: number = DEFAULT_PAGE_SIZE;
}

/** A page of a listing in the order of ids: the cursor is the last id of the page before. */
export class IdCursorPageQuery extends LimitQuery {
  @ApiPropertyOptional({ format: 'uuid', description: 'The `nextCursor` of the previous page' })
  @IsOptional()
  @IsUUID('all', { message: 'cursor must be a cursor returned by a previous page' })
  cursor?: string;
}
