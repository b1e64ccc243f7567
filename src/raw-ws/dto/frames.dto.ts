import { Transform } from 'class-transformer';
import { Equals, IsDefined, IsIn, IsString, IsUUID, ValidateIf } from 'class-validator';
import { RenewTokenDto } from '@app/auth/dto/renew-token.dto';
import { opaqueJson } from '@app/common/pipes/opaque-json';
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

/** Any JSON payload, passed on as sent (see opaqueJson); the validation pipe bounds its nesting like every input's. */
export class BroadcastFrameDto {
  @Equals(WsClientFrameType.Broadcast)
  type: typeof WsClientFrameType.Broadcast;

  @IsString()
  @IsUUID('all', { message: 'room must be a room id (UUID)' })
  room: string;

  // Only a missing payload is refused: null is a payload like any other JSON value.
  @ValidateIf((_frame, payload) => payload === undefined)
  @IsDefined({ message: 'payload is required' })
  @Transform(({ obj }: { obj: { payload: unknown } }) => opaqueJson(obj.payload))
  payload: unknown;
}

/** `{ type: "auth", token }`: a fresh token for the connection, checked like `auth:renew`'s. */
export class AuthFrameDto extends RenewTokenDto {
  @Equals(WsClientFrameType.Auth)
  type: typeof WsClientFrameType.Auth;
}
