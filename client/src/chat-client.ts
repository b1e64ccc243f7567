import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import { Backoff, REJOIN_BACKOFF, type BackoffOptions } from './backoff';
import type { ConnectionState, TokenProvider } from './connection-state';
import {
  ClientEvent,
  ErrorCode,
  NotificationType,
  ServerEvent,
  type AckResponse,
  type ClientToServerEvents,
  type ErrorBody,
  type JoinResult,
  type MessageJson,
  type NotificationJson,
  type PresenceResult,
  type RenewTokenResult,
  type RoomBroadcastEvent,
  type RoomJson,
  type RoomUserEvent,
  type ServerToClientEvents,
  type UserSummaryJson,
} from './contract';
import { TypedEmitter } from './emitter';
import {
  ChatError,
  clientError,
  closedError,
  endsRetries,
  failureReporter,
  isErrorBody,
  type ServerFailures,
} from './errors';
import { newClientMsgId } from './ids';
import { Outbox, type PendingMessage } from './outbox';
import { DEFAULT_MAX_PAYLOAD_BYTES, payloadTooLarge } from './payload-size';
import { Reconnector } from './reconnector';
import { RestClient, type FetchLike } from './rest';
import { RoomFeed } from './room-feed';

export interface ChatClientOptions {
  /** The service's origin, e.g. `http://127.0.0.1:3000` or `location.origin`. */
  url: string;
  /** Called before every (re)connection, so that an expired token is replaced. */
  token: TokenProvider;
  backoff?: Partial<BackoffOptions>;
  /** A token provider that has not answered by then fails the attempt (default 15 s). */
  tokenTimeoutMs?: number;
  /** How long to wait for an ack before treating the request as lost (default 35 s). */
  ackTimeoutMs?: number;
  /** The server's `WS_MAX_PAYLOAD_BYTES` (64 KiB by default): larger sends are refused here. */
  maxPayloadBytes?: number;
  /** Extra socket.io-client options; reconnection always stays with the SDK. */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
  /** REST access for filling gaps; built from `url` and `token` when absent. */
  rest?: RestClient;
  fetch?: FetchLike;
}

export interface JoinedEvent {
  room: RoomJson;
  members: UserSummaryJson[];
  /** More members than `members` holds: the rest by `RestClient.listMembers`. */
  membersTruncated: boolean;
}

export interface ChatClientEvents {
  state: ConnectionState;
  /** Every message of the joined rooms, per room in seq order, without gaps or duplicates. */
  message: MessageJson;
  /** After every successful (re)join of a room. */
  joined: JoinedEvent;
  /**
   * A room is dropped: its join was refused for good (removed, deleted; a
   * final error) or failed on the server again and again (INTERNAL).
   */
  roomLost: { roomId: string; error: ErrorBody };
  userJoined: RoomUserEvent;
  userLeft: RoomUserEvent;
  typing: RoomUserEvent;
  broadcast: RoomBroadcastEvent;
  notification: NotificationJson;
  /** Errors the server reported without an ack, and failures the SDK could not hide. */
  error: ErrorBody;
  /**
   * A REST read of a room's missed messages failed (also told as `error`):
   * the room may lack messages until the read, tried again by itself,
   * succeeds, which `caughtUp` tells.
   */
  catchUpFailed: { roomId: string; error: ErrorBody };
  /** A room whose catch-up had failed has every message again. */
  caughtUp: { roomId: string };
}

type ChatSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
type AckedEvent = 'chat:join' | 'chat:leave' | 'chat:message' | 'room:presence' | 'auth:renew';
type PayloadOf<E extends AckedEvent> = Exclude<Parameters<ClientToServerEvents[E]>[0], string>;
type AckDataOf<E extends AckedEvent> =
  NonNullable<Parameters<ClientToServerEvents[E]>[1]> extends (
    response: AckResponse<infer T>,
  ) => void
    ? T
    : never;

interface JoinedRoom extends ServerFailures {
  feed: RoomFeed;
  firstJoin: Deferred<JoinResult>;
  rejoin: Backoff;
  retryTimer?: ReturnType<typeof setTimeout>;
}

/**
 * Longer than the service takes to answer a send whose write waits on a
 * slow database (twice its MESSAGE_WRITE_TIMEOUT_MS and a quarter of a
 * second: 30.25 s by default): one sent again sooner, while the database
 * still holds it, only queues behind it there. Joins and other requests
 * wait as long. A connection that died is found by its heartbeat.
 */
export const DEFAULT_ACK_TIMEOUT_MS = 35_000;

const HISTORY_PAGE_LIMIT = 200;

/**
 * The Socket.IO client of the chat service. It keeps a connection up with its
 * own jittered backoff and a fresh token on every attempt, re-joins rooms with
 * `since` after a reconnect so that messages reach the application in order
 * and exactly once, and sends through an outbox that survives disconnections.
 */
export class ChatClient extends TypedEmitter<ChatClientEvents> {
  private readonly socket: ChatSocket;
  private readonly reconnector: Reconnector;
  private readonly outbox: Outbox;
  private readonly rest: RestClient;
  private readonly rooms = new Map<string, JoinedRoom>();
  private readonly ackTimeoutMs: number;
  private readonly maxPayloadBytes: number;
  /** Between `close()` and the next `connect()`. */
  private closed = false;
  /** The token the current connection attempt presented. */
  private connectingWith?: string;
  /** A token handed over while not connected, for the next connection (unless made with it). */
  private renewal?: string;

  constructor(options: ChatClientOptions) {
    super();
    this.ackTimeoutMs = options.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
    this.maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    this.rest =
      options.rest ??
      new RestClient({ baseUrl: options.url, token: options.token, fetch: options.fetch });
    this.socket = io(options.url, {
      // Polling would need sticky sessions behind a load balancer; the service speaks WebSocket.
      transports: ['websocket'],
      ...options.socketOptions,
      autoConnect: false,
      reconnection: false,
      // socket.io's own retry queue outlives close(): the outbox retries instead.
      retries: 0,
      forceNew: true,
    });
    this.reconnector = new Reconnector({
      token: options.token,
      backoff: options.backoff,
      tokenTimeoutMs: options.tokenTimeoutMs,
      open: (token) => this.open(token),
    });
    this.reconnector.on('state', (state) => this.emit('state', state));
    const socket = this.socket;
    this.outbox = new Outbox({
      get ready() {
        return socket.connected;
      },
      send: (payload) => this.request(ClientEvent.Message, payload),
    });
    this.listen();
  }

  get state(): ConnectionState {
    return this.reconnector.state;
  }

  /** Messages sent but not yet acknowledged, oldest first per room. */
  get pendingMessages(): PendingMessage[] {
    return this.outbox.pending;
  }

  connect(): void {
    this.closed = false;
    this.reconnector.start();
  }

  /** Tries at once instead of waiting for the backoff, or starts again after giving up. */
  reconnectNow(): void {
    this.reconnector.retryNow();
  }

  /**
   * Disconnects for good: rooms are forgotten, joins not yet made and unsent
   * messages rejected, and so are those asked for until `connect()` again.
   */
  close(): void {
    this.closed = true;
    this.renewal = undefined;
    this.reconnector.stop();
    // Emits the socket buffered (a connection whose pings had lapsed) would go out on the next
    // connect(), perhaps as another user; emptied, their acks fail now instead.
    this.socket.sendBuffer = [];
    this.socket.disconnect();
    const closed = closedError().body;
    for (const id of [...this.rooms.keys()]) this.forget(id, closed);
    this.outbox.discard(closed.message);
  }

  /**
   * Joins a room, now or as soon as connected, and again after every reconnect.
   * With `since`, every message after it is delivered first; without it, the
   * feed starts with the messages newer than the room's `lastSeq` at join time.
   */
  join(roomId: string, options: { since?: number } = {}): Promise<JoinResult> {
    if (this.closed) return Promise.reject(closedError());
    const id = roomId.toLowerCase();
    const existing = this.rooms.get(id);
    if (existing) return existing.firstJoin.promise;
    const room: JoinedRoom = {
      feed: new RoomFeed({
        roomId: id,
        since: options.since,
        deliver: (message) => this.emit('message', message),
        fetchAfter: (feedRoomId, since, signal) =>
          this.rest.history(feedRoomId, { since, limit: HISTORY_PAGE_LIMIT }, { signal }),
        lost: (error) => this.lose(room, error),
        caughtUp: () => this.emit('caughtUp', { roomId: id }),
      }),
      firstJoin: deferred(),
      rejoin: new Backoff(REJOIN_BACKOFF),
      internalErrors: 0,
    };
    this.rooms.set(id, room);
    if (this.socket.connected) this.sendJoin(room);
    return room.firstJoin.promise;
  }

  async leave(roomId: string): Promise<void> {
    const id = roomId.toLowerCase();
    if (!this.forget(id, clientError(ErrorCode.Conflict, 'Left before joining'))) return;
    if (this.socket.connected)
      await this.request(ClientEvent.Leave, { roomId: id }).catch(() => undefined);
  }

  /** The last seq delivered for a joined room. */
  lastSeq(roomId: string): number | undefined {
    return this.rooms.get(roomId.toLowerCase())?.feed.since;
  }

  /**
   * Sends a message, now or once connected, resending it with the same
   * `clientMsgId` until the server acknowledges it: stored exactly once.
   * Rejects only when the server refuses it for good, or at once with
   * PAYLOAD_TOO_LARGE when it is over `maxPayloadBytes`.
   */
  send(roomId: string, text: string, options: { clientMsgId?: string } = {}): Promise<MessageJson> {
    if (this.closed) return Promise.reject(closedError());
    // Measured as it will be sent: with the id the outbox would otherwise add.
    const clientMsgId = options.clientMsgId || newClientMsgId();
    const tooLarge = payloadTooLarge({ roomId, text, clientMsgId }, this.maxPayloadBytes);
    if (tooLarge) return Promise.reject(tooLarge);
    return this.outbox.send(roomId.toLowerCase(), text, clientMsgId);
  }

  /** Tells the room that the user is typing; dropped while disconnected. */
  typing(roomId: string): void {
    if (this.socket.connected) this.socket.volatile.emit(ClientEvent.Typing, { roomId });
  }

  async presence(roomId: string): Promise<UserSummaryJson[]> {
    const result: PresenceResult = unwrap(await this.request(ClientEvent.Presence, { roomId }));
    return result.users;
  }

  /**
   * Hands the live connection a fresh token of the same user (one refreshed
   * with `RestClient.refresh`): it then lasts until that token expires,
   * instead of ending, and reconnecting, when the one it connected with does.
   * Rejects when the server refuses the token (the connection is then as it
   * was), and when not connected or lost before answering: the next
   * connection is then handed the token, unless it is made with it (one made with the provider's token of
   * before would otherwise end when that one expires).
   */
  async renewToken(token: string): Promise<RenewTokenResult> {
    if (this.closed) throw closedError();
    // Kept for the next connection until answered: this one may be lost before it answers.
    this.renewal = token;
    const response = await this.request(ClientEvent.RenewToken, { token });
    if (this.renewal === token) this.renewal = undefined;
    return unwrap(response);
  }

  private open(token: string): void {
    this.connectingWith = token;
    this.socket.auth = { token };
    this.socket.connect();
  }

  private listen(): void {
    this.socket.on('connect', () => this.connected());
    this.socket.on('connect_error', (error: Error & { data?: unknown }) => {
      if (isErrorBody(error.data) && error.data.code === ErrorCode.Unauthorized) {
        this.reconnector.rejected(error.data);
      } else {
        this.reconnector.lost();
      }
    });
    this.socket.on('disconnect', (reason) => {
      // Emits buffered while its pings had lapsed would go out first on the next connection,
      // joins of rooms left meanwhile among them; emptied, their acks fail now instead (the
      // rooms still joined are joined again, and the outbox sends again, on connect).
      this.socket.sendBuffer = [];
      if (reason !== 'io client disconnect') this.reconnector.lost();
    });
    this.socket.on(ServerEvent.Message, (message) => this.receive(message));
    this.socket.on(ServerEvent.UserJoined, (event) => this.emit('userJoined', event));
    this.socket.on(ServerEvent.UserLeft, (event) => this.emit('userLeft', event));
    this.socket.on(ServerEvent.Typing, (event) => this.emit('typing', event));
    this.socket.on(ServerEvent.RoomBroadcast, (event) => this.emit('broadcast', event));
    this.socket.on(ServerEvent.Notification, (event) => this.notification(event));
    this.socket.on(ServerEvent.Error, (error) => this.emit('error', error));
  }

  private connected(): void {
    // Taken before the state is announced: a room a listener joins then is joined by that call.
    const rooms = [...this.rooms.values()];
    if (this.renewal === this.connectingWith) this.renewal = undefined;
    const renewal = this.renewal;
    // Kept until answered: this connection too may be lost first.
    if (renewal !== undefined)
      this.request(ClientEvent.RenewToken, { token: renewal }).then(
        () => this.renewal === renewal && (this.renewal = undefined),
        () => undefined,
      );
    this.reconnector.succeeded();
    for (const room of rooms) if (this.rooms.get(room.feed.roomId) === room) this.sendJoin(room);
    this.outbox.flush();
  }

  private notification(notification: NotificationJson): void {
    if (notification.type === NotificationType.RoomRemoved) {
      const error = clientError(ErrorCode.Forbidden, 'Removed from the room');
      this.forget(notification.room.id.toLowerCase(), error);
    }
    this.emit('notification', notification);
  }

  /** Stops treating the room as joined (no re-join, no gap fill); a pending first join fails. */
  private forget(id: string, error: ErrorBody): boolean {
    const room = this.rooms.get(id);
    if (!room) return false;
    clearTimeout(room.retryTimer);
    room.feed.close();
    this.rooms.delete(id);
    room.firstJoin.reject(new ChatError(error));
    return true;
  }

  private receive(message: MessageJson): void {
    const room = this.rooms.get(message.roomId.toLowerCase());
    if (room) this.track(room.feed.receive(message), room.feed.roomId);
  }

  private sendJoin(room: JoinedRoom): void {
    clearTimeout(room.retryTimer);
    room.feed.beginSync();
    const roomId = room.feed.roomId;
    this.request(ClientEvent.Join, { roomId, since: room.feed.since }).then(
      (response) => {
        if (this.rooms.get(roomId) !== room) return;
        if (response.ok) this.joined(room, response.data);
        else if (endsRetries(response.error, room)) this.lose(room, response.error);
        else this.retryJoin(room);
      },
      // No ack: a timeout is retried; a lost connection re-joins on reconnect.
      () => this.retryJoin(room),
    );
  }

  private joined(room: JoinedRoom, result: JoinResult): void {
    room.rejoin.reset();
    room.internalErrors = 0;
    this.emit('joined', {
      room: result.room,
      members: result.members,
      membersTruncated: result.membersTruncated,
    });
    room.firstJoin.resolve(result);
    this.track(
      room.feed.endSync({
        roomLastSeq: result.room.lastSeq,
        missed: result.missed,
        truncated: result.truncated,
      }),
      room.feed.roomId,
    );
  }

  private retryJoin(room: JoinedRoom): void {
    // Left meanwhile: close() could not clear a timer set for a room it no longer knows.
    if (!this.socket.connected || this.rooms.get(room.feed.roomId) !== room) return;
    const delay = room.rejoin.next();
    if (delay === null) {
      this.lose(room, clientError(ErrorCode.Unavailable, 'Join retries exhausted'));
      return;
    }
    room.retryTimer = setTimeout(() => {
      if (this.socket.connected && this.rooms.get(room.feed.roomId) === room) this.sendJoin(room);
    }, delay);
  }

  private lose(room: JoinedRoom, error: ErrorBody): void {
    this.forget(room.feed.roomId, error);
    this.emit('roomLost', { roomId: room.feed.roomId, error });
  }

  /** A REST gap fill that failed is tried again by the feed itself; the app hears of the failure. */
  private readonly track = failureReporter((error, roomId: string) => {
    this.emit('error', error);
    this.emit('catchUpFailed', { roomId, error });
  });

  /** socket.io fails an ack whose connection was lost too, not only one timed out. */
  private noAnswer(error: Error): string {
    return this.socket.connected
      ? `No answer within ${this.ackTimeoutMs} ms`
      : `The connection was lost before an answer (${error.message})`;
  }

  private request<E extends AckedEvent>(
    event: E,
    payload: PayloadOf<E>,
  ): Promise<AckResponse<AckDataOf<E>>> {
    return new Promise((resolve, reject) => {
      if (!this.socket.connected) {
        reject(new ChatError(clientError(ErrorCode.Unavailable, 'Not connected')));
        return;
      }
      // socket.io-client cannot type an emit generic over the event name; this is the one cast.
      const emitter = this.socket.timeout(this.ackTimeoutMs) as unknown as {
        emit(
          event: E,
          payload: PayloadOf<E>,
          ack: (error: Error | null, response: AckResponse<AckDataOf<E>>) => void,
        ): void;
      };
      emitter.emit(event, payload, (error, response) => {
        if (!error) return resolve(response);
        reject(new ChatError(clientError(ErrorCode.Unavailable, this.noAnswer(error))));
      });
    });
  }
}

function unwrap<T>(response: AckResponse<T>): T {
  if (!response.ok) throw new ChatError(response.error);
  return response.data;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: Error): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A join nobody awaits must not become an unhandled rejection.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}
