/**
 * The wire contract as the SDK sees it: names and shapes come from the
 * service's own contract files, never re-declared here.
 */
export { ClientEvent, ServerEvent, NotificationType } from '../../src/contract/events';
export type {
  MemberJson,
  MessageJson,
  NotificationJson,
  RoomJson,
  RoomStreamConnected,
  StreamConnected,
  UserSummaryJson,
} from '../../src/contract/models';
export type {
  AckResponse,
  ClientToServerEvents,
  JoinPayload,
  JoinResult,
  PresenceResult,
  RenewTokenPayload,
  RenewTokenResult,
  RoomBroadcastEvent,
  RoomRef,
  RoomUserEvent,
  SendPayload,
  ServerToClientEvents,
} from '../../src/contract/socket-events';
export { extractMentions } from '../../src/contract/mentions';
export { ErrorCode } from '../../src/common/errors/error-code';
export type { ErrorBody, FieldError } from '../../src/common/errors/error-body';
