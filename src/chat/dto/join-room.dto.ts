import { IsInt, IsOptional, Max, Min } from 'class-validator';
import { RoomRefDto } from './room-ref.dto';

export class JoinRoomDto extends RoomRefDto {
  /** Recover every message after this seq (missed while disconnected). */
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(2 ** 31 - 1)
  since?: number;
}
