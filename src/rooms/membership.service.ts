import { Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { AuthUser } from '@app/auth/auth-user';
import { AppException } from '@app/common/errors/app.exception';
import { isUnavailableError } from '@app/common/errors/to-error-body';
import { isRolledBackForConflict } from '@app/database/database-errors';
import { UUID_PATTERN } from '@app/common/ids/uuid-v7';
import { NotificationType, ServerEvent } from '@app/contract/events';
import type { NotificationJson, UserSummaryJson } from '@app/contract/models';
import { roomNames } from '@app/contract/room-names';
import { DeliveryEffectKind, DeliveryService, type Delivery } from '@app/delivery/delivery.service';
import { RateLimitService } from '@app/throttling/rate-limit.service';
import { UsersService } from '@app/users/users.service';
import { memberViewOf, MemberPage, MemberView, RoomView } from './dto/room.view';
import type { Room } from './room.entity';
import { RoomsService, type AddAuthorization } from './rooms.service';

/** The room and invitee of a `room:invited` notification; undefined for any other delivery. */
function invitationOf({ channel, event, payload }: Delivery) {
  if (event !== ServerEvent.Notification) return undefined;
  const notification = payload as Partial<Extract<NotificationJson, { type: 'room:invited' }>>;
  const userId = roomNames.userIdOf(channel);
  const roomId = notification.room?.id;
  if (notification.type !== NotificationType.RoomInvited || !userId || typeof roomId !== 'string')
    return undefined;
  return { roomId, userId };
}

/** Who may add and remove members, and who is told about it. */
@Injectable()
export class MembershipService implements OnModuleInit, OnApplicationShutdown {
  private detach?: () => void;

  constructor(
    private readonly rooms: RoomsService,
    private readonly users: UsersService,
    private readonly delivery: DeliveryService,
    private readonly rateLimits: RateLimitService,
  ) {}

  /**
   * A removal on any node ends what this node cached of the membership, and
   * admissions under way; an invitation on any node drops the cached "not a
   * member", so that the invitee may join at once. An account that goes
   * first hands its rooms over.
   */
  onModuleInit(): void {
    this.users.onDeletion((user) => this.handOverRoomsOf(user));
    this.detach = this.delivery.watchArrivals((delivery) => {
      const { effect } = delivery;
      if (effect?.kind === DeliveryEffectKind.LeaveRoom)
        this.rooms.membershipEnded(effect.roomId, effect.userId);
      const invited = invitationOf(delivery);
      if (invited) this.rooms.forgetMembership(invited.roomId, invited.userId);
    });
  }

  onApplicationShutdown(): void {
    this.detach?.();
  }

  /**
   * The user leaves every room they own, each handed to its longest-standing
   * remaining member (see `RoomsService.removeMember`): an account that goes
   * would otherwise leave its private rooms with no one who may add members.
   * Each is left as by the user: their connections leave it at once, should
   * the deletion fail halfway.
   */
  private async handOverRoomsOf(user: UserSummaryJson): Promise<void> {
    for (const room of await this.rooms.ownedBy(user.id)) {
      const removal = await this.rooms.removeMember(room.id, user.id);
      if (removal)
        this.delivery.membershipEnded(user.id, RoomView.from({ ...room, ...removal }), user);
    }
  }

  /**
   * Anyone may add themself to a public room, and its members may add others;
   * only the owner adds members to a private room. Adding a member again
   * answers their membership as it is, and tells no one.
   */
  async add(actor: AuthUser, roomId: string, userId: string): Promise<MemberView> {
    const room = await this.rooms.findAccessible(actor.id, roomId);
    const target = userId.toLowerCase();
    const authorize: AddAuthorization = async (ownerId, actorIsMember) => {
      if (target === actor.id || ownerId === actor.id) return;
      if (room.isPrivate) throw AppException.forbidden('Only the room owner can add other members');
      if (!(await actorIsMember()))
        throw AppException.forbidden('Only members of the room can add others');
    };
    // Answered at once from the room as read; judged again under the room's lock.
    await authorize(room.ownerId, () => this.rooms.isMember(room.id, actor.id));
    const user = await this.users.findActiveById(target);
    if (!user) throw AppException.notFound('User not found');
    // Adding someone else notifies them: a budget per user, spent by adds that
    // may go ahead, and given back by those that find the user a member already.
    const invites = user.id !== actor.id;
    if (invites) await this.rateLimits.consume('invite', actor.id);
    const { added, joinedAt, ownerId } = await this.rooms.addMemberAs(
      actor.id,
      room.id,
      user.id,
      authorize,
    );
    if (invites && added)
      this.invite(user.id, { ...room, ownerId: ownerId ?? room.ownerId }, actor);
    else if (invites) await this.rateLimits.refund('invite', actor.id);
    return memberViewOf(room.id, { id: user.id, username: user.username, joinedAt });
  }

  private invite(userId: string, room: Room, by: AuthUser): void {
    this.delivery.notify(userId, {
      type: NotificationType.RoomInvited,
      room: RoomView.from(room),
      by: { id: by.id, username: by.username },
    });
  }

  /** A page of the members of a room the caller may see, in the order of their ids. */
  async list(actor: AuthUser, roomId: string, limit: number, cursor?: string): Promise<MemberPage> {
    const room = await this.rooms.findAccessible(actor.id, roomId);
    const page = await this.rooms.listMembers(room.id, limit, cursor);
    return {
      items: page.items.map((member) => memberViewOf(room.id, member)),
      nextCursor: page.nextCursor,
    };
  }

  /**
   * The owner removes anyone; a member, the owner included, may leave. Either
   * way every connection of theirs leaves the room, on every node.
   */
  async remove(actor: AuthUser, roomId: string, userId: string): Promise<void> {
    const room = await this.rooms.findAccessible(actor.id, roomId);
    const target = userId.toLowerCase();
    const authorize = (ownerId: string | undefined) => {
      if (target !== actor.id && ownerId !== actor.id) {
        throw AppException.forbidden('Only the room owner can remove other members');
      }
    };
    // Answered at once from the room as read; judged again under the room's
    // lock, where an owner who has just handed the room over is not one.
    authorize(room.ownerId);
    if (!UUID_PATTERN.test(target)) throw AppException.notFound('Member not found');
    const by = { id: actor.id, username: actor.username };
    const wasMember = await this.rooms.isMember(room.id, target);
    let removal: Awaited<ReturnType<RoomsService['removeMember']>>;
    try {
      removal = await this.rooms.removeMember(room.id, target, authorize);
    } catch (error) {
      // An outcome unknown (a lost answer) is read back; a conflict's rollback removed no one.
      if (wasMember && isUnavailableError(error) && !isRolledBackForConflict(error))
        await this.announceIfGone(room, target, by);
      throw error;
    }
    if (!removal) throw AppException.notFound('Member not found');
    this.delivery.membershipEnded(target, RoomView.from({ ...room, ...removal }), by);
  }

  /**
   * A removal whose outcome the database did not tell (its commit's answer
   * lost) may have happened: if the membership is gone, it did, and the
   * user's connections must leave the room now. A retry would find nothing
   * to remove, and tell no one.
   */
  private async announceIfGone(room: Room, userId: string, by: UserSummaryJson): Promise<void> {
    const stillMember = await this.rooms.isMember(room.id, userId).catch(() => undefined);
    if (stillMember === false) this.delivery.membershipEnded(userId, RoomView.from(room), by);
  }
}
