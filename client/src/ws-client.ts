import { Backoff, RELEAVE_BACKOFF, REJOIN_BACKOFF, type BackoffOptions } from './backoff';
import type { ConnectionState, TokenProvider } from './connection-state';
import {
  ErrorCode,
  NotificationType,
  type ErrorBody,
  type MessageJson,
  type NotificationJson,
} from './contract';
import { TypedEmitter } from './emitter';
import {
  clientError,
  closedError,
  endsRetries,
  failureReporter,
  type ServerFailures,
} from './errors';
import { Reconnector } from './reconnector';
import { RestClient, type FetchLike } from './rest';
import { RoomFeed } from './room-feed';
import {
  parseServerFrame,
  WS_UNAUTHORIZED_CLOSE,
  WsClientFrameType,
  WsServerFrameType,
  type WsClientFrame,
  type WsErrorRequest,
  type WsServerFrame,
} from './ws-frames';
import { DEFAULT_MAX_PAYLOAD_BYTES, payloadTooLarge } from './payload-size';
import { withoutTrailingSlashes } from './urls';
import { WsReplies } from './ws-replies';

/** Handler property types checked bivariantly, so that both DOM and `ws` sockets fit. */
type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'];

/** What the client needs of a WebSocket: the browser's and the `ws` package's both qualify. */

/** Refusals of a leave that a later try may not meet: too many frames waiting, a rate limit. */
const PASSING_REFUSALS: ReadonlySet<string> = new Set([
  ErrorCode.Unavailable,
  ErrorCode.RateLimited,
]);

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
  /** A token provider that has not answered by then fails the attempt (default 15 s). */
  tokenTimeoutMs?: number;
  /** Frames kept while not connected; when full, the oldest is dropped (`dropped` event). */
  maxQueued?: number;
  /** The server's `WS_MAX_PAYLOAD_BYTES` (64 KiB by default): larger broadcasts are refused here. */
  maxPayloadBytes?: number;
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
  /** The server took a token handed over by `renewToken`: the connection lasts until `expiresAt`. */
  authenticated: { userId: string; expiresAt: string };
  joined: { room: string };
  left: { room: string };
  /**
   * A room is dropped: the server refused it for good (absent, private; a
   * final error) or failed on its join again and again (INTERNAL).
   */
  roomLost: { room: string; error: ErrorBody };
  /** An ephemeral broadcast from another member of the room. */
  message: { room: string; payload: unknown };
  /** Chat messages of the joined rooms, per room in seq order. */
  chatMessage: { room: string; message: MessageJson };
  notification: NotificationJson;
  /**
   * Errors the server reported, and failures the SDK could not hide. One
   * that refuses a frame names it (`request`, and `room` once valid): a
   * broadcast refused for now (`UNAVAILABLE`, `RATE_LIMITED`) is not kept,
   * and is the app's to send again.
   */
  error: ErrorBody & WsErrorRequest;
  /**
   * A REST read of a room's missed messages failed (also told as `error`):
   * the room may lack messages until the read, tried again by itself,
   * succeeds, which `caughtUp` tells.
   */
  catchUpFailed: { room: string; error: ErrorBody };
  /** A room whose catch-up had failed has every message again. */
  caughtUp: { room: string };
  /** A queued frame pushed out by a newer one while the queue was full. */
  dropped: WsClientFrame;
}

/** Sent on a silent link, and after broadcasts to settle them; the server answers `pong`. */
const PING_FRAME: WsClientFrame = { type: WsClientFrameType.Ping };

interface WsRoom extends ServerFailures {
  /** Absent with `resume: false`: chat messages are then passed on as they come. */
  feed?: RoomFeed;
  rejoin: Backoff;
  retryTimer?: ReturnType<typeof setTimeout>;
  /** Its join went out on the current connection, so a leave has something to undo. */
  joinSent?: boolean;
}

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
  private readonly rooms = new Map<string, WsRoom>();
  /** Leaves refused for now (too many frames waiting), sent again on the same connection. */
  private readonly leaving = new Map<
    string,
    { backoff: Backoff; timer?: ReturnType<typeof setTimeout> }
  >();
  private readonly replies = new WsReplies();
  private readonly queue: WsClientFrame[] = [];
  private socket: WebSocketLike | undefined;
  private ready = false;
  private lastHeardAt = 0;
  private openedAt = 0;
  private probeSentAt: number | undefined;
  private watchdog: ReturnType<typeof setInterval> | undefined;
  /** The token the current socket was opened with. */
  private openedWith?: string;
  /** A token handed over while not connected, for the next connection (unless made with it). */
  private renewal?: string;
  /** Between `close()` and the next `connect()`. */
  private closedByCaller = false;

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
      tokenTimeoutMs: options.tokenTimeoutMs,
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
    this.closedByCaller = false;
    this.reconnector.start();
  }

  reconnectNow(): void {
    this.reconnector.retryNow();
  }

  /** Disconnects for good: rooms are forgotten, as `ChatClient.close()` forgets them. */
  close(): void {
    this.closedByCaller = true;
    this.reconnector.stop();
    this.renewal = undefined;
    this.abandonSocket(1000, 'Client closed');
    for (const id of [...this.rooms.keys()]) this.forget(id);
    // For rooms forgotten with the rest: a later connection has not joined them.
    for (const frame of this.queue.splice(0)) this.emit('dropped', frame);
  }

  /**
   * Joins now or once connected, and again after every reconnect; a refused
   * join is retried with backoff, or dropped with `roomLost` when final.
   */
  join(room: string, options: { since?: number } = {}): void {
    const id = room.toLowerCase();
    // After close(): the next connection may be another user's.
    if (this.closedByCaller) return void this.emit('roomLost', { room, error: closedError().body });
    if (this.rooms.has(id)) return;
    this.stopLeaving(id);
    this.rooms.set(id, {
      feed: this.createFeed(id, options.since),
      rejoin: new Backoff(REJOIN_BACKOFF),
      internalErrors: 0,
    });
    if (this.ready) this.sendJoin(id);
  }

  /**
   * Hands the live connection a fresh token of the same user: it then lasts
   * until that token expires, instead of closing (4001), and reconnecting,
   * when the one it connected with does. `authenticated` tells it was taken;
   * a refusal is an `error` naming the `auth` request, and leaves the
   * connection as it was. Until either comes (not connected, or the
   * connection lost first), the next connection is handed the token, unless
   * it is made with it.
   */
  renewToken(token: string): void {
    // After close(): the token belongs to whoever used the client before.
    if (this.closedByCaller) return;
    this.renewal = token;
    if (this.ready) this.send({ type: WsClientFrameType.Auth, token });
  }

  /**
   * Never queued: a room belongs to one connection, so the next one has not
   * joined it, and a queued leave would undo a join made before it connects.
   */
  leave(room: string): void {
    const id = room.toLowerCase();
    const joinSent = this.rooms.get(id)?.joinSent === true;
    if (!this.forget(id)) return;
    if (this.ready && joinSent) this.send({ type: WsClientFrameType.Leave, room: id });
  }

  /**
   * An ephemeral message to the other members of the room; queued while not
   * connected. Throws a `ChatError` (PAYLOAD_TOO_LARGE) for a frame over
   * `maxPayloadBytes`, which the server would answer by closing the connection.
   */
  broadcast(room: string, payload: unknown): void {
    const frame: WsClientFrame = { type: WsClientFrameType.Broadcast, room, payload };
    const tooLarge = payloadTooLarge(
      frame,
      this.options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
    );
    if (tooLarge) throw tooLarge;
    if (this.closedByCaller) this.emit('dropped', frame);
    else if (this.ready) this.write(frame);
    else this.enqueue(frame);
  }

  private createFeed(room: string, since: number | undefined): RoomFeed | undefined {
    const rest = this.rest;
    if (!rest) return undefined;
    return new RoomFeed({
      roomId: room,
      since,
      deliver: (message) => this.emit('chatMessage', { room, message }),
      fetchAfter: (roomId, after, signal) =>
        rest.history(roomId, { since: after, limit: 200 }, { signal }),
      lost: (error) => this.lose(room, error),
      caughtUp: () => this.emit('caughtUp', { room }),
    });
  }

  /** Stops treating the room as joined, and tells the app why. */
  private lose(id: string, error: ErrorBody): void {
    if (this.forget(id)) this.emit('roomLost', { room: id, error });
  }

  /** Stops treating the room as joined: no re-join, no gap fill. */
  private forget(id: string): boolean {
    const room = this.rooms.get(id);
    if (!room) return false;
    clearTimeout(room.retryTimer);
    room.feed?.close();
    this.rooms.delete(id);
    return true;
  }

  private enqueue(frame: WsClientFrame): void {
    this.queue.push(frame);
    const limit = this.options.maxQueued ?? DEFAULTS.maxQueued;
    while (this.queue.length > limit) this.emit('dropped', this.queue.shift() as WsClientFrame);
  }

  private open(token: string): void {
    this.abandonSocket(1000, 'Replaced');
    this.openedWith = token;
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
        this.replies.answered(frame);
        return this.joined(frame.room.toLowerCase(), frame.lastSeq);
      case WsServerFrameType.Left:
        this.replies.answered(frame);
        this.stopLeaving(frame.room.toLowerCase());
        return this.emit('left', { room: frame.room });
      case WsServerFrameType.Pong:
        this.replies.answered(frame);
        return;
      case WsServerFrameType.Authenticated:
        this.renewalAnswered(this.replies.answered(frame));
        return this.emit('authenticated', { userId: frame.userId, expiresAt: frame.expiresAt });
      case WsServerFrameType.Message:
        return this.emit('message', { room: frame.room, payload: frame.payload });
      case WsServerFrameType.ChatMessage:
        return this.chatMessage(frame.room, frame.message);
      case WsServerFrameType.Notification:
        return this.notification(frame.notification);
      case WsServerFrameType.Error:
        return this.serverError(frame);
    }
  }

  private connected(userId: string): void {
    // Taken before the state is announced: a room a listener joins then is joined by that call
    // (also one it left and joined again: a new entry under the same id).
    const rooms = [...this.rooms];
    this.ready = true;
    // Kept until answered: this connection too may be lost first.
    if (this.renewal === this.openedWith) this.renewal = undefined;
    if (this.renewal !== undefined)
      this.send({ type: WsClientFrameType.Auth, token: this.renewal });
    this.reconnector.succeeded();
    this.emit('connected', { userId });
    // Joins go first: the server handles a connection's frames in order.
    for (const [id, room] of rooms) if (this.rooms.get(id) === room) this.sendJoin(id);
    for (const frame of this.queue.splice(0)) this.write(frame);
  }

  /** Not queued when the socket is gone: the reconnect joins every room anyway. */
  private sendJoin(id: string): void {
    const room = this.rooms.get(id);
    if (!room) return;
    clearTimeout(room.retryTimer);
    room.feed?.beginSync();
    this.send({ type: WsClientFrameType.Join, room: id });
    room.joinSent = true;
  }

  /** A join answered after the room was left is not told: its `left` follows. */
  private joined(id: string, lastSeq: number | undefined): void {
    const room = this.rooms.get(id);
    if (!room) return;
    this.emit('joined', { room: id });
    clearTimeout(room.retryTimer);
    room.rejoin.reset();
    room.internalErrors = 0;
    if (room.feed) this.resume(room.feed, lastSeq);
  }

  /**
   * Known position: fetch what was missed, if the join's lastSeq says
   * anything was (a server that does not tell it is asked). Unknown: start
   * at the room's last seq at join time, so that a later outage can be
   * caught up; servers that do not tell it leave the start to the first
   * live message.
   */
  private resume(feed: RoomFeed, lastSeq: number | undefined): void {
    const since = feed.since;
    if (since === undefined && lastSeq === undefined) return;
    const missedSome = since !== undefined && (lastSeq === undefined || lastSeq > since);
    this.track(
      feed.endSync({ roomLastSeq: lastSeq, missed: [], truncated: missedSome }),
      feed.roomId,
    );
  }

  private joinRefused(id: string, error: ErrorBody): void {
    const room = this.rooms.get(id);
    if (!room) return;
    // Not in the room on the server: a leave before the retry has nothing to undo.
    room.joinSent = false;
    const delay = endsRetries(error, room) ? null : room.rejoin.next();
    if (delay === null) {
      this.lose(id, error);
      return;
    }
    room.retryTimer = setTimeout(() => {
      if (this.ready && this.rooms.get(id) === room) this.sendJoin(id);
    }, delay);
  }

  /**
   * Sent again with backoff (a few times) while the room is not joined again; the server
   * would otherwise keep the connection in it. A new connection is in no
   * room to begin with.
   */
  private leaveRefused(id: string, error: ErrorBody): void {
    const leaving = this.leaving.get(id) ?? { backoff: new Backoff(RELEAVE_BACKOFF) };
    this.leaving.set(id, leaving);
    clearTimeout(leaving.timer);
    const delay = leaving.backoff.next();
    if (delay === null) {
      this.leaving.delete(id);
      return void this.emit('error', { ...error, request: WsClientFrameType.Leave, room: id });
    }
    leaving.timer = setTimeout(() => {
      if (this.ready && !this.rooms.has(id)) this.send({ type: WsClientFrameType.Leave, room: id });
      else this.leaving.delete(id);
    }, delay);
  }

  private notification(notification: NotificationJson): void {
    if (notification.type === NotificationType.RoomRemoved) {
      this.forget(notification.room.id.toLowerCase());
    }
    this.emit('notification', notification);
  }

  private chatMessage(roomId: string, message: MessageJson): void {
    const id = roomId.toLowerCase();
    const room = this.rooms.get(id);
    if (!room) return;
    const feed = room.feed;
    if (!feed) return this.emit('chatMessage', { room: id, message });
    if (feed.since === undefined) {
      this.track(feed.endSync({ roomLastSeq: message.seq - 1, missed: [], truncated: false }), id);
    }
    this.track(feed.receive(message), id);
  }

  private serverError(frame: ErrorBody & WsErrorRequest & { type: string }): void {
    const { code, message, details } = frame;
    const error = { code, message, details: details ?? [] };
    const refused = this.replies.refused(frame);
    this.renewalAnswered(refused);
    if (refused?.type === WsClientFrameType.Join) return this.joinRefused(refused.room, error);
    if (refused?.type === WsClientFrameType.Leave && PASSING_REFUSALS.has(error.code))
      return this.leaveRefused(refused.room, error);
    const { request, room } = frame;
    this.emit('error', {
      ...error,
      ...(request === undefined ? {} : { request }),
      ...(room === undefined ? {} : { room }),
    });
  }

  /** A renewal answered, taken or refused, is handed on no more; a newer one still is. */
  private renewalAnswered(frame: WsClientFrame | undefined): void {
    if (frame?.type === WsClientFrameType.Auth && frame.token === this.renewal)
      this.renewal = undefined;
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
      this.send(PING_FRAME);
    }
  }

  private write(frame: WsClientFrame): void {
    if (!this.send(frame)) this.enqueue(frame);
  }

  private send(frame: WsClientFrame): boolean {
    if (this.socket?.readyState !== OPEN) return false;
    this.socket.send(JSON.stringify(frame));
    this.replies.sent(frame);
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

  private stopLeaving(id: string): void {
    clearTimeout(this.leaving.get(id)?.timer);
    this.leaving.delete(id);
  }

  private detach(): void {
    for (const id of [...this.leaving.keys()]) this.stopLeaving(id);
    clearInterval(this.watchdog);
    this.watchdog = undefined;
    this.socket = undefined;
    this.ready = false;
    this.probeSentAt = undefined;
    this.replies.clear();
    // Every room is joined again on the next connection.
    for (const room of this.rooms.values()) {
      clearTimeout(room.retryTimer);
      room.joinSent = false;
    }
  }

  /** A REST gap fill that failed is tried again by the feed itself; the app hears of the failure. */
  private readonly track = failureReporter((error, room: string) => {
    this.emit('error', error);
    this.emit('catchUpFailed', { room, error });
  });
}

function globalWebSocket(): WebSocketConstructor {
  const candidate = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!candidate) {
    throw new Error('No global WebSocket: pass one, e.g. `WebSocket` from the ws package');
  }
  return candidate;
}

function wsOrigin(url: string): string {
  return withoutTrailingSlashes(url.replace(/^http(s?):\/\//, 'ws$1://'));
}

function httpOrigin(url: string): string {
  return withoutTrailingSlashes(url.replace(/^ws(s?):\/\//, 'http$1://'));
}
