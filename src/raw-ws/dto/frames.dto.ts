import {
  Equals,
  IsDefined,
  IsIn,
  IsString,
  IsUUID,
  type ValidationArguments,
  ValidateBy,
} from 'class-validator';

/** Frame types a raw WebSocket client may send. */
export const ClientFrameType = { Join: 'join', Leave: 'leave', Broadcast: 'broadcast' } as const;
export type ClientFrameType = (typeof ClientFrameType)[keyof typeof ClientFrameType];

/** Frame types the server sends on `/ws`. */
export const ServerFrameType = {
  Connected: 'connected',
  Joined: 'joined',
  Left: 'left',
  Message: 'message',
  ChatMessage: 'chat:message',
  Notification: 'notification',
  Error: 'error',
} as const;

export const MAX_PAYLOAD_DEPTH = 32;

function depthOf(value: unknown, limit: number): number {
  if (typeof value !== 'object' || value === null) return 0;
  if (limit <= 0) return 1;
  let deepest = 0;
  for (const child of Object.values(value)) deepest = Math.max(deepest, depthOf(child, limit - 1));
  return deepest + 1;
}

/** Bounds nesting, so that a hostile payload cannot exhaust the stack when re-serialized. */
function MaxDepth(limit: number) {
  return ValidateBy({
    name: 'maxDepth',
    validator: {
      validate: (value: unknown) => depthOf(value, limit + 1) <= limit,
      defaultMessage: (args?: ValidationArguments) =>
        `${args?.property} may be nested at most ${limit} levels deep`,
    },
  });
}

export class FrameTypeDto {
  @IsIn(Object.values(ClientFrameType), {
    message: `type must be one of: ${Object.values(ClientFrameType).join(', ')}`,
  })
  type: ClientFrameType;
}

export class RoomFrameDto {
  @IsIn([ClientFrameType.Join, ClientFrameType.Leave])
  type: typeof ClientFrameType.Join | typeof ClientFrameType.Leave;

  @IsString()
  @IsUUID('all', { message: 'room must be a room id (UUID)' })
  room: string;
}

export class BroadcastFrameDto {
  @Equals(ClientFrameType.Broadcast)
  type: typeof ClientFrameType.Broadcast;

  @IsString()
  @IsUUID('all', { message: 'room must be a room id (UUID)' })
  room: string;

  @IsDefined({ message: 'payload is required' })
  @MaxDepth(MAX_PAYLOAD_DEPTH)
  payload: unknown;
}
