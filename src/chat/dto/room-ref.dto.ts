import { IsString, IsUUID } from 'class-validator';

/** Any live event that names one room. */
export class RoomRefDto {
  @IsString()
  @IsUUID('all', { message: 'roomId must be a room id (UUID)' })
  roomId: string;
}
