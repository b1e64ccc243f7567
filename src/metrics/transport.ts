/** The transports, as metrics label them. */
export const Transport = {
  SocketIo: 'socket.io',
  Ws: 'ws',
  Sse: 'sse',
  Rest: 'rest',
} as const;
export type Transport = (typeof Transport)[keyof typeof Transport];
