import type { BackoffOptions } from './backoff';
import type { ConnectionState, TokenProvider } from './connection-state';
import { ErrorCode, type ErrorBody, type MessageJson, type NotificationJson } from './contract';
import { TypedEmitter } from './emitter';
import { ChatError, clientError } from './errors';
import { Reconnector } from './reconnector';
import { RestClient, type FetchLike } from './rest';
import { RoomFeed } from './room-feed';
import {
  parseServerFrame,
  WS_UNAUTHORIZED_CLOSE,
  WsClientFrameType,
  WsServerFrameType,
  type WsClientFrame,
  type WsServerFrame,
} from './ws-frames';

/** Handler property types checked bivariantly, so that both DOM and `ws` sockets fit. */
type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'];

/** What the client needs of a WebSocket: the browser's and the `ws` package's both qualify. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

const OPEN = 1;

export interface HeartbeatOptions {
  /** Silence after which a probe frame is sent. */
  idleMs: number;
  /** Silence after the probe after which the link is declared dead. */
  timeoutMs: number;
}

export interface WsClientOptions {
  /** The service's origin (`http(s)://` or `ws(s)://`); `/ws` is appended. */
  url: string;
  token: TokenProvider;
  /** The WebSocket class: the global one by default, `WebSocket` from `ws` in Node. */
  WebSocket?: WebSocketConstructor;
  backoff?: Partial<BackoffOptions>;
  /** Frames kept while not connected; when full, the oldest is dropped (`dropped` event). */
  maxQueued?: number;
  heartbeat?: Partial<HeartbeatOptions>;
  /** No `connected` frame within this time after opening: give up on the attempt. */
  connectTimeoutMs?: number;
  /**
   * After a reconnect, fetch the chat messages missed meanwhile from REST, so
   * that `chatMessage` is gapless per room. On by default.
   */
  resume?: boolean;
  fetch?: FetchLike;
}

export interface WsClientEvents {
  state: ConnectionState;
  connected: { userId: string };
  joined: { room: string };
  left: { room: string };
  /** An ephemeral broadcast from another member of the room. */
  message: { room: string; payload: unknown };
  /** Chat messages of the joined rooms, per room in seq order. */
  chatMessage: { room: string; message: MessageJson };
  notification: NotificationJson;
  error: ErrorBody;
  /** A queued frame pushed out by a newer one while the queue was full. */
  dropped: WsClientFrame;
}

/** The probe the client sends on a silent link: the server answers any unknown frame with an error. */
const PROBE_FRAME = JSON.stringify({ type: 'ping' });

const DEFAULTS = {
  maxQueued: 100,
  heartbeat: { idleMs: 30_000, timeoutMs: 10_000 },
  connectTimeoutMs: 15_000,
};

/**
 * A raw WebSocket client for `/ws` that improves on a plain reconnecting
 * socket: jittered backoff with a fresh token per attempt, a bounded queue
 * instead of dropped sends, rooms re-joined after a reconnect, missed chat
 * messages fetched again, a heartbeat that notices a dead link even where
 * protocol pings are invisible (browsers), and no retry storm on 4001.
 */
export class WsClient extends TypedEmitter<WsClientEvents> {
  private readonly reconnector: Reconnector;
  private readonly WebSocketImpl: WebSocketConstructor;
  private readonly heartbeat: HeartbeatOptions;
  private readonly connectTimeoutMs: number;
  private readonly rest: RestClient | undefined;
  private readonly rooms = new Map<string, RoomFeed | undefined>();
  private readonly queue: WsClientFrame[] = [];
  private socket: WebSocketLike | undefined;
  private ready = false;
  private lastHeardAt = 0;
  private openedAt = 0;
  private probeSentAt: number | undefined;
  private unansweredProbes = 0;
  private watchdog: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly options: WsClientOptions) {
    super();
    this.WebSocketImpl = options.WebSocket ?? globalWebSocket();
    this.heartbeat = { ...DEFAULTS.heartbeat, ...options.heartbeat };
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs;
    this.rest =
      options.resume === false
        ? undefined
        : new RestClient({
            baseUrl: httpOrigin(options.url),
            token: options.token,
            fetch: options.fetch,
          });
    this.reconnector = new Reconnector({
      token: options.token,
      backoff: options.backoff,
      open: (token) => this.open(token),
    });
    this.reconnector.on('state', (state) => this.emit('state', state));
  }

  get state(): ConnectionState {
    return this.reconnector.state;
  }

  /** Frames waiting for a connection. */
  get queued(): number {
    return this.queue.length;
  }

  connect(): void {
    this.reconnector.start();
  }

  reconnectNow(): void {
    this.reconnector.retryNow();
  }

  close(): void {
    this.reconnector.stop();
    this.abandonSocket(1000, 'Client closed');
  }

  /** Joins now or once connected, and again after every reconnect. */
  join(room: string, options: { since?: number } = {}): void {
    const id = room.toLowerCase();
    if (this.rooms.has(id)) return;
    this.rooms.set(id, this.createFeed(id, options.since));
    if (this.ready) this.sendJoin(id);
  }

  leave(room: string): void {
    const id = room.toLowerCase();
    if (!this.rooms.delete(id)) return;
    if (this.ready) this.write({ type: WsClientFrameType.Leave, room: id });
  }

  /** An ephemeral message to the other members of the room; queued while not connected. */
  broadcast(room: string, payload: unknown): void {
    const frame: WsClientFrame = { type: WsClientFrameType.Broadcast, room, payload };
    if (this.ready) this.write(frame);
    else this.enqueue(frame);
  }

  private createFeed(room: string, since: number | undefined): RoomFeed | undefined {
    const rest = this.rest;
    if (!rest) return undefined;
    return new RoomFeed({
      roomId: room,
      since,
      deliver: (message) => this.emit('chatMessage', { room, message }),
      fetchAfter: (roomId, after) => rest.history(roomId, { since: after, limit: 200 }),
    });
  }

  private enqueue(frame: WsClientFrame): void {
    this.queue.push(frame);
    const limit = this.options.maxQueued ?? DEFAULTS.maxQueued;
    while (this.queue.length > limit) this.emit('dropped', this.queue.shift() as WsClientFrame);
  }

  private open(token: string): void {
    this.abandonSocket(1000, 'Replaced');
    const socket = new this.WebSocketImpl(
      `${wsOrigin(this.options.url)}/ws?token=${encodeURIComponent(token)}`,
    );
    this.socket = socket;
    this.openedAt = Date.now();
    this.lastHeardAt = this.openedAt;
    socket.onmessage = (event) => {
      if (this.socket === socket) this.heard(event.data);
    };
    socket.onclose = (event) => {
      if (this.socket === socket) this.closed(event.code, event.reason);
    };
    socket.onerror = () => undefined; // a close event always follows
    this.startWatchdog();
  }

  private heard(data: unknown): void {
    this.lastHeardAt = Date.now();
    this.probeSentAt = undefined;
    const frame = parseServerFrame(data);
    if (frame) this.dispatch(frame);
  }

  private dispatch(frame: WsServerFrame): void {
    switch (frame.type) {
      case WsServerFrameType.Connected:
        return this.connected(frame.userId);
      case WsServerFrameType.Joined:
        return this.joined(frame.room);
      case WsServerFrameType.Left:
        return this.emit('left', { room: frame.room });
      case WsServerFrameType.Message:
        return this.emit('message', { room: frame.room, payload: frame.payload });
      case WsServerFrameType.ChatMessage:
        return this.chatMessage(frame.room, frame.message);
      case WsServerFrameType.Notification:
        return this.emit('notification', frame.notification);
      case WsServerFrameType.Error:
        return this.serverError(frame);
    }
  }

  private connected(userId: string): void {
    this.ready = true;
    this.reconnector.succeeded();
    this.emit('connected', { userId });
    // Joins go first: the server handles a connection's frames in order.
    for (const room of this.rooms.keys()) this.sendJoin(room);
    for (const frame of this.queue.splice(0)) this.write(frame);
  }

  private sendJoin(room: string): void {
    this.rooms.get(room)?.beginSync();
    this.write({ type: WsClientFrameType.Join, room });
  }

  private joined(room: string): void {
    const feed = this.rooms.get(room);
    this.emit('joined', { room });
    // Known position: fetch what was missed; unknown: start with the next live message.
    if (feed?.since !== undefined) this.track(feed.endSync({ missed: [], truncated: true }));
  }

  private chatMessage(room: string, message: MessageJson): void {
    const id = room.toLowerCase();
    if (!this.rooms.has(id)) return;
    const feed = this.rooms.get(id);
    if (!feed) return this.emit('chatMessage', { room: id, message });
    if (feed.since === undefined) {
      this.track(feed.endSync({ roomLastSeq: message.seq - 1, missed: [], truncated: false }));
    }
    this.track(feed.receive(message));
  }

  private serverError(frame: ErrorBody & { type: string }): void {
    const { code, message, details } = frame;
    // The answer to a liveness probe is expected and says nothing to the application.
    if (code === ErrorCode.ValidationFailed && this.unansweredProbes > 0) {
      this.unansweredProbes -= 1;
      return;
    }
    this.emit('error', { code, message, details: details ?? [] });
  }

  private closed(code: number, reason: string): void {
    this.detach();
    if (code === WS_UNAUTHORIZED_CLOSE) {
      this.reconnector.rejected(clientError(ErrorCode.Unauthorized, reason || 'Unauthorized'));
    } else {
      this.reconnector.lost();
    }
  }

  private startWatchdog(): void {
    clearInterval(this.watchdog);
    const shortest = Math.min(
      this.heartbeat.idleMs,
      this.heartbeat.timeoutMs,
      this.connectTimeoutMs,
    );
    const tick = Math.max(50, shortest / 2);
    this.watchdog = setInterval(() => this.checkLiveness(), tick);
  }

  private checkLiveness(): void {
    const socket = this.socket;
    if (!socket) return;
    const now = Date.now();
    const stuckConnecting = !this.ready && now - this.openedAt >= this.connectTimeoutMs;
    const probeUnanswered =
      this.probeSentAt !== undefined && now - this.probeSentAt >= this.heartbeat.timeoutMs;
    if (stuckConnecting || probeUnanswered) {
      // A dead link may never finish a closing handshake: stop waiting for it.
      this.abandonSocket(4000, 'No answer');
      this.reconnector.lost();
    } else if (
      this.ready &&
      this.probeSentAt === undefined &&
      now - this.lastHeardAt >= this.heartbeat.idleMs
    ) {
      this.probeSentAt = now;
      this.unansweredProbes += 1;
      this.sendText(PROBE_FRAME);
    }
  }

  private write(frame: WsClientFrame): void {
    if (!this.sendText(JSON.stringify(frame))) this.enqueue(frame);
  }

  private sendText(text: string): boolean {
    if (this.socket?.readyState !== OPEN) return false;
    this.socket.send(text);
    return true;
  }

  private abandonSocket(code: number, reason: string): void {
    const socket = this.socket;
    this.detach();
    if (!socket) return;
    socket.onmessage = null;
    socket.onclose = null;
    try {
      socket.close(code, reason);
    } catch {
      // Already closing.
    }
  }

  private detach(): void {
    clearInterval(this.watchdog);
    this.watchdog = undefined;
    this.socket = undefined;
    this.ready = false;
    this.probeSentAt = undefined;
    this.unansweredProbes = 0;
  }

  private track(work: Promise<void>): void {
    work.catch((error: unknown) =>
      this.emit(
        'error',
        error instanceof ChatError ? error.body : clientError(ErrorCode.Unavailable, String(error)),
      ),
    );
  }
}

function globalWebSocket(): WebSocketConstructor {
  const candidate = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!candidate) {
    throw new Error('No global WebSocket: pass one, e.g. `WebSocket` from the ws package');
  }
  return candidate;
}

function wsOrigin(url: string): string {
  return url.replace(/^http(s?):\/\//, 'ws$1://').replace(/\/+$/, '');
}

function httpOrigin(url: string): string {
  return url.replace(/^ws(s?):\/\//, 'http$1://').replace(/\/+$/, '');
}
