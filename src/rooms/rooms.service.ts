import { Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { In, Repository, type EntityManager, type SelectQueryBuilder } from 'typeorm';
import { assertRemembered } from '@app/common/admission-age';
import { AppException } from '@app/common/errors/app.exception';
import { chunksOf } from '@app/common/chunks';
import { ExpiringCache } from '@app/common/expiring-cache';
import { SingleFlight } from '@app/common/single-flight';
import { uuidv7, UUID_PATTERN } from '@app/common/ids/uuid-v7';
import type { UserSummaryJson } from '@app/contract/models';
import { isUnavailableError } from '@app/common/errors/to-error-body';
import { isUniqueViolation } from '@app/database/database-errors';
import { fromSqliteTime } from '@app/database/sqlite-time';
import { TransactionRunner } from '@app/database/transaction-runner';
import { User } from '@app/users/user.entity';
import type { CreateRoomDto } from './dto/create-room.dto';
import { RoomMember } from './room-member.entity';
import { Room } from './room.entity';

/** How long a live connection may act on a membership removed on another node. */
const MEMBERSHIP_CACHE_MS = 5_000;
/** Far longer than a join or stream takes to open; one that takes longer is refused (`assertRemembered`). */
const REMOVAL_MEMORY_MS = 60_000;

/** A room the user may enter, and the check to make just before letting them in. */
export interface Admission {
  room: Room;
  /**
   * NOT_FOUND when the user's membership of this private room ended since the
   * room was read: that removal's effect has passed this node's connections
   * by, so a join or stream opened after it would stay in for good. Call it
   * synchronously before subscribing.
   */
  confirm(this: void): void;
  /** Whether this node has seen the user's membership of the room end since it was read. */
  removedMeanwhile(this: void): boolean;
}

/**
 * Throws when the actor may not add the member, judged on the room's owner
 * and, where that is not enough, on whether the actor is a member (read
 * only when asked).
 */
export type AddAuthorization = (
  ownerId: string | undefined,
  actorIsMember: () => Promise<boolean>,
) => Promise<void>;

/** A member as a listing of the room's members shows them. */
export interface RoomMemberSummary extends UserSummaryJson {
  joinedAt: Date;
}

export interface RoomPageResult {
  items: Room[];
  nextCursor: string | null;
}

/**
 * Rooms and who may see them. A private room is invisible to non-members:
 * every lookup answers NOT_FOUND, exactly as for a room that does not exist.
 */
@Injectable()
export class RoomsService {
  private readonly logger = new Logger(RoomsService.name);

  constructor(
    @InjectRepository(Room) private readonly rooms: Repository<Room>,
    @InjectRepository(RoomMember) private readonly members: Repository<RoomMember>,
    private readonly transactions: TransactionRunner,
  ) {}

  /** Whether a room is private never changes, so it may be kept for long. */
  private readonly privacyCache = new ExpiringCache<{ isPrivate: boolean }>(10 * 60_000, 50_000);
  private readonly membershipCache = new ExpiringCache<boolean>(MEMBERSHIP_CACHE_MS, 100_000);
  private readonly privacyLookups = new SingleFlight<{ isPrivate: boolean } | undefined>();
  private readonly membershipLookups = new SingleFlight<boolean>();
  /** Memberships ended lately (on any node), by the count of removals at the time. */
  private readonly removals = new ExpiringCache<number>(REMOVAL_MEMORY_MS, 100_000);
  private removalCount = 0;

  async create(ownerId: string, dto: CreateRoomDto): Promise<Room> {
    const now = new Date();
    const room = this.rooms.create({
      id: uuidv7(),
      name: dto.name,
      isPrivate: dto.isPrivate ?? false,
      ownerId,
      createdAt: now,
      lastSeq: 0,
    });
    await this.transactions.run(async (manager) => {
      await this.assertAccountOpen(manager, ownerId);
      await manager.insert(Room, room);
      await manager.insert(RoomMember, { roomId: room.id, userId: ownerId, joinedAt: now });
    });
    return room;
  }

  /**
   * The owner's account is still open, its row locked to the commit on
   * PostgreSQL (SQLite's transactions take turns already): a deletion then
   * waits, and hands the room over in its pass after the deletion. A room
   * created after that pass would stay with the deleted account for good,
   * and no one could add members to it.
   */
  private async assertAccountOpen(manager: EntityManager, userId: string): Promise<void> {
    const query = manager
      .createQueryBuilder(User, 'account')
      .select('account.id', 'id')
      .where('account.id = :userId', { userId })
      .andWhere('account.deletedAt IS NULL');
    if (this.transactions.isPostgres) query.setLock('pessimistic_read');
    if (!(await query.getRawOne())) throw AppException.accountDeleted();
  }

  /**
   * Public rooms and the caller's private rooms, by id (time-ordered by
   * the clock of the node that made each). Two reads that indexes answer, merged: one condition with
   * an OR would scan every room, private ones of others included.
   */
  async listVisible(userId: string, limit: number, cursor?: string): Promise<RoomPageResult> {
    const after = cursor?.toLowerCase();
    // Equalities, not `NOT room.isPrivate`, and the caller's rooms as a
    // subquery, not a join: so SQLite reads the public ones and the
    // caller's memberships from their indexes, in order, and neither every
    // room (or every private room) nor a sort.
    const publicRooms = this.pageQuery(limit, after).andWhere('room.isPrivate = :no', {
      no: false,
    });
    const ownPrivateRooms = this.pageQuery(limit, after)
      .andWhere('room.isPrivate = :yes', { yes: true })
      .andWhere((query) => `room.id IN ${this.roomIdsOfMember(query)}`, { userId });
    const [open, own] = await Promise.all([publicRooms.getMany(), ownPrivateRooms.getMany()]);
    const rows = [...open, ...own].sort((a, b) => (a.id < b.id ? -1 : 1)).slice(0, limit + 1);
    const items = rows.slice(0, limit);
    return { items, nextCursor: rows.length > limit ? items[items.length - 1].id : null };
  }

  /** Up to one more than a page of rooms, after the cursor, by id. */
  private pageQuery(limit: number, after: string | undefined) {
    const query = this.rooms
      .createQueryBuilder('room')
      .orderBy('room.id', 'ASC')
      .limit(limit + 1);
    return after ? query.andWhere('room.id > :after', { after }) : query;
  }

  /** The ids of the rooms the user (`:userId`) is a member of, as a subquery of `query`. */
  private roomIdsOfMember(query: SelectQueryBuilder<Room>): string {
    return query
      .subQuery()
      .select('member.roomId')
      .from(RoomMember, 'member')
      .where('member.userId = :userId')
      .getQuery();
  }

  /**
   * Whether the user may use the room (public, or a member), answered from a
   * short-lived cache: it runs for every live event. NOT_FOUND otherwise.
   * A membership change on this node takes effect at once, on others within
   * the cache's lifetime. Resolves with the room's id in canonical form.
   */
  async assertAccessible(userId: string, roomId: string): Promise<string> {
    const known = this.knownAccessible(userId, roomId);
    if (known !== undefined) return known;
    const id = UUID_PATTERN.test(roomId) ? roomId.toLowerCase() : undefined;
    const privacy = id === undefined ? undefined : await this.privacyOf(id);
    if (privacy === undefined || (privacy.isPrivate && !(await this.isMemberCached(id!, userId)))) {
      throw AppException.notFound('Room not found');
    }
    return id!;
  }

  /**
   * The room's canonical id when the caches already show that the user may use
   * it, without waiting for anything; undefined when only `assertAccessible`
   * can tell. Lets the per-event paths skip a turn of the event loop.
   */
  knownAccessible(userId: string, roomId: string): string | undefined {
    // Only room ids are ever cached: anything else misses without a pattern test.
    const id = roomId.toLowerCase();
    const privacy = this.privacyCache.get(id);
    if (!privacy) return undefined;
    if (!privacy.isPrivate || this.membershipCache.get(`${id}:${userId}`) === true) return id;
    return undefined;
  }

  /** The room, read fresh, if the user may see it (public, or a member); NOT_FOUND otherwise. */
  async findAccessible(userId: string, roomId: string): Promise<Room> {
    const room = UUID_PATTERN.test(roomId)
      ? await this.rooms.findOneBy({ id: roomId.toLowerCase() })
      : null;
    if (!room || (room.isPrivate && !(await this.isMember(room.id, userId)))) {
      throw AppException.notFound('Room not found');
    }
    return room;
  }

  /** `findAccessible`, for a join or stream that a removal running meanwhile must not let in. */
  async admit(userId: string, roomId: string): Promise<Admission> {
    const mark = this.removalMark();
    const startedAt = performance.now();
    const room = await this.findAccessible(userId, roomId);
    const removedMeanwhile = () => this.removedSince(mark, room.id, userId);
    const confirm = () => {
      if (room.isPrivate && removedMeanwhile()) throw AppException.notFound('Room not found');
      if (room.isPrivate) assertRemembered(startedAt, REMOVAL_MEMORY_MS);
    };
    return { room, confirm, removedMeanwhile };
  }

  /** A point in the removals this node has seen, for `removedSince`. */
  removalMark(): number {
    return this.removalCount;
  }

  /** Whether this node has seen the membership end since `mark` (within the last minute). */
  removedSince(mark: number, roomId: string, userId: string): boolean {
    return (this.removals.get(`${roomId}:${userId}`) ?? 0) > mark;
  }

  isMember(roomId: string, userId: string): Promise<boolean> {
    return this.members.existsBy({ roomId, userId });
  }

  /**
   * Cache misses share one read per key (`SingleFlight`): events sent one
   * after another then go on in that order, where reads of their own could
   * answer in any order and store a sender's messages out of it.
   */
  private async privacyOf(roomId: string): Promise<{ isPrivate: boolean } | undefined> {
    const cached = this.privacyCache.get(roomId);
    if (cached) return cached;
    return this.privacyLookups.run(
      roomId,
      () => this.readPrivacy(roomId),
      (privacy) => {
        if (privacy) this.privacyCache.set(roomId, privacy);
      },
    );
  }

  private async readPrivacy(roomId: string): Promise<{ isPrivate: boolean } | undefined> {
    const room = await this.rooms.findOne({
      where: { id: roomId },
      select: { id: true, isPrivate: true },
    });
    return room ? { isPrivate: room.isPrivate } : undefined;
  }

  private async isMemberCached(roomId: string, userId: string): Promise<boolean> {
    const key = `${roomId}:${userId}`;
    const cached = this.membershipCache.get(key);
    if (cached !== undefined) return cached;
    return this.membershipLookups.run(
      key,
      () => this.isMember(roomId, userId),
      (member) => this.membershipCache.set(key, member),
    );
  }

  /** Drops what this node cached about the membership, so that the next check reads it. */
  forgetMembership(roomId: string, userId: string): void {
    const key = `${roomId}:${userId}`;
    this.membershipCache.delete(key);
    this.membershipLookups.forget(key);
  }

  /** A membership ended, on this node or another: for the cache, and for admissions under way. */
  membershipEnded(roomId: string, userId: string): void {
    this.forgetMembership(roomId, userId);
    this.removalCount += 1;
    this.removals.set(`${roomId}:${userId}`, this.removalCount);
  }

  /** The last seq of each of the rooms that exists, by id. */
  async lastSeqsOf(roomIds: readonly string[]): Promise<Map<string, number>> {
    const lastSeqs = new Map<string, number>();
    for (const ids of chunksOf(roomIds)) {
      const rooms = await this.rooms.find({
        select: { id: true, lastSeq: true },
        where: { id: In(ids) },
      });
      for (const room of rooms) lastSeqs.set(room.id, room.lastSeq);
    }
    return lastSeqs;
  }

  /** Which of the given users are members of the room. */
  async membersAmong(roomId: string, userIds: string[]): Promise<string[]> {
    if (userIds.length === 0) return [];
    const rows = await this.members.findBy({ roomId, userId: In(userIds) });
    return rows.map((row) => row.userId);
  }

  /**
   * Those of the given (user, private room) pairs whose membership is gone,
   * with their room. Public rooms stay open to everyone, and so stay out.
   */
  async privateAccessLostAmong(
    held: ReadonlyArray<{ userId: string; roomId: string }>,
  ): Promise<Array<{ userId: string; room: Room }>> {
    const privateRooms = new Map<string, Room>();
    for (const ids of chunksOf([...new Set(held.map((pair) => pair.roomId))])) {
      const rooms = await this.rooms.findBy({ id: In(ids), isPrivate: true });
      for (const room of rooms) privateRooms.set(room.id, room);
    }
    const kept = held.filter((pair) => privateRooms.has(pair.roomId));
    const members = await this.membershipsAmong(
      [...new Set(kept.map((pair) => pair.roomId))],
      [...new Set(kept.map((pair) => pair.userId))],
    );
    return kept
      .filter(({ roomId, userId }) => !members.has(`${roomId}:${userId}`))
      .map(({ roomId, userId }) => ({ userId, room: privateRooms.get(roomId)! }));
  }

  /**
   * The memberships between the rooms and the users, as `roomId:userId`: by
   * lists of ids, since pairs OR-ed together nest too deep for SQLite past a
   * thousand.
   */
  private async membershipsAmong(roomIds: string[], userIds: string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (const rooms of chunksOf(roomIds)) {
      for (const users of chunksOf(userIds)) {
        const rows = await this.members.find({
          select: { roomId: true, userId: true },
          where: { roomId: In(rooms), userId: In(users) },
        });
        for (const row of rows) found.add(`${row.roomId}:${row.userId}`);
      }
    }
    return found;
  }

  /**
   * A page of the room's members (open accounts), in the order of their user
   * ids, after the id `after`: the primary key's order, so a page of a room
   * of any size is read from the index without a sort.
   */
  async listMembers(
    roomId: string,
    limit: number,
    after?: string,
  ): Promise<{ items: RoomMemberSummary[]; nextCursor: string | null }> {
    const query = this.members
      .createQueryBuilder('member')
      .innerJoin(User, 'user', 'user.id = member.userId')
      .select(['user.id AS id', 'user.username AS username', 'member.joinedAt AS "joinedAt"'])
      .where('member.roomId = :roomId', { roomId })
      .andWhere('user.deletedAt IS NULL')
      .orderBy('member.userId', 'ASC')
      .limit(limit + 1);
    if (after) query.andWhere('member.userId > :after', { after: after.toLowerCase() });
    const rows = await query.getRawMany<{
      id: string;
      username: string;
      joinedAt: Date | string;
    }>();
    const items = rows.slice(0, limit).map(({ id, username, joinedAt }) => ({
      id,
      username,
      joinedAt: typeof joinedAt === 'string' ? fromSqliteTime(joinedAt) : joinedAt,
    }));
    return { items, nextCursor: rows.length > limit ? items[items.length - 1].id : null };
  }

  /**
   * Adds a member to a public room they may join; false when they already
   * were one. The room's row is locked only to adopt a room its owner left
   * (see `adoptIfOwnerLeft`): every send to the room locks it too.
   */
  async addMember(roomId: string, userId: string): Promise<{ added: boolean; joinedAt: Date }> {
    const joined = await this.insertMember(
      roomId,
      userId,
      async (joinedAt) => {
        await this.transactions.write((manager) =>
          manager.insert(RoomMember, { roomId, userId, joinedAt }),
        );
        return undefined;
      },
      { readFirst: true },
    );
    if (joined.added) await this.adoptIfOwnerLeft(roomId);
    return joined;
  }

  /**
   * Hands a room its owner is no member of to its longest-standing member,
   * if it has one: the new owner, or undefined. Called after a join, and
   * after an owner's leave that found no one to hand the room to, each once
   * committed, so that a join and a leave at the same time cannot both miss
   * the other's write. The room's row is locked only when the owner is no
   * member.
   */
  private async adoptIfOwnerLeft(roomId: string): Promise<string | undefined> {
    if (await this.ownerIsMember(this.rooms.manager, roomId)) return undefined;
    return this.transactions.run(async (manager) => {
      const room = await this.lockRoom(manager, roomId);
      if (!room || (await this.ownerIsMember(manager, roomId))) return undefined;
      return this.handOver(manager, roomId);
    });
  }

  /**
   * Adds a member on `actorId`'s word, judged again under the room's lock,
   * as removals are: the actor's access and the owner were read before, and
   * a removal committed since (of the actor, or the owner's hand-over) must
   * not be undone by an add that read the room before it, nor told who is a
   * member. `authorize` judges the owner read there, and may throw. Answers
   * the room's owner as the add leaves it (adopted by the new member, if its
   * owner had left it), unknown when the commit's answer was lost.
   */
  async addMemberAs(
    actorId: string,
    roomId: string,
    userId: string,
    authorize: AddAuthorization,
  ): Promise<{ added: boolean; joinedAt: Date; ownerId?: string }> {
    let ownerId: string | undefined;
    const joined = await this.insertMember(
      roomId,
      userId,
      (joinedAt) =>
        this.transactions.run(async (manager) => {
          const room = await this.lockRoom(manager, roomId);
          if (!room) throw AppException.notFound('Room not found');
          const actorIsMember = () => manager.existsBy(RoomMember, { roomId, userId: actorId });
          // Before the owner's word: a private room is not there for one removed from it (404, not 403).
          if (room.isPrivate && !(await actorIsMember()))
            throw AppException.notFound('Room not found');
          await authorize(room.ownerId, actorIsMember);
          ownerId = room.ownerId;
          const existing = await manager.findOneBy(RoomMember, { roomId, userId });
          if (existing) return existing.joinedAt;
          ownerId = await this.insertAndAdopt(manager, room, { roomId, userId, joinedAt });
          return undefined;
        }),
      // Only one's own membership is answered before the room's lock judges the add.
      { readFirst: actorId === userId },
    );
    return { ...joined, ownerId };
  }

  /**
   * Inserts the membership, under the room's lock, and adopts the room if its
   * owner left it: the room's owner after.
   */
  private async insertAndAdopt(
    manager: EntityManager,
    room: Pick<Room, 'ownerId'>,
    member: Pick<RoomMember, 'roomId' | 'userId' | 'joinedAt'>,
  ): Promise<string> {
    await manager.insert(RoomMember, member);
    return (await this.adopt(manager, room, member.roomId, member.userId)) ?? room.ownerId;
  }

  /**
   * Under the room's lock, after `userId` joined: a room its owner left
   * while alone in it passes to whoever joins it next, as an owner's room
   * passes to its longest-standing member when there is one. An owner who is
   * no member would otherwise rule over members for good, and keep the room
   * after deleting the account (which hands over only the rooms it is in).
   */
  private async adopt(
    manager: EntityManager,
    room: Pick<Room, 'ownerId'>,
    roomId: string,
    userId: string,
  ): Promise<string | undefined> {
    if (room.ownerId === userId || (await this.ownerIsMember(manager, roomId))) return undefined;
    return this.handOver(manager, roomId);
  }

  /** One read: whether the room's owner is among its members (true for a room that does not exist). */
  private async ownerIsMember(manager: EntityManager, roomId: string): Promise<boolean> {
    const ownerless = await manager
      .createQueryBuilder(Room, 'room')
      .select('room.id', 'id')
      .where('room.id = :roomId', { roomId })
      .andWhere(
        'NOT EXISTS (SELECT 1 FROM room_members m WHERE m.room_id = room.id AND m.user_id = room.ownerId)',
      )
      .getRawOne<{ id: string }>();
    return ownerless === undefined;
  }

  /**
   * `insert` writes the membership joined at the instant given, or answers
   * since when the user already was a member. With `readFirst`, an existing
   * membership is answered before `insert` is even tried.
   */
  private async insertMember(
    roomId: string,
    userId: string,
    insert: (joinedAt: Date) => Promise<Date | undefined>,
    { readFirst }: { readFirst: boolean },
  ): Promise<{ added: boolean; joinedAt: Date }> {
    const existing = readFirst ? await this.members.findOneBy({ roomId, userId }) : null;
    if (existing) return { added: false, joinedAt: existing.joinedAt };
    const joinedAt = new Date();
    try {
      const memberSince = await insert(joinedAt);
      if (memberSince) return { added: false, joinedAt: memberSince };
    } catch (error) {
      if (isUnavailableError(error) && (await this.insertedAfterAll(roomId, userId, joinedAt)))
        return { added: true, joinedAt };
      if (!isUniqueViolation(error)) throw error;
      const raced = await this.members.findOneBy({ roomId, userId });
      return { added: false, joinedAt: raced?.joinedAt ?? joinedAt };
    } finally {
      // After the commit: a check made meanwhile may have cached "not a member".
      this.forgetMembership(roomId, userId);
    }
    return { added: true, joinedAt };
  }

  /**
   * Whether an insert whose answer was lost (the connection gone with its
   * commit's answer) did commit: the row is there with the instant this
   * insert wrote, not another add's. Then it is answered, and announced, as
   * done; adding again would find the member and tell no one. Unknown when
   * the database cannot say either.
   */
  private async insertedAfterAll(roomId: string, userId: string, joinedAt: Date): Promise<boolean> {
    try {
      const row = await this.members.findOneBy({ roomId, userId });
      return row?.joinedAt.getTime() === joinedAt.getTime();
    } catch {
      return false;
    }
  }

  /**
   * Ends a membership: the room's owner after it, or undefined when there was
   * no membership to end. An owner who leaves hands the room to its
   * longest-standing remaining member, so that a private room keeps someone
   * who may add members. Removals from one room take turns on the room's
   * row, so that the owner and the successor are read as they are, not as a
   * removal still under way leaves them. `authorize` judges the removal
   * against the owner read there, and may throw.
   */
  async removeMember(
    roomId: string,
    userId: string,
    authorize: (ownerId: string | undefined) => void = () => undefined,
  ): Promise<{ ownerId: string } | undefined> {
    this.forgetMembership(roomId, userId);
    const removal = await this.transactions.run(async (manager) => {
      const ownerId = (await this.lockRoom(manager, roomId))?.ownerId;
      authorize(ownerId);
      const result = await manager.delete(RoomMember, { roomId, userId });
      if ((result.affected ?? 0) === 0 || ownerId === undefined) return undefined;
      if (userId !== ownerId) return { ownerId };
      return { ownerId: (await this.handOver(manager, roomId)) ?? ownerId };
    });
    // The owner left with no one to hand the room to: a first join committed meanwhile takes it.
    if (removal?.ownerId === userId)
      return { ownerId: (await this.adoptAfterLeaving(roomId)) ?? userId };
    return removal;
  }

  /**
   * The leave is committed whatever happens here: a failure is logged, not
   * thrown (the leave must still be announced), and the room's next first
   * join adopts it anyway.
   */
  private async adoptAfterLeaving(roomId: string): Promise<string | undefined> {
    try {
      return await this.adoptIfOwnerLeft(roomId);
    } catch (error) {
      this.logger.warn(
        `Could not hand room ${roomId} over after its owner left: ${(error as Error).message}`,
      );
      return undefined;
    }
  }

  ownedBy(userId: string): Promise<Room[]> {
    return this.rooms.find({ where: { ownerId: userId } });
  }

  /** The room's owner and kind, its row locked to the commit; on SQLite transactions already take turns. */
  private async lockRoom(
    manager: EntityManager,
    roomId: string,
  ): Promise<Pick<Room, 'ownerId' | 'isPrivate'> | undefined> {
    const query = manager
      .createQueryBuilder(Room, 'room')
      .select('room.ownerId', 'ownerId')
      .addSelect('room.isPrivate', 'isPrivate')
      .where('room.id = :roomId', { roomId });
    if (this.transactions.isPostgres) query.setLock('for_no_key_update');
    const row = await query.getRawOne<{ ownerId: string; isPrivate: boolean | number }>();
    return row && { ownerId: row.ownerId, isPrivate: Boolean(row.isPrivate) };
  }

  /**
   * On PostgreSQL the successor's account row is locked to the commit: an
   * account deletion then waits, and its pass after the deletion sees the
   * room to hand on again (SQLite's transactions take turns already).
   */
  private async handOver(manager: EntityManager, roomId: string): Promise<string | undefined> {
    const query = manager
      .createQueryBuilder(RoomMember, 'member')
      .innerJoin(User, 'account', 'account.id = member.userId')
      .select('member.userId', 'userId')
      .where('member.roomId = :roomId', { roomId })
      .andWhere('account.deletedAt IS NULL')
      .orderBy('member.joinedAt', 'ASC')
      .addOrderBy('member.userId', 'ASC')
      .limit(1);
    if (this.transactions.isPostgres) query.setLock('pessimistic_read', undefined, ['account']);
    const successor = await query.getRawOne<{ userId: string }>();
    if (!successor) return undefined;
    await manager.update(Room, { id: roomId }, { ownerId: successor.userId });
    return successor.userId;
  }
}
