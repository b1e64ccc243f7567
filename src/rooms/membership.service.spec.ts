import type { AuthUser } from '@app/auth/auth-user';
import type { DeliveryService } from '@app/delivery/delivery.service';
import type { RateLimitService } from '@app/throttling/rate-limit.service';
import type { UsersService } from '@app/users/users.service';
import { MembershipService } from './membership.service';
import type { Room } from './room.entity';
import type { AddAuthorization, RoomsService } from './rooms.service';

const OWNER = '01a21548-0000-7000-8000-00000000000a';
const OTHER = '01a21548-0000-7000-8000-00000000000b';
const THIRD = '01a21548-0000-7000-8000-00000000000c';
const ROOM = '01a21548-0000-7000-8000-0000000000f0';

const user = (id: string): AuthUser => ({
  id,
  username: `u${id.slice(-1)}`,
  tokenExpiresAt: Date.now() + 60_000,
  sessionStartedAt: Date.now(),
});

function setUp(room: Partial<Room>, { added = true, removed = true, members = [OWNER] } = {}) {
  const isMember = (userId: string) => Promise.resolve(members.includes(userId));
  const rooms = {
    isMember: jest.fn((_room: string, userId: string) => isMember(userId)),
    findAccessible: jest.fn().mockResolvedValue({
      id: ROOM,
      ownerId: OWNER,
      isPrivate: false,
      name: 'r',
      createdAt: new Date(0),
      lastSeq: 0,
      ...room,
    }),
    // Judged as under the room's lock: by the owner read there, here the room's own.
    addMemberAs: jest.fn(
      async (actor: string, _room: string, _user: string, authorize: AddAuthorization) => {
        await authorize(room.ownerId ?? OWNER, () => isMember(actor));
        return { added, joinedAt: new Date(0) };
      },
    ),
    removeMember: jest
      .fn()
      .mockResolvedValue(removed ? { ownerId: room.ownerId ?? OWNER } : undefined),
  };
  const users = {
    findActiveById: jest.fn((id: string) =>
      Promise.resolve(
        [OWNER, OTHER, THIRD].includes(id) ? { id, username: `u${id.slice(-1)}` } : null,
      ),
    ),
  };
  const delivery = { notify: jest.fn(), membershipEnded: jest.fn() };
  const rateLimits = {
    consume: jest.fn(() => Promise.resolve()),
    refund: jest.fn(() => Promise.resolve()),
  };
  const service = new MembershipService(
    rooms as unknown as RoomsService,
    users as unknown as UsersService,
    delivery as unknown as DeliveryService,
    rateLimits as unknown as RateLimitService,
  );
  return { service, rooms, delivery, rateLimits };
}

describe('MembershipService', () => {
  it('lets the owner add anyone and tells the invitee', async () => {
    const { service, delivery } = setUp({ isPrivate: true });
    await expect(service.add(user(OWNER), ROOM, OTHER)).resolves.toMatchObject({
      roomId: ROOM,
      id: OTHER,
    });
    expect(delivery.notify).toHaveBeenCalledWith(
      OTHER,
      expect.objectContaining({ type: 'room:invited', by: { id: OWNER, username: 'ua' } }),
    );
  });

  it('lets a user who is no member add only themself to a public room, silently', async () => {
    const { service, delivery } = setUp({});
    await expect(service.add(user(OTHER), ROOM, OTHER)).resolves.toMatchObject({ id: OTHER });
    expect(delivery.notify).not.toHaveBeenCalled();
    await expect(service.add(user(OTHER), ROOM, THIRD)).rejects.toMatchObject({
      code: 'FORBIDDEN',
      message: 'Only members of the room can add others',
    });
  });

  it("lets a public room's members add others, and tells the invitee", async () => {
    const { service, delivery } = setUp({}, { members: [OWNER, OTHER] });
    await expect(service.add(user(OTHER), ROOM, THIRD)).resolves.toMatchObject({ id: THIRD });
    expect(delivery.notify).toHaveBeenCalledWith(
      THIRD,
      expect.objectContaining({ type: 'room:invited', by: { id: OTHER, username: 'ub' } }),
    );
  });

  it("lets only a private room's owner add others, not its members", async () => {
    const { service, delivery } = setUp({ isPrivate: true }, { members: [OWNER, OTHER] });
    await expect(service.add(user(OTHER), ROOM, THIRD)).rejects.toMatchObject({
      code: 'FORBIDDEN',
      message: 'Only the room owner can add other members',
    });
    expect(delivery.notify).not.toHaveBeenCalled();
  });

  it('recognises the caller in an upper-case user id', async () => {
    const { service, delivery } = setUp({});
    await expect(service.add(user(OTHER), ROOM, OTHER.toUpperCase())).resolves.toMatchObject({
      id: OTHER,
    });
    expect(delivery.notify).not.toHaveBeenCalled();
  });

  it('answers NOT_FOUND for an unknown user', async () => {
    await expect(
      setUp({}).service.add(user(OWNER), ROOM, '01a21548-0000-7000-8000-0000000000ee'),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('answers an existing membership as it is, and invites nobody again', async () => {
    const { service, delivery, rateLimits } = setUp({ isPrivate: true }, { added: false });
    await expect(service.add(user(OWNER), ROOM, OTHER)).resolves.toMatchObject({
      roomId: ROOM,
      id: OTHER,
    });
    expect(delivery.notify).not.toHaveBeenCalled();
    expect(rateLimits.refund).toHaveBeenCalledWith('invite', OWNER);
  });

  it('tells the removed member, who leaves the room everywhere', async () => {
    const { service, delivery } = setUp({ isPrivate: true });
    await service.remove(user(OWNER), ROOM, OTHER.toUpperCase());
    expect(delivery.membershipEnded).toHaveBeenCalledWith(
      OTHER,
      expect.objectContaining({ id: ROOM, isPrivate: true }),
      { id: OWNER, username: 'ua' },
    );
  });

  it('tells nobody when nothing was removed', async () => {
    const { service, delivery } = setUp({}, { removed: false });
    await expect(service.remove(user(OWNER), ROOM, OTHER)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(delivery.membershipEnded).not.toHaveBeenCalled();
  });

  describe('a removal whose commit went unanswered', () => {
    const unanswered = () => new Error('Connection terminated unexpectedly');

    it('tells the member, who leaves the room everywhere, when the membership is gone', async () => {
      const members = [OWNER, OTHER];
      const { service, rooms, delivery } = setUp({ isPrivate: true }, { members });
      rooms.removeMember.mockImplementationOnce(() => {
        members.splice(members.indexOf(OTHER), 1);
        return Promise.reject(unanswered());
      });
      await expect(service.remove(user(OWNER), ROOM, OTHER)).rejects.toThrow(/terminated/);
      expect(delivery.membershipEnded).toHaveBeenCalledWith(
        OTHER,
        expect.objectContaining({ id: ROOM, isPrivate: true }),
        { id: OWNER, username: 'ua' },
      );
    });

    it('tells nobody when the membership is still there, or never was', async () => {
      for (const members of [
        [OWNER, OTHER],
        [OWNER, THIRD],
      ]) {
        const { service, rooms, delivery } = setUp({ isPrivate: true }, { members });
        rooms.removeMember.mockRejectedValueOnce(unanswered());
        await expect(service.remove(user(OWNER), ROOM, OTHER)).rejects.toThrow(/terminated/);
        expect(delivery.membershipEnded).not.toHaveBeenCalled();
      }
    });

    it('tells nobody when the removal failed for another reason', async () => {
      const members = [OWNER, OTHER];
      const { service, rooms, delivery } = setUp({ isPrivate: true }, { members });
      rooms.removeMember.mockImplementationOnce(() => {
        members.splice(members.indexOf(OTHER), 1);
        return Promise.reject(new Error('a bug'));
      });
      await expect(service.remove(user(OWNER), ROOM, OTHER)).rejects.toThrow('a bug');
      expect(delivery.membershipEnded).not.toHaveBeenCalled();
    });
  });

  it('removes: the owner anyone, themself included; a member only themself', async () => {
    await expect(setUp({}).service.remove(user(OWNER), ROOM, OTHER)).resolves.toBeUndefined();
    await expect(setUp({}).service.remove(user(OTHER), ROOM, OTHER)).resolves.toBeUndefined();
    await expect(setUp({}).service.remove(user(OTHER), ROOM, THIRD)).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    await expect(setUp({}).service.remove(user(OWNER), ROOM, OWNER)).resolves.toBeUndefined();
    await expect(
      setUp({}, { removed: false }).service.remove(user(OWNER), ROOM, OTHER),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(setUp({}).service.remove(user(OWNER), ROOM, 'not-a-uuid')).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });
});
