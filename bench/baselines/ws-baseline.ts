/**
 * The bare `ws` baseline: the reference design's room server (a
 * `Map<room, Set<WebSocket>>`, join / leave / broadcast, JSON frames), with
 * its check of the URL's token (close 4001 when bad). One addition: `join` is
 * answered with `{type:"joined"}`, as the service does, so that the load
 * generator knows when it is a member.
 */
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { baselineSecretFromEnv, verifyBaselineToken } from '../common/tokens';
import { textOf } from '../common/ws-text';

interface ClientFrame {
  type?: unknown;
  room?: unknown;
  payload?: unknown;
}

const port = Number(process.env.PORT ?? 3200);
const host = process.env.HOST ?? '127.0.0.1';

const secret = baselineSecretFromEnv();
const wss = new WebSocketServer({ port, host });
const rooms = new Map<string, Set<WebSocket>>();

function joinRoom(room: string, ws: WebSocket): void {
  if (!rooms.has(room)) rooms.set(room, new Set());
  rooms.get(room)?.add(ws);
}

function leaveRoom(room: string, ws: WebSocket): void {
  rooms.get(room)?.delete(ws);
}

function broadcastToRoom(room: string, payload: unknown, sender: WebSocket): void {
  const members = rooms.get(room);
  if (!members) return;
  const message = JSON.stringify({ type: 'message', room, payload });
  members.forEach((client) => {
    if (client !== sender && client.readyState === WebSocket.OPEN) client.send(message);
  });
}

function parse(data: RawData): ClientFrame | undefined {
  try {
    return JSON.parse(textOf(data)) as ClientFrame;
  } catch {
    return undefined;
  }
}

/** The reference design's `authenticateFromUrl`: the `?token=` user's id, if the token is good. */
function authenticateFromUrl(url: string | undefined): string | undefined {
  const token = new URL(url ?? '/', 'http://localhost').searchParams.get('token');
  return verifyBaselineToken(secret, token)?.id;
}

wss.on('connection', (ws, request) => {
  const userId = authenticateFromUrl(request.url);
  if (!userId) {
    ws.close(4001, 'Unauthorized');
    return;
  }

  ws.on('message', (data) => {
    const message = parse(data);
    if (!message || typeof message.room !== 'string') return;
    switch (message.type) {
      case 'join':
        joinRoom(message.room, ws);
        ws.send(JSON.stringify({ type: 'joined', room: message.room }));
        break;
      case 'leave':
        leaveRoom(message.room, ws);
        break;
      case 'broadcast':
        broadcastToRoom(message.room, message.payload, ws);
        break;
    }
  });

  ws.on('close', () => {
    rooms.forEach((members) => members.delete(ws));
  });

  ws.send(JSON.stringify({ type: 'connected', userId }));
});

wss.on('listening', () => process.send?.({ type: 'listening', port }));
process.on('disconnect', () => process.exit(0));
// A clean exit, so that `--cpu-prof` writes its profile.
process.on('SIGTERM', () => process.exit(0));
