import { ChatService } from '@app/chat/chat.service';
import { LiveDelivery } from '@app/chat/live-delivery';
import { PresenceService } from '@app/chat/presence.service';
import type { JoinResult } from '@app/contract/socket-events';
import { RawWsGateway } from '@app/raw-ws/raw-ws.gateway';
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
import { holdNextCall } from '../support/hold';
import { RawClient } from '../support/raw-ws';
import {
  collect,
  emitAck,
  emitOk,
  eventually,
  nextEvent,
  sleep,
  socketPool,
} from '../support/sockets';
import { startTestApp, type TestApp } from '../support/test-app';

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
    const lookup = holdNextRoomLookup();
    client.send({ type: 'join', room: room.id });
    await lookup.started;
    client.socket.terminate();
    await eventually(() => gateway.openConnections === before);
    lookup.release();
    await sleep(200);

    expect(await presentIds(room.id)).not.toContain(joiner.id);
    expect(t.app.get(LiveDelivery).deliveredSeq(room.id)).toBeUndefined();
  });

  it('refuses a join to a private room whose member was removed while it ran', async () => {
    const member = await registerUser(t.url);
    const room = await createRoom(t.url, owner, { isPrivate: true });
    await addMember(t.url, owner, room.id, member.id);
    const socket = await sockets.connect(member);
    const entering = holdNextCall(t.app.get(PresenceService), 'enter');

    const joined = emitAck(socket, 'chat:join', { roomId: room.id });
    await entering.started;
    await removeMember(t.url, owner, room.id, member.id);
    entering.release();

    expect(await joined).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    expect(await presentIds(room.id)).not.toContain(member.id);
    const ownerSocket = await sockets.connect(owner);
    await emitOk(ownerSocket, 'chat:join', room.id);
    const memberGets = collect(socket, 'chat:message');
    const ownerGets = nextEvent<{ text: string }>(ownerSocket, 'chat:message');
    await postMessage(t.url, owner, room.id, 'members only');
    // Delivered to the room (the owner has it); a round trip on the member's socket then
    // comes back behind anything the server sent it before.
    expect(await ownerGets).toMatchObject({ text: 'members only' });
    await emitAck(socket, 'room:presence', { roomId: room.id });
    expect(memberGets).toEqual([]);
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
