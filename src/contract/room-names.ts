const CHAT_PREFIX = 'chat:';
const USER_PREFIX = 'user:';

/** Names of the delivery channels; the only place that spells them. */
export const roomNames = {
  chat: (roomId: string) => `${CHAT_PREFIX}${roomId}`,
  user: (userId: string) => `${USER_PREFIX}${userId}`,
  /** The room id of a `chat:` channel; undefined for any other channel. */
  roomIdOf: (channel: string) =>
    channel.startsWith(CHAT_PREFIX) ? channel.slice(CHAT_PREFIX.length) : undefined,
  /** The user id of a `user:` channel; undefined for any other channel. */
  userIdOf: (channel: string) =>
    channel.startsWith(USER_PREFIX) ? channel.slice(USER_PREFIX.length) : undefined,
} as const;
