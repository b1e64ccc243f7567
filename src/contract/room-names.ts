const CHAT_PREFIX = 'chat:';

/** Names of the delivery channels; the only place that spells them. */
export const roomNames = {
  chat: (roomId: string) => `${CHAT_PREFIX}${roomId}`,
  user: (userId: string) => `user:${userId}`,
  /** The room id of a `chat:` channel; undefined for any other channel. */
  roomIdOf: (channel: string) =>
    channel.startsWith(CHAT_PREFIX) ? channel.slice(CHAT_PREFIX.length) : undefined,
} as const;
