import { Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { AuthUser } from '@app/auth/auth-user';
import { AppException } from '@app/common/errors/app.exception';
import { reasonOf } from '@app/common/errors/reason-of';
import { jsonBytes, leadingWithinBytes } from '@app/common/json-size';
import type { AllConfig } from '@app/config/app-config';
import { JOIN_ANSWER_SHARE_OF_SLOW_CONSUMER_LIMIT } from '@app/contract/limits';
import type { UserSummaryJson } from '@app/contract/models';
import type { JoinResult, PresenceResult, RoomUserEvent } from '@app/contract/socket-events';
import { ServerEvent } from '@app/contract/events';
import { DeliveryService, type Delivery } from '@app/delivery/delivery.service';
import { MessagesService } from '@app/messages/messages.service';
import { resumePoint } from '@app/messages/seq';
import { RoomView } from '@app/rooms/dto/room.view';
import type { Room } from '@app/rooms/room.entity';
import { RoomsService, type Admission } from '@app/rooms/rooms.service';
import { LiveDelivery } from './live-delivery';
import { PresenceService, type PresenceChange, type PresenceLeave } from './presence.service';

/** At most this many missed messages come with a join; the client pages the rest over REST. */
export const MAX_MISSED_ON_JOIN = 1000;

/** One live connection of a user, on any transport. */
export interface Connection {
  id: string;
  user: AuthUser;
  /** False once the transport has closed it (and cleaned up after it). */
  readonly open: boolean;
}

/** A public room's join during which its user was removed from it: whether they stayed in is unknown. */
export const removedWhileJoining = () =>
  AppException.conflict('Removed from the room while joining: join again to come back');

const summary = (user: AuthUser): UserSummaryJson => ({ id: user.id, username: user.username });

function assertOpen(connection: Connection): void {
  if (!connection.open) throw AppException.unavailable('The connection closed');
}

/** Joining, leaving, presence and typing for live connections of every transport. */
@Injectable()
export class ChatService {
  private readonly logger = new Logger(ChatService.name);
  /** connection id → rooms it is entering right now */
  private readonly entering = new Map<string, Set<string>>();
  /** connection id → the leaves of its close, for its joins still under way (see `announceJoin`) */
  private readonly closedWhileEntering = new Map<string, Promise<PresenceLeave[]>>();

  constructor(
    private readonly rooms: RoomsService,
    private readonly messages: MessagesService,
    private readonly presence: PresenceService,
    private readonly delivery: DeliveryService,
    private readonly config: ConfigService<AllConfig, true>,
    private readonly live: LiveDelivery,
  ) {
    presence.whenExpired(({ roomId, user }) => this.delivery.userLeft(roomId, user));
    presence.whenReturned(({ roomId, user }) => this.delivery.userJoined(roomId, user));
    presence.whenJoinUnheard(({ roomId, user }) => this.delivery.userJoinedElsewhere(roomId, user));
    delivery.filterArrivals((arrived) => !this.joinHeardHere(arrived));
  }

  /**
   * Another node's late announcement of a join made while Redis was away,
   * of a user who joined the room on this node too meanwhile: this node's
   * connections were told then.
   */
  private joinHeardHere({ elsewhereOnly, event, payload }: Delivery): boolean {
    if (!elsewhereOnly || event !== ServerEvent.UserJoined) return false;
    const { roomId, user } = payload as RoomUserEvent;
    return this.presence.isHere(roomId, user.id);
  }

  /**
   * Enters the room. `subscribe` runs before missed messages are read, so a
   * message committed meanwhile is delivered live or in `missed`, never lost.
   * It returns where the connection's live stream stands when it stays on the
   * one it had (it was in the room all along), which is then the lastSeq.
   */
  async join(
    connection: Connection,
    roomId: string,
    since: number | undefined,
    subscribe: (roomId: string) => number | undefined,
  ): Promise<JoinResult> {
    const { room, removedMeanwhile } = await this.admitAndEnter(connection, roomId);
    const lastSeq = subscribe(room.id) ?? this.liveFrom(room);
    const [memberPage, missed] = await Promise.all([
      this.rooms.listMembers(
        room.id,
        this.config.get('realtime.joinMembersLimit', { infer: true }),
      ),
      since === undefined
        ? undefined
        : this.messages.page(room.id, {
            since: resumePoint(since, room.lastSeq),
            limit: MAX_MISSED_ON_JOIN,
          }),
    ]);
    // A removal seen here while a resync holds deliveries has not taken the connection out
    // yet: what was read since is not the user's to have.
    if (room.isPrivate && removedMeanwhile()) throw AppException.notFound('Room not found');
    const members = memberPage.items.map(({ id, username }) => ({ id, username }));
    const found = missed?.items ?? [];
    // The members go in the same answer: a large room's leave the missed messages less room.
    const budget = found.length > 0 ? this.missedBytes() - jsonBytes(members) : 0;
    const sent = leadingWithinBytes(found, budget);
    return {
      room: { ...RoomView.from(room), lastSeq },
      members,
      membersTruncated: memberPage.nextCursor !== null,
      missed: sent,
      truncated: missed?.nextCursor != null || sent.length < found.length,
    };
  }

  private missedBytes(): number {
    const limit = this.config.get('realtime.slowConsumerLimitBytes', { infer: true });
    return Math.floor(limit * JOIN_ANSWER_SHARE_OF_SLOW_CONSUMER_LIMIT);
  }

  /**
   * Access, membership of public rooms, the per-connection cap, and presence.
   * A connection that closes meanwhile has already been cleaned up after, so
   * it must not enter anything: it would stay present for good.
   */
  async enter(connection: Connection, roomId: string): Promise<Room> {
    return (await this.admitAndEnter(connection, roomId)).room;
  }

  private async admitAndEnter(connection: Connection, roomId: string): Promise<Admission> {
    const releaseHold = this.live.holdUntilTracked(roomId.toLowerCase());
    try {
      const admission = await this.rooms.admit(connection.user.id, roomId);
      const leaveRoomSlot = this.takeRoomSlot(connection, admission.room.id);
      try {
        await this.enterAdmitted(connection, admission);
        return admission;
      } finally {
        leaveRoomSlot();
      }
    } finally {
      releaseHold();
      // The last follower here may have left while this join ran; a join that failed follows nothing.
      this.untrackIfUnfollowed(roomId.toLowerCase());
    }
  }

  /**
   * The room's lastSeq for a connection subscribed to it just now: past the
   * lastSeq read on entering when messages were delivered here meanwhile.
   * Messages it counts that are still on their way to this node (stored
   * elsewhere) must not reach the connection live: see `deliveredSeq`.
   */
  liveFrom(room: Room): number {
    return Math.max(room.lastSeq, this.deliveredSeq(room.id) ?? room.lastSeq);
  }

  /** Where this node's live deliveries of the room stand. */
  deliveredSeq(roomId: string): number | undefined {
    return this.live.deliveredSeq(roomId);
  }

  /**
   * A place under the per-connection room cap, taken at once: joins of
   * several rooms at a time count those still under way, not only those done.
   */
  private takeRoomSlot(connection: Connection, roomId: string): () => void {
    const joined = this.presence.roomsOf(connection.id);
    const entering = this.entering.get(connection.id) ?? new Set<string>();
    const maxRooms = this.config.get('realtime.maxRoomsPerConnection', { infer: true });
    const rooms = new Set([...joined, ...entering]);
    if (!rooms.has(roomId) && rooms.size >= maxRooms) {
      throw AppException.forbidden(`A connection may join at most ${maxRooms} rooms`);
    }
    entering.add(roomId);
    this.entering.set(connection.id, entering);
    return () => {
      entering.delete(roomId);
      if (entering.size > 0) return;
      this.entering.delete(connection.id);
      this.closedWhileEntering.delete(connection.id);
    };
  }

  private async enterAdmitted(connection: Connection, admission: Admission): Promise<void> {
    const room = admission.room;
    assertOpen(connection);
    if (!room.isPrivate) await this.rooms.addMember(room.id, connection.user.id);
    assertOpen(connection);
    this.live.track(room.id, room.lastSeq);
    const wasIn = this.presence.roomsOf(connection.id).has(room.id);
    const change = await this.presence.enter(room.id, summary(connection.user), connection.id);
    await this.confirmOrLeave(connection, admission, { broughtIn: change.changed, wasIn });
    if (change.changed) await this.announceJoin(connection, room.id, change.user);
    // Closed meanwhile: the close's cleanup has taken its presence out again.
    assertOpen(connection);
  }

  /**
   * The join of the user's first connection into the room. One that closed
   * meanwhile was taken out by its close: if that was the user's last
   * connection out, the close said they left; if not, another connection of
   * theirs came in meanwhile, told it was not the first, and the join is
   * theirs to announce.
   */
  private async announceJoin(
    connection: Connection,
    roomId: string,
    user: UserSummaryJson,
  ): Promise<void> {
    if (!this.presence.roomsOf(connection.id).has(roomId)) {
      const leaves = await this.closedWhileEntering.get(connection.id);
      const left = leaves?.find((leave) => leave.roomId === roomId);
      if (!left?.wasHere || left.changed) return;
    }
    this.delivery.userJoined(roomId, user, connection.id);
  }

  /**
   * Removed while this join ran: out of presence again, and refused. A user
   * this join brought in was never announced, so their leaving is not
   * either, and when another of their connections came in meanwhile (not
   * announced, as it was not the first), the join is announced now; one
   * announced by another of their connections is announced as leaving. The join of
   * a public room made them a member, which the removal may have undone or
   * not: they can join again. A join refused for another reason (it took too
   * long) leaves a connection that was in the room before it as it was:
   * taken out of presence alone, it would still get the room's messages.
   */
  private async confirmOrLeave(
    connection: Connection,
    admission: Admission,
    { broughtIn, wasIn }: { broughtIn: boolean; wasIn: boolean },
  ): Promise<void> {
    try {
      admission.confirm();
      if (admission.removedMeanwhile()) throw removedWhileJoining();
    } catch (error) {
      if (wasIn && !admission.removedMeanwhile()) throw error;
      const id = admission.room.id;
      const change = await this.presence.leave(id, summary(connection.user), connection.id);
      this.afterLeaving(broughtIn ? { ...change, changed: false } : change);
      // Another connection of theirs came in meanwhile, told it was not the first: the join is
      // theirs. Not when this one had been taken out already (a removal), and announced so.
      if (broughtIn && change.wasHere && !change.changed)
        this.delivery.userJoined(id, change.user, connection.id);
      throw error;
    }
  }

  async leave(connection: Connection, roomId: string): Promise<void> {
    const id = roomId.toLowerCase();
    const change = await this.presence.leave(id, summary(connection.user), connection.id);
    this.afterLeaving(change);
  }

  /**
   * Never rejects: nothing awaits a close (Nest does not await
   * `handleDisconnect`), and an unhandled rejection would end the process.
   */
  async disconnected(connection: Connection): Promise<void> {
    let changes: PresenceLeave[];
    try {
      const leaving = this.presence.leaveAll(summary(connection.user), connection.id);
      if (this.entering.has(connection.id)) this.closedWhileEntering.set(connection.id, leaving);
      changes = await leaving;
    } catch (error) {
      return this.closeFailed(error);
    }
    // Each room on its own: one that fails leaves the others announced and untracked.
    for (const change of changes) {
      try {
        this.afterLeaving(change);
      } catch (error) {
        this.closeFailed(error);
      }
    }
  }

  private closeFailed(error: unknown): void {
    this.logger.error(
      `Leaving the rooms of a closed connection failed: ${reasonOf(error)}`,
      error instanceof Error ? error.stack : undefined,
    );
  }

  private afterLeaving(change: PresenceChange): void {
    try {
      if (change.changed) this.delivery.userLeft(change.roomId, change.user);
    } finally {
      this.untrackIfUnfollowed(change.roomId);
    }
  }

  private untrackIfUnfollowed(roomId: string): void {
    if (!this.presence.hasLocalMembers(roomId)) this.live.untrackUnlessJoining(roomId);
  }

  /** The typing indicator to show others; only a connection in the room may send one. */
  typing(connection: Connection, roomId: string): RoomUserEvent {
    this.assertJoined(connection, roomId);
    return { roomId: roomId.toLowerCase(), user: summary(connection.user) };
  }

  async whoIsHere(roomId: string): Promise<PresenceResult> {
    return { users: await this.presence.users(roomId.toLowerCase()) };
  }

  hasJoined(connection: Connection, roomId: string): boolean {
    return this.presence.roomsOf(connection.id).has(roomId.toLowerCase());
  }

  assertJoined(connection: Connection, roomId: string): void {
    if (!this.hasJoined(connection, roomId)) throw AppException.forbidden('Join the room first');
  }
}
