import type { MessageJson, RoomJson } from '@app/contract/models';
import { DeliveryService } from '@app/delivery/delivery.service';
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
import { holdDeliveries, holdNextCall } from '../support/hold';
import { sleep } from '../support/sockets';
import { openSse, type SseConnection } from '../support/sse';
import { startTestApp, type TestApp } from '../support/test-app';

const ENDED_WITHIN_MS = 5_000;

/** Whether the server ends the stream within `ms`. */
const endsWithin = (connection: SseConnection, ms: number) =>
  Promise.race([connection.closed.then(() => true), sleep(ms).then(() => false)]);

/** The stream's last event, which tells why the server ended it. */
const endedWith = (connection: SseConnection, code: string, message: string) =>
  expect(connection.received.at(-1)).toEqual({
    event: 'closed',
    data: JSON.stringify({ code, message, details: [] }),
  });

/**
 * The effects are published here directly through DeliveryService, as the
 * REST routes that publish them do, so that only the SSE side is under test.
 */
describe.each(databaseKinds())('SSE streams when access ends (%s)', (kind) => {
  let t: TestApp;
  let owner: TestUser;
  const open: SseConnection[] = [];

  beforeAll(async () => {
    t = await startTestApp(kind);
    owner = await registerUser(t.url);
  });
  afterEach(() => open.splice(0).forEach((connection) => connection.close()));
  afterAll(() => t.close());

  const stream = async (path: string, user: TestUser) => {
    const query = path.includes('?') ? '&' : '?';
    const connection = await openSse(`${t.url}${path}${query}token=${user.token}`);
    open.push(connection);
    return connection;
  };

  const streamOk = async (path: string, user: TestUser) => {
    const connection = await stream(path, user);
    expect(connection.status).toBe(200);
    return connection;
  };

  const privateRoomWith = async (...members: TestUser[]) => {
    const room = await createRoom(t.url, owner, { isPrivate: true });
    for (const member of members) {
      await addMember(t.url, owner, room.id, member.id);
    }
    return room;
  };

  const receives = async (connection: SseConnection, message: MessageJson) => {
    const event = await connection.next((e) => e.id === String(message.seq));
    expect(JSON.parse(event.data)).toEqual(message);
  };

  const delivery = () => t.app.get(DeliveryService);
  const by = () => ({ id: owner.id, username: owner.username });

  it("ends a removed member's streams of that room, after telling their personal stream, and nothing else", async () => {
    const [bob, carol] = await Promise.all([registerUser(t.url), registerUser(t.url)]);
    const left: RoomJson = await privateRoomWith(bob, carol);
    const kept = await privateRoomWith(bob);
    const bobPersonal = await streamOk('/api/events', bob);
    const bobLeft = await streamOk(`/api/rooms/${left.id}/events`, bob);
    const bobLeftAgain = await streamOk(`/api/rooms/${left.id}/events`, bob);
    const bobKept = await streamOk(`/api/rooms/${kept.id}/events`, bob);
    const carolLeft = await streamOk(`/api/rooms/${left.id}/events`, carol);

    await t.app.get(RoomsService).removeMember(left.id, bob.id);
    delivery().membershipEnded(bob.id, left, by());

    const notified = await bobPersonal.next((e) => e.event === 'notification');
    expect(JSON.parse(notified.data)).toEqual({ type: 'room:removed', room: left, by: by() });
    for (const connection of [bobLeft, bobLeftAgain]) {
      expect(await endsWithin(connection, ENDED_WITHIN_MS)).toBe(true);
      endedWith(connection, 'NOT_FOUND', 'Room not found');
    }
    // What EventSource meets when it reconnects.
    expect((await stream(`/api/rooms/${left.id}/events`, bob)).status).toBe(404);

    await receives(carolLeft, await postMessage(t.url, owner, left.id, 'still here'));
    const mention = await postMessage(t.url, owner, kept.id, `still yours @${bob.username}`);
    await receives(bobKept, mention);
    const mentioned = await bobPersonal.next((e) => e.event === 'notification');
    expect(JSON.parse(mentioned.data)).toEqual({ type: 'mention', message: mention });
  });

  it("keeps a removed member's stream of a public room, which anyone may read", async () => {
    const bob = await registerUser(t.url);
    const room = await createRoom(t.url, owner);
    await addMember(t.url, bob, room.id, bob.id);
    const bobPersonal = await streamOk('/api/events', bob);
    const bobRoom = await streamOk(`/api/rooms/${room.id}/events`, bob);

    await t.app.get(RoomsService).removeMember(room.id, bob.id);
    delivery().membershipEnded(bob.id, room, by());

    await bobPersonal.next((e) => e.event === 'notification');
    await receives(bobRoom, await postMessage(t.url, owner, room.id, 'still readable'));
    expect(bobRoom.received.some((e) => e.event === 'closed')).toBe(false);
  });

  it("ends every stream of a closed account, personal and room, and no one else's", async () => {
    const [bob, carol] = await Promise.all([registerUser(t.url), registerUser(t.url)]);
    const room = await privateRoomWith(bob, carol);
    const publicRoom = await createRoom(t.url, owner);
    const bobStreams = [
      await streamOk('/api/events', bob),
      await streamOk(`/api/rooms/${room.id}/events`, bob),
      await streamOk(`/api/rooms/${publicRoom.id}/events`, bob),
    ];
    const carolPersonal = await streamOk('/api/events', carol);
    const carolRoom = await streamOk(`/api/rooms/${room.id}/events`, carol);

    delivery().accountClosed(bob.id);

    for (const connection of bobStreams) {
      expect(await endsWithin(connection, ENDED_WITHIN_MS)).toBe(true);
      endedWith(connection, 'UNAUTHORIZED', 'Account deleted');
    }
    await receives(carolRoom, await postMessage(t.url, owner, room.id, 'still here'));
    expect(await endsWithin(carolPersonal, 100)).toBe(false);
  });
  it('replays nothing read after a removal a resync holds back, and ends the stream once it goes out', async () => {
    const member = await registerUser(t.url);
    const room = await privateRoomWith(member);
    await postMessage(t.url, owner, room.id, 'before');
    const reading = holdNextCall(t.app.get(MessagesService), 'page');
    const replaying = await streamOk(`/api/rooms/${room.id}/events?since=0`, member);
    await reading.started;

    const endResync = holdDeliveries(delivery());
    // Removed elsewhere: this node has seen the removal, and holds its effect back.
    await t.app.get(RoomsService).removeMember(room.id, member.id);
    delivery().membershipEnded(member.id, room, by());
    await postMessage(t.url, owner, room.id, 'after the removal');
    reading.release();
    await reading.finished;
    await sleep(200);
    expect(replaying.received.filter((e) => e.event === 'chat:message')).toEqual([]);

    endResync();
    expect(await endsWithin(replaying, ENDED_WITHIN_MS)).toBe(true);
    endedWith(replaying, 'NOT_FOUND', 'Room not found');
    expect(replaying.received.filter((e) => e.event === 'chat:message')).toEqual([]);
  });

  it('refuses a room stream that a removal overtook while it opened', async () => {
    const member = await registerUser(t.url);
    const room = await privateRoomWith(member);
    const lookup = holdNextCall(t.app.get(RoomsService), 'findAccessible', { after: true });

    const opening = stream(`/api/rooms/${room.id}/events`, member);
    await lookup.started;
    await removeMember(t.url, owner, room.id, member.id);
    lookup.release();

    expect((await opening).status).toBe(404);
  });
});
