import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import type { MessageJson, NotificationJson } from '@app/contract/models';
import { membershipEndedDelivery } from '@app/delivery/delivery.service';
import { RedisService } from '@app/redis/redis.service';
import { AccessAudit } from '@app/rooms/access-audit.service';
import { RoomMember } from '@app/rooms/room-member.entity';
import { RoomsService } from '@app/rooms/rooms.service';
import { User } from '@app/users/user.entity';
import { UsersService } from '@app/users/users.service';
import { addMember, createRoom, postMessage, registerUser } from '../support/api';
import { databaseKinds } from '../support/databases';
import { holdNextCall } from '../support/hold';
import { RawClient } from '../support/raw-ws';
import {
  collect,
  connectSocket,
  emitAck,
  emitOk,
  eventually,
  nextEvent,
  sleep,
  type ClientSocket,
} from '../support/sockets';
import { openSse, type SseConnection } from '../support/sse';
import { startTestApp, type TestApp } from '../support/test-app';

/**
 * What a node does once it is back in touch with the others: the database
 * is changed here behind the node's back, as a node out of touch with Redis
 * sees a removal or a deletion made on another, and the audit is run directly.
 */
describe.each(databaseKinds())('access audit after a lost delivery (%s)', (kind) => {
  let t: TestApp;
  const open: Array<ClientSocket | RawClient | SseConnection> = [];

  beforeAll(async () => {
    t = await startTestApp(kind);
  });
  afterEach(() => open.splice(0).forEach((client) => client.close()));
  afterAll(() => t.close());

  const track = <T extends ClientSocket | RawClient | SseConnection>(client: T) => {
    open.push(client);
    return client;
  };
  const joinedSocket = async (token: string, roomId: string) => {
    const socket = track(await connectSocket(t.url, token));
    await emitOk(socket, 'chat:join', roomId);
    return socket;
  };
  const database = () => t.app.get(DataSource);

  it('ends, on every transport, what the database no longer allows, and nothing else', async () => {
    const [ada, bob, carol, dan, eve] = await Promise.all(
      Array.from({ length: 5 }, () => registerUser(t.url)),
    );
    const room = await createRoom(t.url, ada, { isPrivate: true });
    const lobby = await createRoom(t.url, ada, { isPrivate: false });
    for (const member of [bob, carol, dan]) await addMember(t.url, ada, room.id, member.id);
    const bobSocket = await joinedSocket(bob.token, room.id);
    const carolSocket = await joinedSocket(carol.token, room.id);
    const danSocket = await joinedSocket(dan.token, room.id);
    const bobWs = track(await RawClient.connect(t.url, bob.token));
    await bobWs.request({ type: 'join', room: room.id }, 'joined');
    const bobSse = track(await openSse(`${t.url}/api/rooms/${room.id}/events?token=${bob.token}`));
    // A public room needs no membership: eve's stream of it stays.
    const eveSse = track(await openSse(`${t.url}/api/rooms/${lobby.id}/events?token=${eve.token}`));
    const bobNotified = nextEvent<NotificationJson>(bobSocket, 'notification');
    const carolGone = new Promise<string>((resolve) => carolSocket.once('disconnect', resolve));
    const danNotified = collect<NotificationJson>(danSocket, 'notification');

    await database().getRepository(RoomMember).delete({ roomId: room.id, userId: bob.id });
    await database().getRepository(User).update({ id: carol.id }, { deletedAt: new Date() });
    await t.app.get(AccessAudit).request();

    const removal = await bobNotified;
    expect(removal).toMatchObject({ type: 'room:removed', room: { id: room.id } });
    expect(removal).not.toHaveProperty('by');
    await bobWs.next((frame) => frame.type === 'left' && frame.room === room.id);
    await bobSse.closed;
    expect(await carolGone).toBe('io server disconnect');

    const bobGets = collect<MessageJson>(bobSocket, 'chat:message');
    const danGets = nextEvent<MessageJson>(danSocket, 'chat:message');
    const after = await postMessage(t.url, ada, room.id, 'after the audit');
    expect((await danGets).id).toBe(after.id);
    await sleep(200);
    expect(bobGets).toEqual([]);
    expect(danNotified).toEqual([]);
    expect(danSocket.connected).toBe(true);
    expect(bobSocket.connected).toBe(true);
    await postMessage(t.url, ada, lobby.id, 'still open');
    await eveSse.next((event) => event.event === 'chat:message');
  });

  it('refuses at once the next send of a member it found removed', async () => {
    const [ada, bob] = await Promise.all([registerUser(t.url), registerUser(t.url)]);
    const room = await createRoom(t.url, ada, { isPrivate: true });
    await addMember(t.url, ada, room.id, bob.id);
    const bobSocket = await joinedSocket(bob.token, room.id);
    // The membership is now cached on this node.
    await emitOk(bobSocket, 'chat:message', { roomId: room.id, text: 'before' });

    await database().getRepository(RoomMember).delete({ roomId: room.id, userId: bob.id });
    await t.app.get(AccessAudit).request();

    const refused = await emitAck(bobSocket, 'chat:message', { roomId: room.id, text: 'after' });
    expect(refused).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
  });

  it('ends nothing when every access still holds', async () => {
    const [ada, bob] = await Promise.all([registerUser(t.url), registerUser(t.url)]);
    const room = await createRoom(t.url, ada, { isPrivate: true });
    await addMember(t.url, ada, room.id, bob.id);
    const bobSocket = await joinedSocket(bob.token, room.id);
    const notified = collect<NotificationJson>(bobSocket, 'notification');

    await t.app.get(AccessAudit).request();

    const bobGets = nextEvent<MessageJson>(bobSocket, 'chat:message');
    await postMessage(t.url, ada, room.id, 'still here');
    await bobGets;
    expect(notified).toEqual([]);
  });

  it('finds lost memberships among more pairs than one query may name', async () => {
    const [ada, bob] = await Promise.all([registerUser(t.url), registerUser(t.url)]);
    const room = await createRoom(t.url, ada, { isPrivate: true });
    await addMember(t.url, ada, room.id, bob.id);
    const strangers = Array.from({ length: 2_500 }, () => randomUUID());
    const held = [ada.id, bob.id, ...strangers].map((userId) => ({ userId, roomId: room.id }));

    const lost = await t.app.get(RoomsService).privateAccessLostAmong(held);

    expect(lost.map(({ userId }) => userId).sort()).toEqual([...strangers].sort());
    expect(lost.every(({ room: found }) => found.id === room.id)).toBe(true);
  });

  it('tries again, until it succeeds, an audit the database failed', async () => {
    const [ada, bob] = await Promise.all([registerUser(t.url), registerUser(t.url)]);
    const room = await createRoom(t.url, ada, { isPrivate: true });
    await addMember(t.url, ada, room.id, bob.id);
    const bobSocket = await joinedSocket(bob.token, room.id);
    const bobNotified = nextEvent<NotificationJson>(bobSocket, 'notification');
    await database().getRepository(RoomMember).delete({ roomId: room.id, userId: bob.id });
    const users = t.app.get(UsersService);
    const goneAmong = jest
      .spyOn(users, 'goneAmong')
      .mockRejectedValueOnce(new Error('the database is away'));
    try {
      await t.app.get(AccessAudit).request();

      expect(goneAmong).toHaveBeenCalledTimes(2);
      expect(await bobNotified).toMatchObject({ type: 'room:removed', room: { id: room.id } });
    } finally {
      goneAmong.mockRestore();
    }
  });
});

/** With Redis: the deliveries of another node, and its request to resync, come over the bus. */
describe('access audit on a node of several', () => {
  let t: TestApp;
  const open: ClientSocket[] = [];
  const otherNode = randomUUID();

  beforeAll(async () => {
    t = await startTestApp('sqlite', {
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      REDIS_KEY_PREFIX: `audit-${randomUUID()}:`,
    });
  });
  afterEach(() => open.splice(0).forEach((client) => client.close()));
  afterAll(() => t.close());

  /** What another node would publish on the delivery channel. */
  const fromOtherNode = (envelope: object) => {
    const redis = t.app.get(RedisService);
    return redis.client.publish(
      redis.key('delivery'),
      JSON.stringify({ node: otherNode, ...envelope }),
    );
  };

  it('tells a member removed during its audits once, as the removal says, not twice', async () => {
    const [ada, bob] = await Promise.all([registerUser(t.url), registerUser(t.url)]);
    const room = await createRoom(t.url, ada, { isPrivate: true });
    await addMember(t.url, ada, room.id, bob.id);
    const bobSocket = await connectSocket(t.url, bob.token);
    open.push(bobSocket);
    await emitOk(bobSocket, 'chat:join', room.id);
    const notified = collect<NotificationJson>(bobSocket, 'notification');
    const audit = holdNextCall(t.app.get(UsersService), 'goneAmong');
    // The spy holdNextCall set up, which counts each audit once.
    const audits = jest.spyOn(t.app.get(UsersService), 'goneAmong');

    // The removal, made on the other node while this one was out of touch, is in the database.
    await t.app
      .get(DataSource)
      .getRepository(RoomMember)
      .delete({ roomId: room.id, userId: bob.id });
    const askToResync = () =>
      fromOtherNode({
        resync: true,
        delivery: { channel: 'resync', event: 'notification', payload: null },
      });
    await askToResync();
    await audit.started;
    // Several nodes ask after a blip: a second audit follows the first.
    await askToResync();
    await fromOtherNode({
      delivery: membershipEndedDelivery(bob.id, room, { id: ada.id, username: ada.username }),
    });
    await sleep(100);
    audit.release();

    await eventually(() => notified.length > 0);
    // Both audits have run to their end, and what they said has been acted on.
    await eventually(() => audits.mock.results.length === 2);
    await Promise.allSettled(audits.mock.results.map((result) => result.value));
    await sleep(100);
    expect(notified).toEqual([
      {
        type: 'room:removed',
        room: expect.objectContaining({ id: room.id }),
        by: { id: ada.id, username: ada.username },
      },
    ]);
  });
});
