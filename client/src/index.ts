export { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from './backoff';
export {
  ChatClient,
  type ChatClientEvents,
  type ChatClientOptions,
  type JoinedEvent,
} from './chat-client';
export type { ConnectionState, ConnectionStatus, TokenProvider } from './connection-state';
export * from './contract';
export { ChatError, isErrorBody, isFinalError } from './errors';
export { newClientMsgId } from './ids';
export type { PendingMessage } from './outbox';
export {
  RestClient,
  type AccessTokenJson,
  type Credentials,
  type HistoryQuery,
  type PageJson,
  type RestClientOptions,
  type UserJson,
} from './rest';
export {
  subscribePersonalEvents,
  subscribeRoomEvents,
  type EventSourceConstructor,
  type PersonalEventsOptions,
  type RoomEventsOptions,
  type SseSubscription,
} from './sse';
export {
  WsClient,
  type HeartbeatOptions,
  type WebSocketConstructor,
  type WebSocketLike,
  type WsClientEvents,
  type WsClientOptions,
} from './ws-client';
export {
  WsClientFrameType,
  WsServerFrameType,
  type WsClientFrame,
  type WsServerFrame,
} from './ws-frames';
