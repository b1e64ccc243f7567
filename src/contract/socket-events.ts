import type { ErrorBody } from '@app/common/errors/error-body';
import type { MessageJson, NotificationJson, RoomJson, UserSummaryJson } from './models';

/** Every ack answers with one of these two shapes. */
export type AckResponse<T> = { ok: true; data: T } | { ok: false; error: ErrorBody };
export type Ack<T> = (response: AckResponse<T>) => void;

export interface JoinPayload {
  roomId: string;
  since?: number;
}

export interface JoinResult {
  room: RoomJson;
  /** The first members in the order of their ids; the rest, past `membersTruncated`, by REST. */
  members: UserSummaryJson[];
  membersTruncated: boolean;
  missed: MessageJson[];
  truncated: boolean;
}

export interface SendPayload {
  roomId: string;
  text: string;
  clientMsgId?: string;
}

export interface RoomRef {
  roomId: string;
}

export interface PresenceResult {
  users: UserSummaryJson[];
}

export interface RenewTokenPayload {
  token: string;
}

/** The connection's user, and when the connection ends unless renewed again (ISO 8601). */
export interface RenewTokenResult {
  userId: string;
  expiresAt: string;
}

export interface RoomUserEvent {
  roomId: string;
  user: UserSummaryJson;
}

/**
 * `chat:userJoined`: the contract's `{ roomId, user }`, with the user's `id`
 * and `username` repeated at the top level for clients of the reference
 * design, whose server sent the bare user.
 */
export type UserJoinedEvent = RoomUserEvent & UserSummaryJson;

export interface RoomBroadcastEvent {
  roomId: string;
  payload: unknown;
  from: UserSummaryJson;
}

/** Client → server events of the default namespace. */
export interface ClientToServerEvents {
  'chat:join': (payload: JoinPayload | string, ack?: Ack<JoinResult>) => void;
  'chat:leave': (payload: RoomRef, ack?: Ack<Record<string, never>>) => void;
  'chat:message': (payload: SendPayload, ack?: Ack<MessageJson>) => void;
  'chat:typing': (payload: RoomRef, ack?: Ack<Record<string, never>>) => void;
  'room:presence': (payload: RoomRef, ack?: Ack<PresenceResult>) => void;
  'auth:renew': (payload: RenewTokenPayload, ack?: Ack<RenewTokenResult>) => void;
}

/** Server → client events of the default namespace. */
export interface ServerToClientEvents {
  'chat:message': (message: MessageJson) => void;
  'chat:userJoined': (event: UserJoinedEvent) => void;
  'chat:userLeft': (event: RoomUserEvent) => void;
  'chat:typing': (event: RoomUserEvent) => void;
  'room:broadcast': (event: RoomBroadcastEvent) => void;
  notification: (notification: NotificationJson) => void;
  error: (error: ErrorBody) => void;
}
