/** Names of the delivery channels; the only place that spells them. */
export const roomNames = {
  chat: (roomId: string) => `chat:${roomId}`,
  user: (userId: string) => `user:${userId}`,
} as const;
