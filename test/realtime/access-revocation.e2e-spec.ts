import request from 'supertest';
import type { MessageJson, NotificationJson } from '@app/contract/models';
import type { PresenceResult, RoomUserEvent } from '@app/contract/socket-events';
import { ChatService } from '@app/chat/chat.service';
import { PresenceService } from '@app/chat/presence.service';
import type { ErrorBody } from '@app/common/errors/error-body';
import { ConnectionTracker } from '@app/realtime/connection-tracker';
import { RoomsService } from '@app/rooms/rooms.service';
import { TransactionRunner } from '@app/database/transaction-runner';
import { User } from '@app/users/user.entity';
import { UsersService } from '@app/users/users.service';
import { EventStreamSlots } from '@app/sse/event-stream-slots';
import {
  addMember,
  createRoom,
  postMessage,
  registerUser,
  removeMember,
  type TestUser,
} from '../support/api';
import { databaseKinds } from '../support/databases';
import { holdNextCall, type HeldCall } from '../support/hold';
import { loggedFailure } from '../support/logged-failure';
import { RawClient } from '../support/raw-ws';
import {
  collect,
  connectSocket,
  emitAck,
  emitOk,
  nextEvent,
  sleep,
  socketPool,
  type ClientSocket,
} from '../support/sockets';
import { openSse } from '../support/sse';
import { startTestApp, type TestApp } from '../support/test-app';

describe.each(databaseKinds())('Access ends on live connections (%s)', (kind) => {
  let t: TestApp;
  let owner: TestUser;
  const sockets = socketPool(() => t.url);
  const rawClients: RawClient[] = [];

  beforeAll(async () => {
    t = await startTestApp(kind);
    owner = await registerUser(t.url);
  });
  afterEach(() => {
    sockets.closeAll();
    rawClients.splice(0).forEach((client) => client.close());
  });
  afterAll(() => t.close());

  const rawClient = async (user: TestUser) => {
    const client = await RawClient.connect(t.url, user.token);
    rawClients.push(client);
    return client;
  };

  /** The owner's socket in the room: it sees what the room sees. */
  const ownerIn = async (roomId: string) => {
    const socket = await sockets.connect(owner);
    await emitOk(socket, 'chat:join', { roomId });
    return socket;
  };

  /** Posts a message and waits until the owner's socket has it, so that everyone else had the chance. */
  const postAndSettle = async (ownerSocket: ClientSocket, roomId: string, text: string) => {
    const seen = nextEvent<MessageJson>(ownerSocket, 'chat:message');
    await postMessage(t.url, owner, roomId, text);
    await seen;
    await sleep(100);
  };

  /**
   * The member's Socket.IO join of the room, `held` at a step of it while the
   * owner removes them, then let go once the removal has reached the socket.
   */
  const joinOvertakenByRemoval = async (roomId: string, member: TestUser, held: HeldCall) => {
    const socket = await sockets.connect(member);
    const notified = nextEvent<NotificationJson>(socket, 'notification');
    const joining = emitAck(socket, 'chat:join', { roomId });
    await held.started;
    await removeMember(t.url, owner, roomId, member.id);
    expect(await notified).toMatchObject({ type: 'room:removed', room: { id: roomId } });
    held.release();
    return { socket, joining };
  };

  it('refuses a Socket.IO join during which its user was removed from the room', async () => {
    const room = await createRoom(t.url, owner, { isPrivate: true });
    const member = await registerUser(t.url);
    await addMember(t.url, owner, room.id, member.id);
    // The join has entered the room and reads its members when the removal comes.
    const reading = holdNextCall(t.app.get(RoomsService), 'listMembers');
    const { socket, joining } = await joinOvertakenByRemoval(room.id, member, reading);

    expect(await joining).toEqual({
      ok: false,
      error: { code: 'NOT_FOUND', message: 'Room not found', details: [] },
    });
    const received = collect<MessageJson>(socket, 'chat:message');
    await postAndSettle(await ownerIn(room.id), room.id, 'after the removal');
    expect(received).toEqual([]);
  });

  it('refuses a Socket.IO join of a public room during which its user was removed, with CONFLICT', async () => {
    const room = await createRoom(t.url, owner);
    const member = await registerUser(t.url);
    // The join has made them a member and is entering presence when the removal comes.
    const entering = holdNextCall(t.app.get(PresenceService), 'enter');
    const { socket, joining } = await joinOvertakenByRemoval(room.id, member, entering);

    expect(await joining).toEqual({
      ok: false,
      error: { code: 'CONFLICT', message: expect.any(String), details: [] },
    });
    const ownerSocket = await ownerIn(room.id);
    const present = await emitOk<PresenceResult>(ownerSocket, 'room:presence', { roomId: room.id });
    expect(present.users.map((user) => user.id)).toEqual([owner.id]);
    const received = collect<MessageJson>(socket, 'chat:message');
    await postAndSettle(ownerSocket, room.id, 'after the removal');
    expect(received).toEqual([]);

    // Joining again brings them back.
    await emitOk(socket, 'chat:join', { roomId: room.id });
    const back = nextEvent<MessageJson>(socket, 'chat:message');
    await postMessage(t.url, owner, room.id, 'welcome back');
    expect(await back).toMatchObject({ text: 'welcome back' });
  });

  /** A private room of the owner's, with the owner's socket in it and a member's joined. */
  const memberJoinedPrivateRoom = async () => {
    const member = await registerUser(t.url);
    const room = await createRoom(t.url, owner, { isPrivate: true });
    await addMember(t.url, owner, room.id, member.id);
    const ownerSocket = await ownerIn(room.id);
    const memberSocket = await sockets.connect(member);
    await emitOk(memberSocket, 'chat:join', { roomId: room.id });
    return { member, room, ownerSocket, memberSocket };
  };

  it('takes a member out whose removal committed but whose answer was lost', async () => {
    const { member, room, ownerSocket, memberSocket } = await memberJoinedPrivateRoom();
    const memberGets = collect<MessageJson>(memberSocket, 'chat:message');
    const notified = nextEvent<NotificationJson>(memberSocket, 'notification');
    const rooms = t.app.get(RoomsService);
    const removeMember = rooms.removeMember.bind(rooms);
    const lostAnswer = jest.spyOn(rooms, 'removeMember').mockImplementationOnce(async (...args) => {
      await removeMember(...args);
      throw new Error('Connection terminated unexpectedly');
    });

    const answer = await request(t.url)
      .delete(`/api/rooms/${room.id}/members/${member.id}`)
      .set('Authorization', `Bearer ${owner.token}`);
    lostAnswer.mockRestore();
    expect(answer.status).toBe(503);

    expect(await notified).toMatchObject({ type: 'room:removed', room: { id: room.id } });
    await postAndSettle(ownerSocket, room.id, 'after the removal');
    expect(memberGets).toEqual([]);
  });

  it('takes a member removed from a private room out of it on Socket.IO and /ws, and tells them', async () => {
    const { member, room, ownerSocket, memberSocket } = await memberJoinedPrivateRoom();
    const memberWs = await rawClient(member);
    await memberWs.request({ type: 'join', room: room.id }, 'joined');
    const memberGets = collect<MessageJson>(memberSocket, 'chat:message');
    const notified = nextEvent<NotificationJson>(memberSocket, 'notification');
    const userLeft = nextEvent<RoomUserEvent>(ownerSocket, 'chat:userLeft');

    await removeMember(t.url, owner, room.id, member.id);

    const removal = {
      type: 'room:removed',
      room: expect.objectContaining({ id: room.id, isPrivate: true }),
      by: { id: owner.id, username: owner.username },
    };
    expect(await notified).toEqual(removal);
    expect(await memberWs.next((frame) => frame.type === 'notification')).toEqual({
      type: 'notification',
      notification: removal,
    });
    expect(await memberWs.next((frame) => frame.type === 'left')).toEqual({
      type: 'left',
      room: room.id,
    });
    expect(await userLeft).toEqual({
      roomId: room.id,
      user: { id: member.id, username: member.username },
    });

    await postAndSettle(ownerSocket, room.id, 'after the removal');
    expect(memberGets).toEqual([]);
    expect(memberWs.frames.filter((frame) => frame.type === 'chat:message')).toEqual([]);
    const presence = await emitOk<{ users: Array<{ id: string }> }>(ownerSocket, 'room:presence', {
      roomId: room.id,
    });
    expect(presence.users.map((user) => user.id)).toEqual([owner.id]);
    const send = await emitAck(memberSocket, 'chat:message', { roomId: room.id, text: 'still?' });
    expect(send).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
  });

  it('logs a failure to leave a room a Socket.IO user lost, rather than end the process; delivery stops all the same', async () => {
    const { member, room, ownerSocket, memberSocket } = await memberJoinedPrivateRoom();
    const memberGets = collect<MessageJson>(memberSocket, 'chat:message');
    const leave = jest
      .spyOn(t.app.get(ChatService), 'leave')
      .mockRejectedValueOnce(new Error('presence store gone'));
    try {
      const { logged, unhandled } = await loggedFailure(() =>
        removeMember(t.url, owner, room.id, member.id),
      );
      expect(unhandled).toEqual([]);
      expect(logged[0]).toContain('presence store gone');
    } finally {
      leave.mockRestore();
    }
    await postAndSettle(ownerSocket, room.id, 'after the removal');
    expect(memberGets).toEqual([]);
  });

  it('takes a member who leaves a public room over REST out of it on every connection; they may join again', async () => {
    const member = await registerUser(t.url);
    const room = await createRoom(t.url, owner);
    const ownerSocket = await ownerIn(room.id);
    const phone = await sockets.connect(member);
    const laptop = await sockets.connect(member);
    await emitOk(phone, 'chat:join', { roomId: room.id });
    await emitOk(laptop, 'chat:join', { roomId: room.id });
    const phoneGets = collect<MessageJson>(phone, 'chat:message');
    const laptopGets = collect<MessageJson>(laptop, 'chat:message');
    const notified = nextEvent<NotificationJson>(laptop, 'notification');

    await removeMember(t.url, member, room.id, member.id);

    expect(await notified).toMatchObject({ type: 'room:removed', room: { id: room.id } });
    await postAndSettle(ownerSocket, room.id, 'after leaving');
    expect([...phoneGets, ...laptopGets]).toEqual([]);

    await emitOk(phone, 'chat:join', { roomId: room.id });
    await postAndSettle(ownerSocket, room.id, 'after joining again');
    expect(phoneGets.map((message) => message.text)).toEqual(['after joining again']);
  });

  it('leaves the member’s other rooms and other users alone', async () => {
    const member = await registerUser(t.url);
    const bystander = await registerUser(t.url);
    const [left, kept] = [await createRoom(t.url, owner), await createRoom(t.url, owner)];
    const ownerSocket = await ownerIn(left.id);
    const memberSocket = await sockets.connect(member);
    const bystanderSocket = await sockets.connect(bystander);
    for (const roomId of [left.id, kept.id]) await emitOk(memberSocket, 'chat:join', { roomId });
    await emitOk(bystanderSocket, 'chat:join', { roomId: left.id });
    const notified = nextEvent(memberSocket, 'notification');

    await removeMember(t.url, owner, left.id, member.id);
    await notified;

    const bystanderGets = nextEvent<MessageJson>(bystanderSocket, 'chat:message');
    await postAndSettle(ownerSocket, left.id, 'to the bystander');
    expect((await bystanderGets).text).toBe('to the bystander');
    const memberGets = nextEvent<MessageJson>(memberSocket, 'chat:message');
    await postMessage(t.url, owner, kept.id, 'in the kept room');
    expect((await memberGets).roomId).toBe(kept.id);
  });

  it('closes every live connection of a deleted account, telling it why', async () => {
    const leaving = await registerUser(t.url);
    const socket = await sockets.connect(leaving);
    const ws = await rawClient(leaving);
    const told = nextEvent<ErrorBody>(socket, 'error');
    const disconnected = new Promise<string>((resolve) => socket.once('disconnect', resolve));

    await request(t.url)
      .delete('/api/auth/me')
      .set('Authorization', `Bearer ${leaving.token}`)
      .expect(204);

    expect(await told).toEqual({ code: 'UNAUTHORIZED', message: 'Account deleted', details: [] });
    expect(await disconnected).toBe('io server disconnect');
    expect(await ws.next((frame) => frame.type === 'error')).toEqual({
      type: 'error',
      code: 'UNAUTHORIZED',
      message: 'Account deleted',
      details: [],
    });
    expect(await ws.closed).toEqual({ code: 4001, reason: 'Unauthorized' });
  });

  it('closes them also when the deletion was committed but its answer lost', async () => {
    const leaving = await registerUser(t.url);
    const socket = await sockets.connect(leaving);
    const told = nextEvent<ErrorBody>(socket, 'error');
    const users = t.app.get(UsersService);
    const transactions = t.app.get(TransactionRunner);
    const write = transactions.write.bind(transactions);
    // The write that marks the account deleted commits, then its answer is lost.
    const lostAnswer = jest.spyOn(transactions, 'write').mockImplementation(async (work) => {
      const result = await write(work);
      if ((await users.findActiveById(leaving.id)) === null)
        throw new Error('Connection terminated unexpectedly');
      return result;
    });
    try {
      const answer = await request(t.url)
        .delete('/api/auth/me')
        .set('Authorization', `Bearer ${leaving.token}`);
      expect(answer.status).toBeGreaterThanOrEqual(500);
    } finally {
      lostAnswer.mockRestore();
    }

    expect(await told).toEqual({ code: 'UNAUTHORIZED', message: 'Account deleted', details: [] });
  });

  it('closes them when the account’s token is seen again, if its deletion never told them', async () => {
    const leaving = await registerUser(t.url);
    const socket = await sockets.connect(leaving);
    const told = nextEvent<ErrorBody>(socket, 'error');
    // Deleted behind the service's back: a node that crashed between the commit and the closure.
    await t.app
      .get(TransactionRunner)
      .write((manager) => manager.update(User, { id: leaving.id }, { deletedAt: new Date() }));
    expect(socket.connected).toBe(true);

    await request(t.url)
      .get('/api/auth/me')
      .set('Authorization', `Bearer ${leaving.token}`)
      .expect(401);
    expect(await told).toEqual({ code: 'UNAUTHORIZED', message: 'Account deleted', details: [] });
  });

  it('closes them as soon as the deletion is committed, not once its clean-up is done', async () => {
    const leaving = await registerUser(t.url);
    const socket = await sockets.connect(leaving);
    const disconnected = new Promise<string>((resolve) => socket.once('disconnect', resolve));
    const rooms = t.app.get(RoomsService);
    const ownedBy = rooms.ownedBy.bind(rooms);
    let releaseCleanUp!: () => void;
    const cleanUpHeld = new Promise<void>((resolve) => (releaseCleanUp = resolve));
    let calls = 0;
    // The rooms it owns are looked up before the deletion is committed, and again after.
    jest.spyOn(rooms, 'ownedBy').mockImplementation(async (userId) => {
      calls += 1;
      if (calls === 2) await cleanUpHeld;
      return ownedBy(userId);
    });

    const deleting = request(t.url)
      .delete('/api/auth/me')
      .set('Authorization', `Bearer ${leaving.token}`)
      .then((response) => response.status);
    try {
      expect(await disconnected).toBe('io server disconnect');
      expect(calls).toBe(2);
    } finally {
      releaseCleanUp();
      jest.restoreAllMocks();
    }
    expect(await deleting).toBe(204);
  });

  describe('an account deleted while a connection of it is being opened', () => {
    /** The account is deleted while `slots.acquire` of the next connection is held. */
    async function deletedWhileOpening<T>(
      slots: { acquire(userId: string, id: string): Promise<void> },
      user: TestUser,
      open: () => Promise<T>,
    ): Promise<T> {
      const held = holdNextCall(slots, 'acquire');
      const opening = open();
      await held.started;
      await request(t.url)
        .delete('/api/auth/me')
        .set('Authorization', `Bearer ${user.token}`)
        .expect(204);
      held.release();
      return opening;
    }

    it('refuses the Socket.IO connection, as for any bad token', async () => {
      const user = await registerUser(t.url);
      const refused = deletedWhileOpening(t.app.get(ConnectionTracker), user, () =>
        connectSocket(t.url, user.token),
      );
      await expect(refused).rejects.toMatchObject({ data: { code: 'UNAUTHORIZED' } });
    });

    it('closes the /ws connection with 4001', async () => {
      const user = await registerUser(t.url);
      const client = await deletedWhileOpening(t.app.get(ConnectionTracker), user, () =>
        Promise.resolve(RawClient.open(t.url, user.token)),
      );
      rawClients.push(client);
      expect(await client.closed).toEqual({ code: 4001, reason: 'Unauthorized' });
    });

    it('refuses the event stream with 401', async () => {
      const user = await registerUser(t.url);
      const stream = await deletedWhileOpening(t.app.get(EventStreamSlots), user, () =>
        openSse(`${t.url}/api/events?token=${user.token}`),
      );
      stream.close();
      expect(stream.status).toBe(401);
      expect(stream.body).toMatchObject({ code: 'UNAUTHORIZED' });
    });
  });
});
