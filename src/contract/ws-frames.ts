import type { ErrorBody } from '@app/common/errors/error-body';
import type { MessageJson, NotificationJson } from './models';

/** Frame types a raw WebSocket (`/ws`) client sends. `ping` is answered with `pong`. */
export const WsClientFrameType = {
  Join: 'join',
  Leave: 'leave',
  Broadcast: 'broadcast',
  Ping: 'ping',
  /** Presents a fresh token: the connection lives until it expires. Answered with `authenticated`. */
  Auth: 'auth',
} as const;
export type WsClientFrameType = (typeof WsClientFrameType)[keyof typeof WsClientFrameType];

/** Frame types the server sends on `/ws`. */
export const WsServerFrameType = {
  Connected: 'connected',
  Joined: 'joined',
  Left: 'left',
  Message: 'message',
  ChatMessage: 'chat:message',
  Notification: 'notification',
  Pong: 'pong',
  Authenticated: 'authenticated',
  Error: 'error',
} as const;

/** Close codes of `/ws`. */
export const WsCloseCode = {
  GoingAway: 1001,
  PolicyViolation: 1008,
  TooBig: 1009,
  InternalError: 1011,
  TryAgainLater: 1013,
  Unauthorized: 4001,
  RateLimited: 4029,
} as const;

export type WsClientFrame =
  | { type: typeof WsClientFrameType.Join; room: string }
  | { type: typeof WsClientFrameType.Leave; room: string }
  | { type: typeof WsClientFrameType.Broadcast; room: string; payload: unknown }
  | { type: typeof WsClientFrameType.Ping }
  | { type: typeof WsClientFrameType.Auth; token: string };

/**
 * What an error frame answers, when the frame it refuses had a known type:
 * `request` is that type, `room` the room it named once that was a valid id.
 */
export interface WsErrorRequest {
  request?: WsClientFrameType;
  room?: string;
}

export type WsServerFrame =
  | { type: typeof WsServerFrameType.Connected; userId: string }
  | { type: typeof WsServerFrameType.Joined; room: string; lastSeq?: number }
  | { type: typeof WsServerFrameType.Left; room: string }
  | { type: typeof WsServerFrameType.Message; room: string; payload: unknown }
  | { type: typeof WsServerFrameType.ChatMessage; room: string; message: MessageJson }
  | { type: typeof WsServerFrameType.Notification; notification: NotificationJson }
  | { type: typeof WsServerFrameType.Pong }
  | { type: typeof WsServerFrameType.Authenticated; userId: string; expiresAt: string }
  | ({ type: typeof WsServerFrameType.Error } & ErrorBody & WsErrorRequest);
