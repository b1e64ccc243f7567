/** Socket.IO event names of the wire contract, shared by server, SDK and tests. */
export const ClientEvent = {
  Join: 'chat:join',
  Leave: 'chat:leave',
  Message: 'chat:message',
  Typing: 'chat:typing',
  Presence: 'room:presence',
  /** Presents a fresh token, so that the connection outlives the one it connected with. */
  RenewToken: 'auth:renew',
} as const;
export type ClientEvent = (typeof ClientEvent)[keyof typeof ClientEvent];

export const ServerEvent = {
  Message: 'chat:message',
  UserJoined: 'chat:userJoined',
  UserLeft: 'chat:userLeft',
  Typing: 'chat:typing',
  RoomBroadcast: 'room:broadcast',
  Notification: 'notification',
  Error: 'error',
} as const;
export type ServerEvent = (typeof ServerEvent)[keyof typeof ServerEvent];

export const NotificationType = {
  Mention: 'mention',
  RoomInvited: 'room:invited',
  RoomRemoved: 'room:removed',
} as const;
export type NotificationType = (typeof NotificationType)[keyof typeof NotificationType];

/**
 * Server-Sent Events names besides `chat:message` and `notification`.
 * `refused` carries the error of a stream refused for now (rate limited,
 * unavailable): it ends at once with a `retry:` delay, because EventSource
 * reconnects after an ended stream but gives up for good on an error status.
 * `closed` carries the error that ends an open stream: its token expired
 * (`UNAUTHORIZED`), the account was deleted (`UNAUTHORIZED`), the user left
 * the private room or was removed from it (`NOT_FOUND`), the node shuts
 * down (`UNAVAILABLE`).
 */
export const SseEvent = { Connected: 'connected', Refused: 'refused', Closed: 'closed' } as const;
