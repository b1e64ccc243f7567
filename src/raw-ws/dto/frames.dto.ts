import { Transform } from 'class-transformer';
import { Equals, IsDefined, IsIn, IsString, IsUUID } from 'class-validator';
import { WsClientFrameType } from '@app/contract/ws-frames';

const FRAME_TYPES = Object.values(WsClientFrameType);

/** Checked first, so that an unknown type is named as such. */
export class FrameTypeDto {
  @IsIn(FRAME_TYPES, { message: `type must be one of: ${FRAME_TYPES.join(', ')}` })
  type: WsClientFrameType;
}

export class PingFrameDto {
  @Equals(WsClientFrameType.Ping)
  type: typeof WsClientFrameType.Ping;
}

export class RoomFrameDto {
  @IsIn([WsClientFrameType.Join, WsClientFrameType.Leave])
  type: typeof WsClientFrameType.Join | typeof WsClientFrameType.Leave;

  @IsString()
  @IsUUID('all', { message: 'room must be a room id (UUID)' })
  room: string;
}

/**
 * Any JSON payload, passed on exactly as sent: copied like the other fields,
 * it would lose keys named like Object.prototype's (`constructor`,
 * `toString`). The validation pipe bounds its nesting like every input's.
 */
export class BroadcastFrameDto {
  @Equals(WsClientFrameType.Broadcast)
  type: typeof WsClientFrameType.Broadcast;

  @IsString()
  @IsUUID('all', { message: 'room must be a room id (UUID)' })
  room: string;

  @IsDefined({ message: 'payload is required' })
  @Transform(({ obj }: { obj: { payload: unknown } }) => obj.payload)
  payload: unknown;
}
