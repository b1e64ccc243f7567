/**
 * The bare Socket.IO baseline: the reference design's room server minus
 * authentication and storage. A socket joins its personal room, `chat:join`
 * joins `chat:<roomId>` and tells the others, and `chat:message` builds the
 * message the reference would have stored, emits it to the room (sender
 * included) and acks it.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { Server, type Socket } from 'socket.io';

interface BaselineUser {
  id: string;
  username: string;
}

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

/** Who the handshake says it is: no check, as the bare server has no auth. */
function userOf(socket: Socket): BaselineUser {
  const auth = socket.handshake.auth as { userId?: unknown; username?: unknown };
  const id = typeof auth.userId === 'string' ? auth.userId : socket.id;
  return { id, username: typeof auth.username === 'string' ? auth.username : id };
}

function roomIdOf(payload: unknown): string {
  return typeof payload === 'string' ? payload : String((payload as { roomId?: unknown }).roomId);
}

io.on('connection', (socket) => {
  const user = userOf(socket);
  socket.data = { user };
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
