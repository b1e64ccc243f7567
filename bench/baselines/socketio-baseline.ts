/**
 * The bare Socket.IO baseline: the reference design's room server minus
 * storage. Its middleware verifies the handshake's token, a socket joins its
 * personal room, `chat:join` joins `chat:<roomId>` and tells the others, and
 * `chat:message` builds the message the reference would have stored, emits
 * it to the room (sender included) and acks it.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { Server, type Socket } from 'socket.io';
import { baselineSecretFromEnv, verifyBaselineToken, type TokenUser } from '../common/tokens';

type Ack = (response: { ok: true; data: unknown }) => void;

interface SendPayload {
  roomId: string;
  text: string;
  clientMsgId?: string;
}

const port = Number(process.env.PORT ?? 3100);
const host = process.env.HOST ?? '127.0.0.1';

const httpServer = createServer();
const io = new Server(httpServer, { pingTimeout: 20000, pingInterval: 25000 });

const secret = baselineSecretFromEnv();

function roomIdOf(payload: unknown): string {
  return typeof payload === 'string' ? payload : String((payload as { roomId?: unknown }).roomId);
}

io.use((socket, next) => {
  const user = verifyBaselineToken(secret, (socket.handshake.auth as { token?: unknown }).token);
  if (!user) return next(new Error('Authentication failed'));
  socket.data = { user };
  next();
});

io.on('connection', (socket: Socket) => {
  const user = (socket.data as { user: TokenUser }).user;
  void socket.join(`user:${user.id}`);

  socket.on('chat:join', (payload: unknown, ack?: Ack) => {
    const roomId = roomIdOf(payload);
    void socket.join(`chat:${roomId}`);
    socket.to(`chat:${roomId}`).emit('chat:userJoined', { roomId, user });
    ack?.({ ok: true, data: {} });
  });

  socket.on('chat:message', ({ roomId, text, clientMsgId }: SendPayload, ack?: Ack) => {
    const message = {
      id: randomUUID(),
      roomId,
      userId: user.id,
      username: user.username,
      text,
      clientMsgId: clientMsgId ?? null,
      createdAt: new Date().toISOString(),
    };
    io.to(`chat:${roomId}`).emit('chat:message', message);
    ack?.({ ok: true, data: message });
  });
});

httpServer.listen(port, host, () => process.send?.({ type: 'listening', port }));
process.on('disconnect', () => process.exit(0));
// A clean exit, so that `--cpu-prof` writes its profile.
process.on('SIGTERM', () => process.exit(0));
