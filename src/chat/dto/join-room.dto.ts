import { Transform } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';
import { MAX_SEQ } from '@app/contract/limits';
import { RoomRefDto } from './room-ref.dto';

export class JoinRoomDto extends RoomRefDto {
  /**
   * Recover every message after this seq (missed while disconnected). `null`
   * means absent, as for every optional field: no recovery.
   */
  @Transform(({ value }: { value: unknown }) => value ?? undefined)
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(MAX_SEQ)
  since?: number;
}
