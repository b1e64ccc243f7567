import {
  Logger,
  type OnApplicationShutdown,
  UseFilters,
  UseGuards,
  UsePipes,
} from '@nestjs/common';
import {
  ConnectedSocket,
  MessageBody,
  type OnGatewayConnection,
  type OnGatewayDisconnect,
  type OnGatewayInit,
  SubscribeMessage,
  WebSocketGateway,
} from '@nestjs/websockets';
import { ConfigService } from '@nestjs/config';
import { longerLived } from '@app/auth/auth-user';
import { RenewTokenDto, renewTokenResult } from '@app/auth/dto/renew-token.dto';
import { TokenService } from '@app/auth/token.service';
import { Deadlines } from '@app/common/deadlines';
import { AppException } from '@app/common/errors/app.exception';
import { reasonOf } from '@app/common/errors/reason-of';
import { WsExceptionFilter } from '@app/common/filters/ws-exception.filter';
import { WsRoomAccessGuard } from '@app/common/guards/ws-room-access.guard';
import { roomIdOfPayload } from '@app/common/room-id-of-payload';
import { UserRateLimitGuard } from '@app/common/guards/user-rate-limit.guard';
import { createValidationPipe } from '@app/common/pipes/validation.pipe';
import type { AllConfig } from '@app/config/app-config';
import { ClientEvent, ServerEvent } from '@app/contract/events';
import type { MessageJson } from '@app/contract/models';
import { roomNames } from '@app/contract/room-names';
import type { JoinResult, PresenceResult, RenewTokenResult } from '@app/contract/socket-events';
import { DeliveryEffectKind, type DeliveryEffect } from '@app/delivery/delivery.service';
import { MessagesService } from '@app/messages/messages.service';
import { resumePoint } from '@app/messages/seq';
import { MetricsService } from '@app/metrics/metrics.service';
import { Transport } from '@app/metrics/transport';
import { closedForGood, cut, engineConnectionOf } from '@app/realtime/engine-connection';
import { GracefulShutdown, graceForClosing } from '@app/realtime/graceful-shutdown.service';
import { AfterSocketOrder, InSocketOrder } from '@app/realtime/in-socket-order.decorator';
import { SLOW_CONSUMER_CHECK_MS, SlowConsumerWatch } from '@app/realtime/slow-consumers';
import type { AppServer, AppSocket } from '@app/realtime/socket-data';
import { RateLimit } from '@app/throttling/rate-limit.decorator';
import { ChatService, removedWhileJoining, type Connection } from './chat.service';
import { JoinRoomDto } from './dto/join-room.dto';
import { RoomRefDto } from './dto/room-ref.dto';
import { SendChatMessageDto } from './dto/send-chat-message.dto';
import { JoinPayloadPipe } from './join-payload.pipe';
import { type Fence, SocketIoDelivery } from './socket-io.delivery';

const connectionOf = (socket: AppSocket): Connection => ({
  id: socket.id,
  user: socket.data.user,
  get open() {
    return socket.connected;
  },
});

const byRoom = (payload: unknown) => roomIdOfPayload(payload)?.toLowerCase() ?? '';

/**
 * The Socket.IO edge of chat: translates events into service calls and
 * results into acks. Authentication happened in the handshake.
 */
@WebSocketGateway()
@UseFilters(WsExceptionFilter)
@UseGuards(UserRateLimitGuard)
@UsePipes(createValidationPipe())
export class ChatGateway
  implements
    OnGatewayInit<AppServer>,
    OnGatewayConnection<AppSocket>,
    OnGatewayDisconnect<AppSocket>,
    OnApplicationShutdown
{
  private readonly logger = new Logger(ChatGateway.name);
  /** An expired token ends the connection, so that the client reconnects with a fresh one. */
  private readonly tokenExpiries = new Deadlines<AppSocket>((socket) => this.expireToken(socket));
  private slowConsumerCheck?: NodeJS.Timeout;

  constructor(
    private readonly chat: ChatService,
    private readonly messages: MessagesService,
    private readonly socketDelivery: SocketIoDelivery,
    private readonly metrics: MetricsService,
    private readonly shutdown: GracefulShutdown,
    private readonly config: ConfigService<AllConfig, true>,
    private readonly slowConsumers: SlowConsumerWatch,
    private readonly tokens: TokenService,
  ) {}

  afterInit(server: AppServer): void {
    this.socketDelivery.attach(server, (socket, effect) => this.applyEffect(socket, effect));
    this.shutdown.register('tell-clients', () => this.dropLocalSockets(server));
    const limit = this.config.get('realtime.slowConsumerLimitBytes', { infer: true });
    this.slowConsumerCheck = setInterval(() => {
      const dropped = this.slowConsumers.check(server, limit);
      if (dropped > 0)
        this.metrics.slowConsumersDropped.inc({ transport: Transport.SocketIo }, dropped);
    }, SLOW_CONSUMER_CHECK_MS);
    this.slowConsumerCheck.unref();
  }

  /** After the drain, during which sockets still get the room's messages and may fall behind. */
  onApplicationShutdown(): void {
    clearInterval(this.slowConsumerCheck);
  }

  /**
   * Closes the transport without a disconnect packet, so that clients
   * reconnect (elsewhere) at once; cuts the connections still open after the
   * grace. A WebSocket client gone without a word would otherwise hold the
   * HTTP server, and the exit, for the 30 s of the close handshake.
   */
  private async dropLocalSockets(server: AppServer): Promise<void> {
    const connections = [...server.sockets.sockets.values()].map(engineConnectionOf);
    for (const connection of connections) connection.close();
    await graceForClosing(() => connections.every(closedForGood));
    for (const connection of connections) if (!closedForGood(connection)) cut(connection);
  }

  async handleConnection(socket: AppSocket): Promise<void> {
    this.metrics.connections.inc({ transport: Transport.SocketIo });
    this.tokenExpiries.add(socket, socket.data.user.tokenExpiresAt);
    await socket.join(roomNames.user(socket.data.user.id));
  }

  async handleDisconnect(socket: AppSocket): Promise<void> {
    this.metrics.connections.dec({ transport: Transport.SocketIo });
    this.tokenExpiries.remove(socket, socket.data.user.tokenExpiresAt);
    this.socketDelivery.forget(socket);
    await this.chat.disconnected(connectionOf(socket));
  }

  /**
   * Joins and leaves of a room by one socket run one at a time, in the order
   * sent, so that each sees what the ones before it left behind (a failed
   * join's clean-up, a leave sent right behind a join). Messages, typing and
   * presence sent right behind them wait for them (a client need not wait for
   * the join's ack to post and get its own message back).
   */
  @SubscribeMessage(ClientEvent.Join)
  @InSocketOrder(byRoom)
  @UseGuards(WsRoomAccessGuard)
  @RateLimit('join')
  join(
    @ConnectedSocket() socket: AppSocket,
    @MessageBody(JoinPayloadPipe) payload: JoinRoomDto | string,
  ): Promise<JoinResult> {
    const { roomId, since } = payload as JoinRoomDto;
    return this.leavingOnFailure(socket, (subscribe) =>
      this.fencedJoin(socket, roomId, since, subscribe),
    );
  }

  /**
   * A join that fails once it has put the socket in the room (reading the
   * members or the missed messages) takes it out again, presence included:
   * the client was told it is not in. One whose user was removed from the
   * room meanwhile (the removal has taken the socket out) fails.
   */
  private async leavingOnFailure(
    socket: AppSocket,
    join: (subscribe: (roomId: string) => void) => Promise<JoinResult>,
  ): Promise<JoinResult> {
    let entered: string | undefined;
    const subscribe = (id: string) => {
      const channel = roomNames.chat(id);
      if (!socket.rooms.has(channel)) entered = id;
      void socket.join(channel);
    };
    try {
      const joined = await join(subscribe);
      // A removal that arrived while the join read the room took the socket out again.
      if (!socket.rooms.has(roomNames.chat(joined.room.id)))
        throw joined.room.isPrivate
          ? AppException.notFound('Room not found')
          : removedWhileJoining();
      return joined;
    } catch (error) {
      if (entered) await this.leaveRoom(socket, entered).catch(this.logLeaveFailure);
      throw error;
    }
  }

  /** The join's own error is the one the client gets. */
  private readonly logLeaveFailure = (error: unknown) =>
    this.logger.warn(
      `Could not take a socket out after its failed join: ${(error as Error).message}`,
    );

  /**
   * Live messages wait behind the ack, and those it counts (the missed ones,
   * or up to the room's lastSeq) do not come again, also when they were
   * stored elsewhere and are still on their way to this node.
   */
  private async fencedJoin(
    socket: AppSocket,
    roomId: string,
    since: number | undefined,
    subscribe: (roomId: string) => void,
  ): Promise<JoinResult> {
    let fenced: { roomId: string; fence: Fence } | undefined;
    let lastSeq = since ?? 0;
    try {
      const result = await this.chat.join(connectionOf(socket), roomId, since, (id) => {
        // In the room all along: should this join fail, its live stream goes on from where it
        // stands; and so it does, behind the ack as for every join, when nothing was asked again.
        const standing = socket.rooms.has(roomNames.chat(id))
          ? this.socketDelivery.liveSeqOf(socket, id)
          : undefined;
        if (standing !== undefined) lastSeq = standing;
        fenced = { roomId: id, fence: this.socketDelivery.fence(socket, id) };
        subscribe(id);
        return since === undefined ? standing : undefined;
      });
      const counted =
        since === undefined ? result.room.lastSeq : resumePoint(since, result.room.lastSeq);
      lastSeq = result.missed.at(-1)?.seq ?? counted;
      return result;
    } finally {
      if (fenced) this.socketDelivery.releaseAfterAck(socket, fenced.roomId, lastSeq, fenced.fence);
    }
  }

  @SubscribeMessage(ClientEvent.Leave)
  @InSocketOrder(byRoom)
  async leave(
    @ConnectedSocket() socket: AppSocket,
    @MessageBody() { roomId }: RoomRefDto,
  ): Promise<Record<string, never>> {
    await this.leaveRoom(socket, roomId.toLowerCase());
    return {};
  }

  private async leaveRoom(socket: AppSocket, roomId: string): Promise<void> {
    await socket.leave(roomNames.chat(roomId));
    this.socketDelivery.forget(socket, roomId);
    await this.chat.leave(connectionOf(socket), roomId);
  }

  /**
   * The delivery that carried the effect has already told the socket why.
   * Nothing awaits the leave: a failure is logged, as a rejection left
   * unhandled would end the process.
   */
  private applyEffect(socket: AppSocket, effect: DeliveryEffect): void {
    if (effect.kind === DeliveryEffectKind.Disconnect) return void socket.disconnect(true);
    this.leaveRoom(socket, effect.roomId).catch((error: unknown) =>
      this.logger.error(`Leaving a room the user lost failed: ${reasonOf(error)}`),
    );
  }

  @SubscribeMessage(ClientEvent.Message)
  @AfterSocketOrder(byRoom)
  @UseGuards(WsRoomAccessGuard)
  @RateLimit('message')
  async send(
    @ConnectedSocket() socket: AppSocket,
    @MessageBody() { roomId, text, clientMsgId }: SendChatMessageDto,
  ): Promise<MessageJson> {
    return this.messages.send(socket.data.user, roomId, { text, clientMsgId }, Transport.SocketIo);
  }

  @SubscribeMessage(ClientEvent.Typing)
  @AfterSocketOrder(byRoom)
  @UseGuards(WsRoomAccessGuard)
  @RateLimit('typing')
  typing(
    @ConnectedSocket() socket: AppSocket,
    @MessageBody() { roomId }: RoomRefDto,
  ): Record<string, never> {
    const typing = this.chat.typing(connectionOf(socket), roomId);
    // Socket.IO only and fine to lose: straight through the Socket.IO adapter, to every node.
    socket
      .to(roomNames.chat(typing.roomId))
      .except(roomNames.user(typing.user.id))
      .volatile.emit(ServerEvent.Typing, typing);
    return {};
  }

  @SubscribeMessage(ClientEvent.Presence)
  @AfterSocketOrder(byRoom)
  @UseGuards(WsRoomAccessGuard)
  @RateLimit('presence')
  presence(@MessageBody() { roomId }: RoomRefDto): Promise<PresenceResult> {
    return this.chat.whoIsHere(roomId);
  }

  /**
   * A fresh token moves the connection's end to its expiry: a client that
   * refreshes its token keeps its connection, rooms and presence. A refused
   * one leaves the connection as it was.
   */
  @SubscribeMessage(ClientEvent.RenewToken)
  @RateLimit('renew')
  async renewToken(
    @ConnectedSocket() socket: AppSocket,
    @MessageBody() { token }: RenewTokenDto,
  ): Promise<RenewTokenResult> {
    const verified = await this.tokens.renew(socket.data.user, token);
    // Ended meanwhile (its token expired, its account closed): nothing left to renew.
    if (!socket.connected) throw AppException.unauthorized('Connection closed');
    const current = socket.data.user;
    const renewed = longerLived(current, verified);
    this.tokenExpiries.move(socket, current.tokenExpiresAt, renewed.tokenExpiresAt);
    socket.data.user = renewed;
    return renewTokenResult(renewed);
  }

  private expireToken(socket: AppSocket): void {
    socket.emit(ServerEvent.Error, AppException.tokenExpired().toBody());
    socket.disconnect(true);
  }
}
