import { ChatService } from '@app/chat/chat.service';
import { LiveDelivery } from '@app/chat/live-delivery';
import { PresenceService } from '@app/chat/presence.service';
import { AppException } from '@app/common/errors/app.exception';
import { roomNames } from '@app/contract/room-names';
import type { JoinResult } from '@app/contract/socket-events';
import type { LocalChannels } from '@app/delivery/local-channels';
import { DeliveryService } from '@app/delivery/delivery.service';
import { RawWsGateway } from '@app/raw-ws/raw-ws.gateway';
import { MessagesService } from '@app/messages/messages.service';
import { RoomsService } from '@app/rooms/rooms.service';
import {
  addMember,
  createRoom,
  postMessage,
  registerUser,
  removeMember,
  type TestUser,
} from '../support/api';
import { databaseKinds } from '../support/databases';
import { holdDeliveries, holdNextCall, type HeldCall } from '../support/hold';
import { RawClient } from '../support/raw-ws';
import {
  collect,
  emitAck,
  emitOk,
  eventually,
  nextEvent,
  sleep,
  socketPool,
  type ClientSocket,
} from '../support/sockets';
import { startTestApp, type TestApp } from '../support/test-app';

/** A room no test joins: a presence of it is a round trip that waits on no join. */
const ANOTHER_ROOM = '01a21548-0000-7000-8000-000000000000';

describe.each(databaseKinds())('Joins racing their connection (%s)', (kind) => {
  let t: TestApp;
  let owner: TestUser;
  const sockets = socketPool(() => t.url);

  beforeAll(async () => {
    t = await startTestApp(kind);
    owner = await registerUser(t.url);
  });
  afterEach(() => {
    sockets.closeAll();
    jest.restoreAllMocks();
  });
  afterAll(() => t.close());

  const holdNextRoomLookup = () => holdNextCall(t.app.get(RoomsService), 'findAccessible');

  const presentIds = async (roomId: string) =>
    (await t.app.get(PresenceService).users(roomId)).map((user) => user.id);

  it('leaves no presence behind for a Socket.IO join whose socket disconnected meanwhile', async () => {
    const room = await createRoom(t.url, owner);
    const joiner = await registerUser(t.url);
    const socket = await sockets.connect(joiner);
    const chat = t.app.get(ChatService);
    const joins = jest.spyOn(chat, 'join');
    const disconnects = jest.spyOn(chat, 'disconnected');
    const lookup = holdNextRoomLookup();
    socket.emit('chat:join', { roomId: room.id });
    await lookup.started;
    socket.disconnect();
    // The server has handled the disconnect, cleaning up after the socket, before the join goes on.
    await eventually(() => disconnects.mock.results.length > 0);
    await disconnects.mock.results[0].value;
    lookup.release();
    // And the join has run to its end (refused: the connection closed meanwhile).
    expect(joins.mock.results).toHaveLength(1);
    await Promise.allSettled([joins.mock.results[0].value]);

    expect(await presentIds(room.id)).not.toContain(joiner.id);
    expect(t.app.get(LiveDelivery).deliveredSeq(room.id)).toBeUndefined();
  });

  it('leaves no presence or subscription behind for a /ws join whose connection closed meanwhile', async () => {
    const room = await createRoom(t.url, owner);
    const joiner = await registerUser(t.url);
    const gateway = t.app.get(RawWsGateway);
    const before = gateway.openConnections;
    const client = await RawClient.connect(t.url, joiner.token);
    const entries = jest.spyOn(t.app.get(ChatService), 'enter');
    const lookup = holdNextRoomLookup();
    client.send({ type: 'join', room: room.id });
    await lookup.started;
    client.socket.terminate();
    await eventually(() => gateway.openConnections === before);
    lookup.release();
    // The join has run to its end (refused: the connection closed meanwhile).
    expect(entries.mock.results).toHaveLength(1);
    await expect(entries.mock.results[0].value).rejects.toThrow();

    expect(await presentIds(room.id)).not.toContain(joiner.id);
    expect(t.app.get(LiveDelivery).deliveredSeq(room.id)).toBeUndefined();
    const { channels } = gateway as unknown as { channels: LocalChannels<unknown> };
    expect(channels.subscribers(roomNames.chat(room.id)).size).toBe(0);
  });

  /** Whether the socket gets the room's messages: a round trip on it comes back behind any. */
  const getsMessagesOf = async (socket: ClientSocket, roomId: string) => {
    const got = collect(socket, 'chat:message');
    const ownerSocket = await sockets.connect(owner);
    await emitOk(ownerSocket, 'chat:join', roomId);
    const ownerGets = nextEvent(ownerSocket, 'chat:message');
    await postMessage(t.url, owner, roomId, 'probe');
    await ownerGets;
    await emitAck(socket, 'room:presence', { roomId });
    return got.length > 0;
  };

  /** Holds the join's room access check: the guard's, before the handler runs. */
  const holdNextAccessCheck = () => {
    const rooms = t.app.get(RoomsService);
    jest.spyOn(rooms, 'knownAccessible').mockReturnValueOnce(undefined);
    return holdNextCall(rooms, 'assertAccessible');
  };

  it.each([
    ['its room lookup', holdNextRoomLookup],
    ['its access check', holdNextAccessCheck],
  ])(
    'leaves a Socket.IO socket out of a room it joined and left back to back, the join waiting on %s',
    async (_, hold) => {
      const room = await createRoom(t.url, owner);
      const joiner = await registerUser(t.url);
      const socket = await sockets.connect(joiner);
      const lookup = hold();
      const joined = emitAck(socket, 'chat:join', { roomId: room.id });
      await lookup.started;
      const left = emitAck(socket, 'chat:leave', { roomId: room.id });
      // Events of one socket are handled in order: the leave has been handed over by now (a
      // presence of another room: one of this room would wait behind the join).
      await emitAck(socket, 'room:presence', { roomId: ANOTHER_ROOM });
      lookup.release();

      expect(await joined).toMatchObject({ ok: true });
      expect(await left).toEqual({ ok: true, data: {} });
      expect(await presentIds(room.id)).not.toContain(joiner.id);
      expect(await getsMessagesOf(socket, room.id)).toBe(false);
    },
  );

  it('does not hold a Socket.IO join of one room behind a join of another still waiting', async () => {
    const [waiting, other] = [await createRoom(t.url, owner), await createRoom(t.url, owner)];
    const socket = await sockets.connect(await registerUser(t.url));
    const lookup = holdNextRoomLookup();
    const first = emitAck(socket, 'chat:join', { roomId: waiting.id });
    await lookup.started;

    expect(await emitAck(socket, 'chat:join', { roomId: other.id })).toMatchObject({ ok: true });
    lookup.release();
    expect(await first).toMatchObject({ ok: true });
  });

  it('keeps a Socket.IO socket in a room it joined twice at once when the first join fails', async () => {
    const room = await createRoom(t.url, owner);
    const joiner = await registerUser(t.url);
    const socket = await sockets.connect(joiner);
    let failListing!: () => void;
    const listingFails = new Promise<never>((_, reject) => {
      failListing = () => reject(new Error('members unreadable'));
    });
    const listing = jest
      .spyOn(t.app.get(RoomsService), 'listMembers')
      .mockImplementationOnce(() => listingFails);
    const first = emitAck(socket, 'chat:join', { roomId: room.id });
    await eventually(() => listing.mock.calls.length === 1);
    const second = emitAck(socket, 'chat:join', { roomId: room.id });
    await emitAck(socket, 'room:presence', { roomId: ANOTHER_ROOM });
    failListing();

    expect(await first).toMatchObject({ ok: false, error: { code: 'INTERNAL' } });
    expect(await second).toMatchObject({ ok: true });
    expect(await presentIds(room.id)).toContain(joiner.id);
    expect(await getsMessagesOf(socket, room.id)).toBe(true);
  });

  it('refuses a join to a private room whose member was removed while it ran', async () => {
    const member = await registerUser(t.url);
    const room = await createRoom(t.url, owner, { isPrivate: true });
    await addMember(t.url, owner, room.id, member.id);
    const socket = await sockets.connect(member);
    const ownerSocket = await sockets.connect(owner);
    await emitOk(ownerSocket, 'chat:join', room.id);
    const announced = {
      joined: collect(ownerSocket, 'chat:userJoined'),
      left: collect(ownerSocket, 'chat:userLeft'),
    };
    const entering = holdNextCall(t.app.get(PresenceService), 'enter');

    const joined = emitAck(socket, 'chat:join', { roomId: room.id });
    await entering.started;
    await removeMember(t.url, owner, room.id, member.id);
    entering.release();

    expect(await joined).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    expect(await presentIds(room.id)).not.toContain(member.id);
    const memberGets = collect(socket, 'chat:message');
    const ownerGets = nextEvent<{ text: string }>(ownerSocket, 'chat:message');
    await postMessage(t.url, owner, room.id, 'members only');
    // Delivered to the room (the owner has it); a round trip on the member's socket then
    // comes back behind anything the server sent it before.
    expect(await ownerGets).toMatchObject({ text: 'members only' });
    await emitAck(socket, 'room:presence', { roomId: room.id });
    expect(memberGets).toEqual([]);
    // Never in, the member was never announced: neither joining nor leaving.
    expect(announced).toEqual({ joined: [], left: [] });
  });

  it('refuses a join whose missed messages were read after a removal a resync still holds back', async () => {
    const member = await registerUser(t.url);
    const room = await createRoom(t.url, owner, { isPrivate: true });
    await addMember(t.url, owner, room.id, member.id);
    await postMessage(t.url, owner, room.id, 'before');
    const socket = await sockets.connect(member);
    const reading = holdNextCall(t.app.get(MessagesService), 'page');

    const joined = emitAck<JoinResult>(socket, 'chat:join', { roomId: room.id, since: 0 });
    await reading.started;
    const endResync = holdDeliveries(t.app.get(DeliveryService));
    // Removed elsewhere: this node has seen the removal, and holds its effect back.
    await t.app.get(RoomsService).removeMember(room.id, member.id);
    t.app.get(DeliveryService).membershipEnded(member.id, room, owner);
    await postMessage(t.url, owner, room.id, 'after the removal');
    reading.release();

    expect(await joined).toEqual({
      ok: false,
      error: { code: 'NOT_FOUND', message: 'Room not found', details: [] },
    });
    // Taken out again, presence and all.
    expect(await presentIds(room.id)).not.toContain(member.id);
    endResync();
  });

  describe('a rejoin refused for taking too long, of a connection in the room all along', () => {
    /** The next join is refused as one that opened too late to be sure of the removals it missed. */
    const refuseNextAdmissionAsLate = () => {
      const rooms = t.app.get(RoomsService);
      const admit = rooms.admit.bind(rooms);
      jest.spyOn(rooms, 'admit').mockImplementationOnce(async (userId, roomId) => ({
        ...(await admit(userId, roomId)),
        confirm: () => {
          throw AppException.unavailable('Opening took too long: try again');
        },
      }));
    };

    it('leaves a Socket.IO socket in the room and its presence, as it was', async () => {
      const member = await registerUser(t.url);
      const room = await createRoom(t.url, owner, { isPrivate: true });
      await addMember(t.url, owner, room.id, member.id);
      const socket = await sockets.connect(member);
      await emitOk(socket, 'chat:join', room.id);
      const ownerSocket = await sockets.connect(owner);
      await emitOk(ownerSocket, 'chat:join', room.id);
      const left = collect(ownerSocket, 'chat:userLeft');

      refuseNextAdmissionAsLate();
      expect(await emitAck(socket, 'chat:join', { roomId: room.id })).toMatchObject({
        ok: false,
        error: { code: 'UNAVAILABLE' },
      });

      expect(await presentIds(room.id)).toContain(member.id);
      expect(await emitAck(socket, 'chat:typing', { roomId: room.id })).toEqual({
        ok: true,
        data: {},
      });
      expect(await getsMessagesOf(socket, room.id)).toBe(true);
      expect(left).toEqual([]);
    });

    it('leaves a /ws connection in the room and its presence, as it was', async () => {
      const member = await registerUser(t.url);
      const room = await createRoom(t.url, owner, { isPrivate: true });
      await addMember(t.url, owner, room.id, member.id);
      const client = await RawClient.connect(t.url, member.token);
      try {
        await client.request({ type: 'join', room: room.id }, 'joined');
        refuseNextAdmissionAsLate();
        expect(await client.request({ type: 'join', room: room.id }, 'joined')).toMatchObject({
          type: 'error',
          code: 'UNAVAILABLE',
        });

        expect(await presentIds(room.id)).toContain(member.id);
        await postMessage(t.url, owner, room.id, 'still here');
        const frame = await client.next((next) => next.type === 'chat:message');
        expect(frame.message).toMatchObject({ text: 'still here' });
        expect(await client.request({ type: 'leave', room: room.id }, 'left')).toEqual({
          type: 'left',
          room: room.id,
        });
      } finally {
        client.close();
      }
    });
  });

  it('resumes a rejoin whose since is past the room’s last seq from the room’s end', async () => {
    const room = await createRoom(t.url, owner);
    await postMessage(t.url, owner, room.id, 'one');
    const socket = await sockets.connect(owner);
    const joined = await emitOk<JoinResult>(socket, 'chat:join', { roomId: room.id, since: 50 });
    expect(joined.missed).toEqual([]);
    const next = nextEvent<{ seq: number }>(socket, 'chat:message');
    await postMessage(t.url, owner, room.id, 'two');
    expect(await next).toMatchObject({ seq: 2 });
  });

  /** A user, a room and the owner's socket in it, hearing who joins and who leaves. */
  const watchedRoom = async (options: { isPrivate?: boolean } = {}) => {
    const user = await registerUser(t.url);
    const room = await createRoom(t.url, owner, options);
    if (options.isPrivate) await addMember(t.url, owner, room.id, user.id);
    const watcher = await sockets.connect(owner);
    await emitOk(watcher, 'chat:join', { roomId: room.id });
    return {
      user,
      room,
      joins: collect<{ id: string }>(watcher, 'chat:userJoined'),
      leaves: collect<{ id: string }>(watcher, 'chat:userLeft'),
    };
  };

  /** `join` started, the answer of the presence entry it writes held once it is written. */
  const heldInPresence = async <T>(join: () => T): Promise<[HeldCall, T]> => {
    const entered = holdNextCall(t.app.get(PresenceService), 'enter', { after: true });
    const joining = join();
    await entered.started;
    return [entered, joining];
  };

  it('announces a user whose join failed once another of their connections came in meanwhile', async () => {
    const { user, room, joins: heard } = await watchedRoom();
    const [first, second] = await Promise.all([sockets.connect(user), sockets.connect(user)]);
    // The first join is refused once in the room, as one that took over a minute is.
    const rooms = t.app.get(RoomsService);
    const admit = rooms.admit.bind(rooms);
    jest.spyOn(rooms, 'admit').mockImplementationOnce(async (...args) => ({
      ...(await admit(...args)),
      confirm: () => {
        throw AppException.unavailable('Joining took too long: join again');
      },
    }));
    const [entered, failing] = await heldInPresence(() =>
      emitAck(first, 'chat:join', { roomId: room.id }),
    );
    await emitOk(second, 'chat:join', { roomId: room.id });
    entered.release();

    expect(await failing).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE' } });
    await eventually(() => heard.length > 0);
    await sleep(200);
    expect(heard.map((event) => event.id)).toEqual([user.id]);
    expect(await presentIds(room.id)).toEqual(expect.arrayContaining([owner.id, user.id]));
  });

  it('does not announce a user whose only connection closed while its join entered presence', async () => {
    const { user, room, joins } = await watchedRoom();
    const socket = await sockets.connect(user);
    const [entered] = await heldInPresence(() => socket.emit('chat:join', { roomId: room.id }));
    socket.close();
    await eventually(() => !t.app.get(PresenceService).isHere(room.id, user.id));
    entered.release();

    // A sentinel's join, announced after anything the closed one's would have been.
    const sentinel = await registerUser(t.url);
    await emitOk(await sockets.connect(sentinel), 'chat:join', { roomId: room.id });
    await eventually(() => joins.some((event) => event.id === sentinel.id));
    expect(joins.map((event) => event.id)).toEqual([sentinel.id]);
  });

  it('announces a user whose first connection closed while entering, another having come in meanwhile', async () => {
    const { user, room, joins, leaves } = await watchedRoom();
    const [first, second] = await Promise.all([sockets.connect(user), sockets.connect(user)]);
    const [entered] = await heldInPresence(() => first.emit('chat:join', { roomId: room.id }));
    await emitOk(second, 'chat:join', { roomId: room.id });
    const firstId = first.id!;
    first.close();
    // Its close has taken it out of the room: the user is still here, through the second.
    await eventually(() => t.app.get(PresenceService).roomsOf(firstId).size === 0);
    entered.release();

    await eventually(() => joins.length > 0);
    await sleep(200);
    expect(joins.map((event) => event.id)).toEqual([user.id]);
    expect(leaves).toEqual([]);
    expect(await presentIds(room.id)).toEqual(expect.arrayContaining([user.id]));
  });

  it('announces a user once when their closed connection’s join ends after a new one came in', async () => {
    const { user, room, joins } = await watchedRoom();
    const first = await sockets.connect(user);
    const [entered] = await heldInPresence(() => first.emit('chat:join', { roomId: room.id }));
    const firstId = first.id!;
    first.close();
    await eventually(() => t.app.get(PresenceService).roomsOf(firstId).size === 0);
    // A reload: the user's new connection comes in first, and announces itself.
    await emitOk(await sockets.connect(user), 'chat:join', { roomId: room.id });
    await eventually(() => joins.length > 0);
    entered.release();

    await sleep(300);
    expect(joins.map((event) => event.id)).toEqual([user.id]);
  });

  it('does not announce a user whose join failed because they were removed meanwhile', async () => {
    const { user, room, joins } = await watchedRoom({ isPrivate: true });
    const socket = await sockets.connect(user);
    const [entered, failing] = await heldInPresence(() =>
      emitAck(socket, 'chat:join', { roomId: room.id }),
    );
    await removeMember(t.url, owner, room.id, user.id);
    await eventually(() => !t.app.get(PresenceService).isHere(room.id, user.id));
    entered.release();

    expect(await failing).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    // A sentinel's join, announced after anything the failed join would have announced.
    const sentinel = await registerUser(t.url);
    await addMember(t.url, owner, room.id, sentinel.id);
    await emitOk(await sockets.connect(sentinel), 'chat:join', { roomId: room.id });
    await eventually(() => joins.some((event) => event.id === sentinel.id));
    expect(joins.map((event) => event.id)).toEqual([sentinel.id]);
    expect(await presentIds(room.id)).not.toContain(user.id);
  });

  describe('a message committed while a join runs, after it read the room', () => {
    /** Joins, posting a message once the join has read the room's last seq; the join's answer. */
    const joinPastAMessage = async <T>(
      room: { id: string },
      hold: [object, string],
      join: () => Promise<T>,
    ): Promise<T> => {
      const [service, method] = hold;
      const held = holdNextCall(service, method as never, { after: true });
      const answer = join();
      await held.started;
      await postMessage(t.url, owner, room.id, 'while joining');
      held.release();
      return answer;
    };
    const roomRead = (): [object, string] => [t.app.get(RoomsService), 'findAccessible'];
    const presenceEntered = (): [object, string] => [t.app.get(PresenceService), 'enter'];
    const cases = [
      ['no one here is in', roomRead],
      ['followed here already', presenceEntered],
    ] as const;

    /** A room, with a member of it here already when the join is held once followed. */
    const roomFor = async (hold: () => [object, string]) => {
      const room = await createRoom(t.url, owner);
      if (hold === presenceEntered) {
        const follower = await sockets.connect(owner);
        await emitOk(follower, 'chat:join', { roomId: room.id });
      }
      return room;
    };

    it.each(cases)('is counted in a Socket.IO join’s last seq, in a room %s', async (_, hold) => {
      const room = await roomFor(hold);
      const joiner = await registerUser(t.url);
      const socket = await sockets.connect(joiner);
      const joined = await joinPastAMessage(room, hold(), () =>
        emitOk<JoinResult>(socket, 'chat:join', { roomId: room.id }),
      );
      expect(joined.room.lastSeq).toBe(1);
      const next = nextEvent<{ seq: number }>(socket, 'chat:message');
      await postMessage(t.url, owner, room.id, 'after');
      expect(await next).toMatchObject({ seq: 2 });
    });

    it('is counted in a Socket.IO join’s last seq when the one follower here left meanwhile', async () => {
      const room = await createRoom(t.url, owner);
      const follower = await sockets.connect(owner);
      await emitOk(follower, 'chat:join', { roomId: room.id });
      const socket = await sockets.connect(await registerUser(t.url));
      const held = holdNextCall(t.app.get(RoomsService), 'findAccessible', { after: true });
      const joining = emitOk<JoinResult>(socket, 'chat:join', { roomId: room.id });
      await held.started;
      const heard = nextEvent<{ seq: number }>(follower, 'chat:message');
      await postMessage(t.url, owner, room.id, 'while joining');
      await heard;
      await emitOk(follower, 'chat:leave', { roomId: room.id });
      held.release();

      expect((await joining).room.lastSeq).toBe(1);
      const received = collect<{ seq: number }>(socket, 'chat:message');
      await postMessage(t.url, owner, room.id, 'after');
      await eventually(() => received.length > 0);
      expect(received.map((message) => message.seq)).toEqual([2]);
    });

    it.each(cases)('is counted in a /ws join’s last seq, in a room %s', async (_, hold) => {
      const room = await roomFor(hold);
      const joiner = await registerUser(t.url);
      const client = await RawClient.connect(t.url, joiner.token);
      try {
        const joined = await joinPastAMessage(room, hold(), () =>
          client.request({ type: 'join', room: room.id }, 'joined'),
        );
        expect(joined).toEqual({ type: 'joined', room: room.id, lastSeq: 1 });
        await postMessage(t.url, owner, room.id, 'after');
        const next = await client.next((frame) => frame.type === 'chat:message');
        expect(next).toMatchObject({ message: { seq: 2 } });
      } finally {
        client.close();
      }
    });
  });

  describe('a message stored before a join, still on its way to this node', () => {
    /** A room followed here, and a message of it stored but not yet handed to this node's connections. */
    const roomWithMessageInFlight = async () => {
      const room = await createRoom(t.url, owner);
      const follower = await sockets.connect(owner);
      await emitOk(follower, 'chat:join', { roomId: room.id });
      const held = holdNextCall(t.app.get(DeliveryService), 'messageCreated');
      await postMessage(t.url, owner, room.id, 'in flight');
      await held.started;
      return { room, release: held.release };
    };

    it('is counted in a Socket.IO join’s last seq, and does not come again live', async () => {
      const { room, release } = await roomWithMessageInFlight();
      const socket = await sockets.connect(await registerUser(t.url));
      const received = collect<{ seq: number }>(socket, 'chat:message');
      const joined = await emitOk<JoinResult>(socket, 'chat:join', { roomId: room.id });
      expect(joined.room.lastSeq).toBe(1);
      release();
      const next = nextEvent<{ seq: number }>(socket, 'chat:message');
      await postMessage(t.url, owner, room.id, 'after');
      await next;
      expect(received.map((message) => message.seq)).toEqual([2]);
    });

    it('does not come live after a rejoin failed, to a socket whose join counted it', async () => {
      const { room, release } = await roomWithMessageInFlight();
      const socket = await sockets.connect(await registerUser(t.url));
      const received = collect<{ seq: number }>(socket, 'chat:message');
      const joined = await emitOk<JoinResult>(socket, 'chat:join', { roomId: room.id });
      expect(joined.room.lastSeq).toBe(1);
      jest
        .spyOn(t.app.get(RoomsService), 'listMembers')
        .mockRejectedValueOnce(new Error('members unreadable'));
      expect(await emitAck(socket, 'chat:join', { roomId: room.id })).toMatchObject({
        ok: false,
        error: { code: 'INTERNAL' },
      });

      release();
      const next = nextEvent<{ seq: number }>(socket, 'chat:message');
      await postMessage(t.url, owner, room.id, 'after');
      await next;
      expect(received.map((message) => message.seq)).toEqual([2]);
    });

    it('is counted in a /ws join’s last seq, and does not come again live', async () => {
      const { room, release } = await roomWithMessageInFlight();
      const joiner = await registerUser(t.url);
      const client = await RawClient.connect(t.url, joiner.token);
      try {
        const joined = await client.request({ type: 'join', room: room.id }, 'joined');
        expect(joined).toEqual({ type: 'joined', room: room.id, lastSeq: 1 });
        release();
        await postMessage(t.url, owner, room.id, 'after');
        const next = await client.next((frame) => frame.type === 'chat:message');
        expect(next).toMatchObject({ message: { seq: 2 } });
        expect(client.frames.filter((frame) => frame.type === 'chat:message')).toEqual([]);
      } finally {
        client.close();
      }
    });

    it('still reaches a Socket.IO socket that joins again without since, having been in the room all along', async () => {
      const room = await createRoom(t.url, owner);
      const member = await registerUser(t.url);
      const socket = await sockets.connect(member);
      const received = collect<{ seq: number }>(socket, 'chat:message');
      await emitOk(socket, 'chat:join', { roomId: room.id });
      const held = holdNextCall(t.app.get(DeliveryService), 'messageCreated');
      await postMessage(t.url, owner, room.id, 'in flight');
      await held.started;
      // The message reaches this node while the second join is still reading the members.
      const joinReading = holdNextCall(t.app.get(RoomsService), 'listMembers');
      const order: string[] = [];
      socket.on('chat:message', () => order.push('message'));
      try {
        // The ack's own callback: a promise on it would settle after a message in the same chunk.
        const joining = new Promise<JoinResult>((resolve, reject) =>
          socket.emit('chat:join', { roomId: room.id }, (ack) => {
            order.push('ack');
            if (ack.ok) resolve(ack.data);
            else reject(new Error(ack.error.message));
          }),
        );
        await joinReading.started;
        held.release();
        // Handed to the socket's fence by now: the live delivery runs within the held call.
        await held.finished;
        joinReading.release();
        // Where its live stream stands: the message on its way is still to come, after the ack.
        expect(await joining).toMatchObject({ room: { lastSeq: 0 }, missed: [] });
      } finally {
        held.release();
        joinReading.release();
      }
      await eventually(() => received.length === 1);
      expect(order).toEqual(['ack', 'message']);
      await postMessage(t.url, owner, room.id, 'after');
      await eventually(() => received.length === 2);
      expect(received.map((message) => message.seq)).toEqual([1, 2]);
    });

    it('still reaches a /ws connection that joins again, having been in the room all along', async () => {
      const room = await createRoom(t.url, owner);
      const member = await registerUser(t.url);
      const client = await RawClient.connect(t.url, member.token);
      try {
        await client.request({ type: 'join', room: room.id }, 'joined');
        const held = holdNextCall(t.app.get(DeliveryService), 'messageCreated');
        await postMessage(t.url, owner, room.id, 'in flight');
        await held.started;
        try {
          const again = await client.request({ type: 'join', room: room.id }, 'joined');
          expect(again).toEqual({ type: 'joined', room: room.id, lastSeq: 0 });
        } finally {
          held.release();
        }
        await postMessage(t.url, owner, room.id, 'after');
        const seqs: number[] = [];
        for (let count = 0; count < 2; count += 1) {
          const frame = await client.next((next) => next.type === 'chat:message');
          seqs.push((frame.message as { seq: number }).seq);
        }
        expect(seqs).toEqual([1, 2]);
      } finally {
        client.close();
      }
    });

    it('is counted in a rejoin’s position, and does not come again live', async () => {
      const { room, release } = await roomWithMessageInFlight();
      const socket = await sockets.connect(await registerUser(t.url));
      const received = collect<{ seq: number }>(socket, 'chat:message');
      const joined = await emitOk<JoinResult>(socket, 'chat:join', { roomId: room.id, since: 1 });
      expect(joined).toMatchObject({ room: { lastSeq: 1 }, missed: [] });
      release();
      const next = nextEvent<{ seq: number }>(socket, 'chat:message');
      await postMessage(t.url, owner, room.id, 'after');
      await next;
      expect(received.map((message) => message.seq)).toEqual([2]);
    });
  });

  it('tells a /ws client the room’s last seq when it joins', async () => {
    const room = await createRoom(t.url, owner);
    await postMessage(t.url, owner, room.id, 'one');
    const client = await RawClient.connect(t.url, owner.token);
    try {
      expect(await client.request({ type: 'join', room: room.id }, 'joined')).toEqual({
        type: 'joined',
        room: room.id,
        lastSeq: 1,
      });
    } finally {
      client.close();
    }
  });
});
