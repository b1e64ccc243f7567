import type { Repository } from 'typeorm';
import type { TransactionRunner } from '@app/database/transaction-runner';
import type { RoomMember } from './room-member.entity';
import type { Room } from './room.entity';
import { RoomsService } from './rooms.service';

const PUBLIC_ROOM = '01A21548-0000-7000-8000-00000000000A';
const PRIVATE_ROOM = '01a21548-0000-7000-8000-00000000000b';

function serviceWith(members: Set<string>) {
  const findOne = jest.fn(({ where: { id } }: { where: { id: string } }) =>
    Promise.resolve(
      id === PUBLIC_ROOM.toLowerCase() || id === PRIVATE_ROOM
        ? { id, isPrivate: id === PRIVATE_ROOM }
        : null,
    ),
  );
  const existsBy = jest.fn(({ roomId, userId }: { roomId: string; userId: string }) =>
    Promise.resolve(members.has(`${roomId}:${userId}`)),
  );
  const findOneBy = ({ id }: { id: string }) =>
    findOne({ where: { id } }).then((room) => (room ? ({ ...room, lastSeq: 0 } as Room) : null));
  // Every room's owner is among its members: no room here is to be adopted.
  const ownedQuery = {
    select: () => ownedQuery,
    where: () => ownedQuery,
    andWhere: () => ownedQuery,
    getRawOne: () => Promise.resolve(undefined),
  };
  const rooms = {
    findOne,
    findOneBy,
    manager: { createQueryBuilder: () => ownedQuery },
  } as unknown as Repository<Room>;
  const memberRows = {
    existsBy,
    findOneBy: () => Promise.resolve(null),
    delete: () => Promise.resolve({ affected: 1 }),
  } as unknown as Repository<RoomMember>;
  const ownerQuery = {
    select: () => ownerQuery,
    addSelect: () => ownerQuery,
    where: () => ownerQuery,
    getRawOne: () => Promise.resolve({ ownerId: 'owner', isPrivate: true }),
  };
  const manager = {
    existsBy: (_: unknown, where: { roomId: string; userId: string }) => existsBy(where),
    delete: () => Promise.resolve({ affected: 1 }),
    insert: () => Promise.resolve({}),
    createQueryBuilder: () => ownerQuery,
  };
  /** Runs the work; `during` stands for what other requests do before it commits. */
  const transactions = {
    isPostgres: false,
    during: () => Promise.resolve(),
    async write(work: (manager: unknown) => Promise<unknown>) {
      const result = await work(manager);
      await transactions.during();
      return result;
    },
    run(work: (manager: unknown) => Promise<unknown>) {
      return transactions.write(work);
    },
  };
  const service = new RoomsService(rooms, memberRows, transactions as unknown as TransactionRunner);
  return { service, findOne, existsBy, transactions };
}

describe('RoomsService access checks', () => {
  it('knows nothing before a lookup, then answers from the cache in canonical form', async () => {
    const { service, findOne } = serviceWith(new Set());
    expect(service.knownAccessible('u1', PUBLIC_ROOM)).toBeUndefined();
    await expect(service.assertAccessible('u1', PUBLIC_ROOM)).resolves.toBe(
      PUBLIC_ROOM.toLowerCase(),
    );
    expect(service.knownAccessible('u1', PUBLIC_ROOM)).toBe(PUBLIC_ROOM.toLowerCase());
    await service.assertAccessible('u2', PUBLIC_ROOM);
    expect(findOne).toHaveBeenCalledTimes(1);
  });

  it('knows a private room only for users whose membership it has seen', async () => {
    const { service } = serviceWith(new Set([`${PRIVATE_ROOM}:member`]));
    await expect(service.assertAccessible('member', PRIVATE_ROOM)).resolves.toBe(PRIVATE_ROOM);
    expect(service.knownAccessible('member', PRIVATE_ROOM)).toBe(PRIVATE_ROOM);
    expect(service.knownAccessible('stranger', PRIVATE_ROOM)).toBeUndefined();
    await expect(service.assertAccessible('stranger', PRIVATE_ROOM)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(service.knownAccessible('stranger', PRIVATE_ROOM)).toBeUndefined();
  });

  it('forgets a membership as soon as it is removed on this node', async () => {
    const members = new Set([`${PRIVATE_ROOM}:member`]);
    const { service } = serviceWith(members);
    await service.assertAccessible('member', PRIVATE_ROOM);
    members.delete(`${PRIVATE_ROOM}:member`);
    await service.removeMember(PRIVATE_ROOM, 'member');
    expect(service.knownAccessible('member', PRIVATE_ROOM)).toBeUndefined();
    await expect(service.assertAccessible('member', PRIVATE_ROOM)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('forgets a "not a member" that a check cached while the membership was being added', async () => {
    const members = new Set<string>();
    const { service, transactions } = serviceWith(members);
    transactions.during = async () => {
      await expect(service.assertAccessible('newcomer', PRIVATE_ROOM)).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      members.add(`${PRIVATE_ROOM}:newcomer`);
    };

    await service.addMember(PRIVATE_ROOM, 'newcomer');

    await expect(service.assertAccessible('newcomer', PRIVATE_ROOM)).resolves.toBe(PRIVATE_ROOM);
  });

  it('never knows rooms that do not exist or ids that are not UUIDs', async () => {
    const { service, findOne } = serviceWith(new Set());
    const missing = '01a21548-0000-7000-8000-00000000000c';
    await expect(service.assertAccessible('u1', missing)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(service.knownAccessible('u1', missing)).toBeUndefined();
    await expect(service.assertAccessible('u1', 'lobby')).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(service.knownAccessible('u1', 'lobby')).toBeUndefined();
    expect(findOne).toHaveBeenCalledTimes(1);
  });
});

describe('RoomsService admissions', () => {
  const PUBLIC = PUBLIC_ROOM.toLowerCase();

  it('refuses an admission to a private room whose membership ended after the room was read', async () => {
    const { service } = serviceWith(new Set([`${PRIVATE_ROOM}:member`]));
    const admission = await service.admit('member', PRIVATE_ROOM);
    expect(() => admission.confirm()).not.toThrow();
    service.membershipEnded(PRIVATE_ROOM, 'member');
    expect(() => admission.confirm()).toThrow('Room not found');
  });

  it('admits what a removal does not concern: another member, a later admission, a public room', async () => {
    const { service } = serviceWith(
      new Set([`${PRIVATE_ROOM}:member`, `${PRIVATE_ROOM}:other`, `${PUBLIC}:member`]),
    );
    const other = await service.admit('other', PRIVATE_ROOM);
    const publicRoom = await service.admit('member', PUBLIC_ROOM);
    service.membershipEnded(PRIVATE_ROOM, 'member');
    service.membershipEnded(PUBLIC, 'member');
    const later = await service.admit('member', PRIVATE_ROOM);
    expect(() => other.confirm()).not.toThrow();
    expect(() => publicRoom.confirm()).not.toThrow();
    expect(() => later.confirm()).not.toThrow();
    // ...but says the public room's membership ended meanwhile, for a join that made it.
    expect([other, publicRoom, later].map((admission) => admission.removedMeanwhile())).toEqual([
      false,
      true,
      false,
    ]);
  });
});
