import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { HttpAdapterHost } from '@nestjs/core';
import { WebSocketServer, type RawData, type ServerOptions, type WebSocket } from 'ws';
import { longerLived, type AuthUser } from '@app/auth/auth-user';
import { renewTokenResult } from '@app/auth/dto/renew-token.dto';
import { TokenService } from '@app/auth/token.service';
import { ChatService } from '@app/chat/chat.service';
import { LiveDelivery } from '@app/chat/live-delivery';
import { Deadlines } from '@app/common/deadlines';
import { SHUTDOWN_GRACES } from '@app/common/shutdown-graces';
import { AppException } from '@app/common/errors/app.exception';
import type { ErrorBody } from '@app/common/errors/error-body';
import { requestUrl } from '@app/common/request-url';
import { reasonOf } from '@app/common/errors/reason-of';
import { reportedErrorBody } from '@app/common/errors/to-error-body';
import type { AllConfig } from '@app/config/app-config';
import { ServerEvent } from '@app/contract/events';
import type { MessageJson } from '@app/contract/models';
import { roomNames } from '@app/contract/room-names';
import {
  WsClientFrameType as ClientFrameType,
  WsCloseCode,
  WsServerFrameType as ServerFrameType,
} from '@app/contract/ws-frames';
import {
  DeliveryEffectKind,
  DeliveryService,
  type Delivery,
  type DeliveryEffect,
  type Listening,
} from '@app/delivery/delivery.service';
import { LocalChannels } from '@app/delivery/local-channels';
import { MetricsService } from '@app/metrics/metrics.service';
import { Transport } from '@app/metrics/transport';
import { trustRule, type TrustRule } from '@app/realtime/client-address';
import { ConnectionTracker } from '@app/realtime/connection-tracker';
import { GracefulShutdown, graceForClosing } from '@app/realtime/graceful-shutdown.service';
import { rejectUpgrade } from '@app/realtime/http-refusals';
import { isOriginAllowed } from '@app/realtime/origin-policy';
import { packetBudget, packetFloodError } from '@app/realtime/packet-rate';
import type { Room } from '@app/rooms/room.entity';
import { RoomsService } from '@app/rooms/rooms.service';
import { RateLimitService } from '@app/throttling/rate-limit.service';
import type { AuthFrameDto, BroadcastFrameDto, RoomFrameDto } from './dto/frames.dto';
import {
  byteLengthOf,
  isAuthFrame,
  readFrame,
  requestOf,
  validateFrame,
  type ClientFrame,
} from './frame-parser';
import { WsConnection } from './ws-connection';
import { authenticateUpgrade, refusalFor, speaksVersionOf, SUPPORTED_VERSIONS } from './ws-upgrade';

export const RAW_WS_PATH = '/ws';
const SOCKET_IO_PATH = '/socket.io/';

/** The frame a delivery becomes on `/ws`; events this transport does not speak become nothing. */
function frameOf({ event, payload }: Delivery): object | undefined {
  const { roomId } = payload as { roomId?: string };
  switch (event) {
    case ServerEvent.Message:
      return { type: ServerFrameType.ChatMessage, room: roomId, message: payload };
    case ServerEvent.RoomBroadcast:
      return {
        type: ServerFrameType.Message,
        room: roomId,
        payload: (payload as { payload: unknown }).payload,
      };
    case ServerEvent.Notification:
      return { type: ServerFrameType.Notification, notification: payload };
    case ServerEvent.Error:
      return { type: ServerFrameType.Error, ...(payload as ErrorBody) };
    default:
      return undefined;
  }
}

/** One listener for every upgrading socket (Socket.IO's too, for their lifetime): no closure each. */
function destroySocket(this: Duplex): void {
  this.destroy();
}

/**
 * `ws` reports a bad frame (oversized, unmasked) as an error
 * and then closes the connection: the close is what the gateway acts on. A
 * WebSocket error with no listener would end the process.
 */
function ignoreError(): void {}

/**
 * The raw WebSocket edge (`/ws`, the `ws` library) on the HTTP server all
 * transports share: plain JSON frames, the same rooms, rules and budgets.
 */
@Injectable()
export class RawWsGateway implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(RawWsGateway.name);
  private readonly server: WebSocketServer;
  private readonly connections = new Set<WsConnection>();
  private readonly channels = new LocalChannels<WsConnection>();
  /** An expired token closes the connection (4001), so that the client reconnects with a fresh one. */
  private readonly tokenExpiries = new Deadlines<WsConnection>((connection) =>
    this.expire(connection),
  );
  private readonly trust: TrustRule;
  private heartbeat?: NodeJS.Timeout;
  private detachDelivery?: () => void;
  private dropAudience?: () => void;

  constructor(
    private readonly httpAdapterHost: HttpAdapterHost,
    private readonly config: ConfigService<AllConfig, true>,
    private readonly tokens: TokenService,
    private readonly rateLimits: RateLimitService,
    private readonly connectionSlots: ConnectionTracker,
    private readonly chat: ChatService,
    private readonly rooms: RoomsService,
    private readonly delivery: DeliveryService,
    private readonly live: LiveDelivery,
    private readonly metrics: MetricsService,
    private readonly shutdown: GracefulShutdown,
  ) {
    shutdown.register('tell-clients', () => this.tellClientsToLeave());
    this.trust = trustRule(this.config.get('http.trustProxy', { infer: true }));
    // `closeTimeout` is in ws, not yet in @types/ws.
    const options: ServerOptions & { closeTimeout: number } = {
      noServer: true,
      maxPayload: this.config.get('realtime.maxPayloadBytes', { infer: true }),
      // Compression stays off: nothing to inflate, so no compression bomb.
      perMessageDeflate: false,
      // Checked when the frame is read, so that bad text gets an error frame, not a close.
      // (A close frame's reason goes unchecked too: nothing reads it.)
      skipUTF8Validation: true,
      // A peer that does not answer a close (it stopped reading) is cut after this,
      // not ws's 30 s: a connection closed outside the drain's tracking would hold it.
      closeTimeout: SHUTDOWN_GRACES.connectionCloseMs,
    };
    this.server = new WebSocketServer(options);
    // A handshake `ws` itself refuses (method, key, version) gets the contract's error too.
    this.server.on('wsClientError', (error: Error, socket: Duplex, request: IncomingMessage) =>
      rejectUpgrade(
        socket,
        AppException.validation(error.message),
        speaksVersionOf(request) ? {} : SUPPORTED_VERSIONS,
      ),
    );
  }

  onApplicationBootstrap(): void {
    const httpServer =
      this.httpAdapterHost.httpAdapter.getHttpServer() as import('node:http').Server;
    httpServer.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.handleUpgrade(request, socket, head).catch((error: unknown) => {
        this.logger.error(`Upgrade failed: ${(error as Error).message}`);
        socket.destroy();
      });
    });
    this.detachDelivery = this.live.subscribe((delivery) => this.deliver(delivery));
    this.dropAudience = this.delivery.addAudience(() => this.audience());
    const interval = this.config.get('realtime.pingIntervalMs', { infer: true });
    this.heartbeat = setInterval(() => this.checkHeartbeats(), interval);
    this.heartbeat.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.heartbeat);
    this.detachDelivery?.();
    this.dropAudience?.();
    this.server.close();
  }

  /** Close 1001 to every client, so that it reconnects elsewhere; stragglers are cut after a grace period. */
  private async tellClientsToLeave(): Promise<void> {
    for (const connection of this.connections)
      connection.close(WsCloseCode.GoingAway, 'Server shutting down');
    await graceForClosing(() => this.connections.size === 0);
    for (const connection of this.connections) connection.terminate();
  }

  private *audience(): Iterable<Listening> {
    for (const connection of this.connections) {
      for (const channel of connection.channels) yield { userId: connection.user.id, channel };
    }
  }

  get openConnections(): number {
    return this.connections.size;
  }

  private async handleUpgrade(
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
  ): Promise<void> {
    socket.on('error', destroySocket);
    // Socket.IO answers the upgrades whose raw target starts with its path,
    // as engine.io reads it; every other one is answered here, or it would
    // hold its socket for good (`/x/../socket.io/` is no Socket.IO upgrade).
    if (request.url?.startsWith(SOCKET_IO_PATH)) return;
    const path = requestUrl(request.url)?.pathname;
    if (path === undefined)
      return rejectUpgrade(socket, AppException.validation('The request target is no URL'));
    if (path !== RAW_WS_PATH)
      return rejectUpgrade(socket, AppException.notFound(`No WebSocket endpoint at ${path}`));
    const http = this.config.get('http', { infer: true });
    if (!isOriginAllowed(request, http.corsOrigins))
      return rejectUpgrade(socket, AppException.forbidden('Origin not allowed'));
    const outcome = await authenticateUpgrade(request, {
      tokens: this.tokens,
      rateLimits: this.rateLimits,
      connections: this.connectionSlots,
      trust: this.trust,
      logger: this.logger,
    });
    // A client gone before the upgrade completes must not keep its connection
    // slot; one gone while it was authenticated has closed already, and `ws`
    // then destroys the socket without calling back.
    const releaseSlot = () => {
      if ('user' in outcome) this.connectionSlots.release(outcome.user.id, outcome.connectionId);
    };
    if (socket.destroyed) return releaseSlot();
    socket.once('close', releaseSlot);
    this.server.handleUpgrade(request, socket, head, (ws) => {
      socket.off('close', releaseSlot);
      if ('refusal' in outcome) {
        ws.on('error', ignoreError);
        ws.close(outcome.refusal.code, outcome.refusal.reason);
      } else if (this.shutdown.draining) {
        // Authenticated while the drain began: told to go as the open ones were, not kept.
        releaseSlot();
        ws.on('error', ignoreError);
        ws.close(WsCloseCode.GoingAway, 'Server shutting down');
      } else if (this.confirmed(ws, outcome)) this.accept(ws, outcome.user, outcome.connectionId);
      else releaseSlot();
    });
  }

  /** Nothing is awaited from here to the connection's personal channel (see `accept`). */
  private confirmed(ws: WebSocket, outcome: { confirm(this: void): void }): boolean {
    try {
      outcome.confirm();
      return true;
    } catch (error) {
      const refusal = refusalFor(reportedErrorBody(error, this.logger));
      ws.on('error', ignoreError);
      ws.close(refusal.code, refusal.reason);
      return false;
    }
  }

  private accept(ws: WebSocket, user: AuthUser, connectionId: string): void {
    const connection = new WsConnection(
      connectionId,
      ws,
      user,
      this.config.get('realtime.slowConsumerLimitBytes', { infer: true }),
      () => this.metrics.slowConsumersDropped.inc({ transport: Transport.Ws }),
    );
    this.connections.add(connection);
    this.metrics.connections.inc({ transport: Transport.Ws });
    this.subscribe(connection, roomNames.user(user.id));
    ws.on('pong', () => (connection.alive = true));
    const packets = packetBudget(
      this.config.get('realtime.maxPacketsPerSecond', { infer: true }),
      this.config.get('realtime.maxRoomsPerConnection', { infer: true }),
    );
    // Control frames count too: ws answers each ping with a pong of its own.
    ws.on('ping', () => {
      if (!packets.take()) this.cutOffFlood(connection);
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!packets.take()) return this.cutOffFlood(connection);
      if (connection.busy && this.renewAtOnce(connection, data, isBinary)) return;
      const handle = () => this.handleFrame(connection, data, isBinary);
      if (!connection.queueFrame(byteLengthOf(data), handle))
        this.refuseBusy(connection, data, isBinary);
    });
    ws.on('close', () => this.handleClose(connection));
    ws.on('error', ignoreError);
    this.tokenExpiries.add(connection, user.tokenExpiresAt);
    connection.send({ type: ServerFrameType.Connected, userId: user.id });
  }

  /**
   * A token renewal sent while earlier frames are held up (a join behind a
   * stalled database) does not wait its turn: the connection would be cut at
   * the old token's expiry while it waited. One at a time; others queue.
   * @returns whether the frame was a renewal, now under way
   */
  private renewAtOnce(connection: WsConnection, data: RawData, isBinary: boolean): boolean {
    if (connection.renewing || !isAuthFrame(data, isBinary)) return false;
    connection.renewing = true;
    void this.handleFrame(connection, data, isBinary).finally(() => (connection.renewing = false));
    return true;
  }

  /** Told why, in the contract's error shape, as on Socket.IO; then closed once. */
  private cutOffFlood(connection: WsConnection): void {
    if (connection.cutOff) return;
    connection.sendError(packetFloodError());
    connection.close(WsCloseCode.RateLimited, 'Rate limited');
  }

  /** Refused in the contract's error shape, naming the frame, while earlier ones wait too long. */
  private refuseBusy(connection: WsConnection, data: RawData, isBinary: boolean): void {
    void this.handleFrame(connection, data, isBinary, () => {
      throw AppException.unavailable('Too many frames waiting to be handled: send it again later');
    });
  }

  private async handleFrame(
    connection: WsConnection,
    data: RawData,
    isBinary: boolean,
    /** Instead of dispatching the valid frame. */
    refuse?: () => never,
  ): Promise<void> {
    let value: Record<string, unknown> | undefined;
    let frame: ClientFrame | undefined;
    if (connection.cutOff) return;
    try {
      if (Date.now() >= connection.user.tokenExpiresAt) return this.expire(connection);
      value = readFrame(data, isBinary);
      frame = await validateFrame(value);
      await (refuse ? refuse() : this.dispatch(connection, frame));
    } catch (error) {
      const body = reportedErrorBody(error, this.logger);
      // Only for a refusal: what the error names of the frame, as far as it was read.
      const request = value ? requestOf(value, frame) : {};
      const event = request.request ?? 'unknown';
      this.metrics.rejectedEvents.inc({ transport: Transport.Ws, event, code: body.code });
      connection.sendError(body, request);
    }
  }

  private dispatch(connection: WsConnection, frame: ClientFrame): Promise<void> {
    switch (frame.type) {
      case ClientFrameType.Join:
        return this.join(connection, frame);
      case ClientFrameType.Leave:
        return this.leave(connection, frame);
      case ClientFrameType.Broadcast:
        return this.broadcast(connection, frame);
      case ClientFrameType.Ping:
        connection.send({ type: ServerFrameType.Pong });
        return Promise.resolve();
      case ClientFrameType.Auth:
        return this.renewToken(connection, frame);
    }
  }

  /** A fresh token moves the connection's end to its expiry; a refused one changes nothing. */
  private async renewToken(connection: WsConnection, { token }: AuthFrameDto): Promise<void> {
    await this.rateLimits.consume('renew', connection.user.id);
    const verified = await this.tokens.renew(connection.user, token);
    // Ended meanwhile (its token expired, its account closed): nothing left to renew.
    if (connection.cutOff || !connection.open) return;
    const current = connection.user;
    const renewed = longerLived(current, verified);
    this.tokenExpiries.move(connection, current.tokenExpiresAt, renewed.tokenExpiresAt);
    connection.user = renewed;
    connection.send({ type: ServerFrameType.Authenticated, ...renewTokenResult(renewed) });
  }

  /** A connection in the room all along keeps its live stream, and is told where it stands. */
  private async join(connection: WsConnection, { room }: RoomFrameDto): Promise<void> {
    await this.rateLimits.consume('join', connection.user.id);
    const joined = await this.chat.enter(connection, room);
    const lastSeq = connection.channels.has(roomNames.chat(joined.id))
      ? connection.liveSeq(joined.id, this.chat.deliveredSeq(joined.id) ?? joined.lastSeq)
      : this.subscribeFromNow(connection, joined);
    connection.send({ type: ServerFrameType.Joined, room: joined.id, lastSeq });
  }

  /**
   * Live messages from the room's lastSeq on; those it counts that are still
   * on their way to this node are skipped.
   */
  private subscribeFromNow(connection: WsConnection, room: Room): number {
    this.subscribe(connection, roomNames.chat(room.id));
    const lastSeq = this.chat.liveFrom(room);
    const delivered = this.chat.deliveredSeq(room.id);
    if (delivered !== undefined && delivered < lastSeq) connection.skipUpTo(room.id, lastSeq);
    return lastSeq;
  }

  private leave(connection: WsConnection, { room }: RoomFrameDto): Promise<void> {
    return this.leaveRoom(connection, room.toLowerCase());
  }

  private async leaveRoom(connection: WsConnection, roomId: string): Promise<void> {
    this.unsubscribe(connection, roomNames.chat(roomId));
    connection.forgetCounted(roomId);
    await this.chat.leave(connection, roomId);
    connection.send({ type: ServerFrameType.Left, room: roomId });
  }

  /**
   * The room's traffic stops at once; leaving presence (and the `left`
   * frame) waits for the connection's frame order, so that a join still
   * running when the effect arrives is undone too. The delivery has already
   * told the client why.
   */
  private applyEffect(connection: WsConnection, effect: DeliveryEffect): void {
    if (effect.kind === DeliveryEffectKind.Disconnect)
      return connection.close(WsCloseCode.Unauthorized, 'Unauthorized');
    this.unsubscribe(connection, roomNames.chat(effect.roomId));
    void connection.frames
      .run(async () => {
        if (!connection.open || !this.chat.hasJoined(connection, effect.roomId)) return;
        await this.leaveRoom(connection, effect.roomId);
      })
      .catch((error: unknown) =>
        this.logger.error(`Leaving a room the user lost failed: ${reasonOf(error)}`),
      );
  }

  /** Ephemeral: to every other member of the room on every transport, never stored. */
  private async broadcast(
    connection: WsConnection,
    { room, payload }: BroadcastFrameDto,
  ): Promise<void> {
    await this.rateLimits.consume('message', connection.user.id);
    const roomId = await this.rooms.assertAccessible(connection.user.id, room);
    // Cut off meanwhile (a deleted account): its broadcast goes nowhere.
    if (connection.cutOff) return;
    const from = { id: connection.user.id, username: connection.user.username };
    this.delivery.broadcast(roomId, payload, from, connection.id);
  }

  /** Serializes and encodes each delivery once, then hands the same bytes to every local subscriber. */
  private deliver(delivery: Delivery): void {
    const subscribers = this.channels.subscribers(delivery.channel);
    if (subscribers.size === 0) return;
    const frame = frameOf(delivery);
    const message =
      delivery.event === ServerEvent.Message ? (delivery.payload as MessageJson) : undefined;
    if (frame) this.sendToAll(subscribers, frame, delivery.except?.connectionId, message);
    const effect = delivery.effect;
    if (effect) for (const connection of [...subscribers]) this.applyEffect(connection, effect);
  }

  /** `message`: the chat message the frame carries, which a connection whose join counted it skips. */
  private sendToAll(
    subscribers: Iterable<WsConnection>,
    frame: object,
    exceptId?: string,
    message?: MessageJson,
  ): void {
    const text = Buffer.from(JSON.stringify(frame));
    for (const connection of subscribers) {
      if (connection.id === exceptId || (message && !connection.wants(message))) continue;
      connection.sendText(text);
    }
  }

  private checkHeartbeats(): void {
    for (const connection of this.connections) {
      if (!connection.alive) {
        connection.terminate();
        continue;
      }
      connection.alive = false;
      connection.socket.ping();
    }
  }

  private handleClose(connection: WsConnection): void {
    if (!this.connections.delete(connection)) return;
    this.tokenExpiries.remove(connection, connection.user.tokenExpiresAt);
    for (const channel of connection.channels) this.channels.remove(channel, connection);
    connection.channels.clear();
    void this.chat.disconnected(connection);
    this.connectionSlots.release(connection.user.id, connection.id);
    this.metrics.connections.dec({ transport: Transport.Ws });
  }

  private subscribe(connection: WsConnection, channel: string): void {
    connection.channels.add(channel);
    this.channels.add(channel, connection);
  }

  private unsubscribe(connection: WsConnection, channel: string): void {
    connection.channels.delete(channel);
    this.channels.remove(channel, connection);
  }

  private expire(connection: WsConnection): void {
    connection.sendError(AppException.tokenExpired().toBody());
    connection.close(WsCloseCode.Unauthorized, 'Unauthorized');
  }
}
