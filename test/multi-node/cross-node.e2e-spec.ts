import { createClient } from 'redis';
import type { MessageJson, NotificationJson } from '@app/contract/models';
import type { RoomUserEvent } from '@app/contract/socket-events';
import {
  addMember,
  createRoom,
  postMessage,
  registerUser,
  removeMember,
  type TestUser,
} from '../support/api';
import { Cluster, clusterServicesAvailable } from '../support/cluster';
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

const describeCluster = clusterServicesAvailable() ? describe : describe.skip;

describeCluster('three nodes over Redis: every cross-node path', () => {
  let cluster: Cluster;
  let urls: string[];
  const open: Array<ClientSocket | RawClient | SseConnection> = [];

  beforeAll(async () => {
    cluster = await Cluster.start(3, {
      RATE_LIMIT_CHAT_MESSAGE: '30/60s',
      MAX_SOCKETS_PER_USER: '4',
      MAX_SSE_STREAMS_PER_USER: '3',
    });
    urls = cluster.nodes.map((node) => node.url);
  }, 60_000);
  afterEach(() => open.splice(0).forEach((client) => client.close()));
  afterAll(() => cluster?.stop());

  const socketOn = async (node: number, user: TestUser) => {
    const socket = await connectSocket(urls[node], user.token);
    open.push(socket);
    return socket;
  };

  it('carries room traffic, joins, leaves, presence, typing and broadcasts across nodes and transports', async () => {
    const [ada, bob, carol, dan] = await Promise.all(
      [0, 1, 2, 0].map((node) => registerUser(urls[node])),
    );
    const room = await createRoom(urls[0], ada);

    const adaSocket = await socketOn(0, ada);
    await emitOk(adaSocket, 'chat:join', room.id);
    const joined = collect<RoomUserEvent>(adaSocket, 'chat:userJoined');
    const left = collect<RoomUserEvent>(adaSocket, 'chat:userLeft');

    const bobOn1 = await socketOn(1, bob);
    await emitOk(bobOn1, 'chat:join', room.id);
    const bobOn2 = await socketOn(2, bob);
    await emitOk(bobOn2, 'chat:join', room.id);
    const carolWs = await RawClient.connect(urls[2], carol.token);
    open.push(carolWs);
    await carolWs.request({ type: 'join', room: room.id }, 'joined');
    const danSse = await openSse(`${urls[2]}/api/rooms/${room.id}/events?token=${dan.token}`);
    open.push(danSse);

    await eventually(() => joined.length === 2);
    expect(joined.map((event) => event.user.id).sort()).toEqual([bob.id, carol.id].sort());

    const present = await emitOk<{ users: Array<{ id: string }> }>(bobOn2, 'room:presence', {
      roomId: room.id,
    });
    expect(present.users.map((user) => user.id).sort()).toEqual([ada.id, bob.id, carol.id].sort());

    const bobGets = nextEvent<MessageJson>(bobOn1, 'chat:message');
    const message = await emitOk<MessageJson>(adaSocket, 'chat:message', {
      roomId: room.id,
      text: 'across nodes',
    });
    expect(await bobGets).toEqual(message);
    expect(await carolWs.next((f) => f.type === 'chat:message')).toEqual({
      type: 'chat:message',
      room: room.id,
      message,
    });
    expect(JSON.parse((await danSse.next((e) => e.event === 'chat:message')).data)).toEqual(
      message,
    );

    const broadcast = nextEvent(adaSocket, 'room:broadcast');
    carolWs.send({ type: 'broadcast', room: room.id, payload: { hi: 'from node 2' } });
    expect(await broadcast).toEqual({
      roomId: room.id,
      payload: { hi: 'from node 2' },
      from: { id: carol.id, username: carol.username },
    });

    const typing = nextEvent<RoomUserEvent>(bobOn1, 'chat:typing');
    await emitOk(adaSocket, 'chat:typing', { roomId: room.id });
    expect(await typing).toEqual({ roomId: room.id, user: { id: ada.id, username: ada.username } });

    bobOn1.close();
    await sleep(300);
    expect(left).toEqual([]);
    bobOn2.close();
    await eventually(() => left.length === 1);
    // Told once, by one node: no second announcement follows.
    await sleep(300);
    expect(left).toEqual([{ roomId: room.id, user: { id: bob.id, username: bob.username } }]);
  });

  it('makes the nodes one Socket.IO cluster through the Redis adapter', async () => {
    const redis = createClient({ url: process.env.REDIS_URL });
    await redis.connect();
    try {
      // Each node's adapter listens for the others' requests (fetchSockets, disconnects).
      const requests = `${cluster.schema}:socket.io-request#/#`;
      expect(await redis.pubSubNumSub(requests)).toEqual({ [requests]: 3 });
    } finally {
      await redis.close();
    }

    // Typing goes out volatile: a packet may be dropped, so one of a few must come through.
    const [ada, bob] = await Promise.all([registerUser(urls[0]), registerUser(urls[2])]);
    const room = await createRoom(urls[0], ada);
    const adaSocket = await socketOn(0, ada);
    const bobSocket = await socketOn(2, bob);
    for (const socket of [adaSocket, bobSocket]) await emitOk(socket, 'chat:join', room.id);
    const typing = collect<RoomUserEvent>(bobSocket, 'chat:typing');
    for (let tries = 0; tries < 5 && typing.length === 0; tries += 1) {
      await emitOk(adaSocket, 'chat:typing', { roomId: room.id });
      await eventually(() => typing.length > 0, 1_000).catch(() => undefined);
    }
    expect(typing[0]).toEqual({ roomId: room.id, user: { id: ada.id, username: ada.username } });
  });

  it('carries a /ws broadcast to /ws clients of another node as a message frame, not back to the sender', async () => {
    const [ada, bob, carol, dan] = await Promise.all(
      [0, 1, 0, 1].map((node) => registerUser(urls[node])),
    );
    const room = await createRoom(urls[0], ada);
    const rawOn = async (node: number, user: TestUser) => {
      const client = await RawClient.connect(urls[node], user.token);
      open.push(client);
      await client.request({ type: 'join', room: room.id }, 'joined');
      return client;
    };
    const sender = await rawOn(0, ada);
    const sameNode = await rawOn(0, carol);
    const otherNode = await rawOn(1, bob);
    const otherNodeToo = await rawOn(1, dan);
    const isBroadcast = (frame: { type: string }) => frame.type === 'message';
    /**
     * Once a node has delivered to its room, a request answered after that shows whether
     * another copy came to this client: it would come ahead of the answer.
     */
    const noFurtherCopy = async (client: RawClient) => {
      await client.request({ type: 'join', room: room.id }, 'joined');
      expect(client.frames.filter(isBroadcast)).toEqual([]);
    };

    sender.send({ type: 'broadcast', room: room.id, payload: { n: 1, text: 'from node 0' } });
    const expected = { type: 'message', room: room.id, payload: { n: 1, text: 'from node 0' } };
    expect(await otherNode.next(isBroadcast)).toEqual(expected);
    expect(await otherNodeToo.next(isBroadcast)).toEqual(expected);
    expect(await sameNode.next(isBroadcast)).toEqual(expected);
    for (const client of [sender, sameNode, otherNode, otherNodeToo]) await noFurtherCopy(client);

    // And the way back, from node 1 to node 0, equally.
    otherNode.send({ type: 'broadcast', room: room.id, payload: 'reply' });
    const reply = { type: 'message', room: room.id, payload: 'reply' };
    expect(await sender.next(isBroadcast)).toEqual(reply);
    expect(await sameNode.next(isBroadcast)).toEqual(reply);
    expect(await otherNodeToo.next(isBroadcast)).toEqual(reply);
    for (const client of [otherNode, otherNodeToo, sender, sameNode]) await noFurtherCopy(client);
  });

  it('sends notifications to a user connected to another node, on Socket.IO and SSE', async () => {
    const [ada, bob] = await Promise.all([registerUser(urls[0]), registerUser(urls[1])]);
    const bobSocket = await socketOn(1, bob);
    const bobStream = await openSse(`${urls[2]}/api/events?token=${bob.token}`);
    open.push(bobStream);
    const room = await createRoom(urls[0], ada, { isPrivate: true });
    const invited = nextEvent<NotificationJson>(bobSocket, 'notification');
    await addMember(urls[0], ada, room.id, bob.id);
    expect(await invited).toMatchObject({ type: 'room:invited', room: { id: room.id } });
    expect(
      JSON.parse((await bobStream.next((e) => e.event === 'notification')).data),
    ).toMatchObject({ type: 'room:invited' });

    const mentioned = nextEvent<NotificationJson>(bobSocket, 'notification');
    const message = await postMessage(urls[2], ada, room.id, `@${bob.username} look`);
    expect(await mentioned).toEqual({ type: 'mention', message });
  });

  it('lets an invitee in on every node at once, though a node had just found them no member', async () => {
    const [ada, bob] = await Promise.all([registerUser(urls[0]), registerUser(urls[1])]);
    const room = await createRoom(urls[0], ada, { isPrivate: true });
    const bobOn1 = await socketOn(1, bob);
    expect(await emitAck(bobOn1, 'chat:join', room.id)).toMatchObject({
      ok: false,
      error: { code: 'NOT_FOUND' },
    });

    const invited = nextEvent<NotificationJson>(bobOn1, 'notification');
    await addMember(urls[0], ada, room.id, bob.id);
    expect(await invited).toMatchObject({ type: 'room:invited', room: { id: room.id } });

    await emitOk(bobOn1, 'chat:join', room.id);
    await emitOk(bobOn1, 'chat:message', { roomId: room.id, text: 'in at once' });
  });

  it('ends a removed member’s access on every node at once, on every transport', async () => {
    const [ada, bob, carol] = await Promise.all([0, 1, 2].map((node) => registerUser(urls[node])));
    const room = await createRoom(urls[0], ada, { isPrivate: true });
    await addMember(urls[0], ada, room.id, bob.id);
    await addMember(urls[0], ada, room.id, carol.id);
    const adaSocket = await socketOn(0, ada);
    await emitOk(adaSocket, 'chat:join', room.id);
    // Bob and carol, who stays, side by side on the nodes that hear of messages over Redis.
    const [bobSocket, carolSocket] = [await socketOn(1, bob), await socketOn(1, carol)];
    const [bobWs, carolWs] = [
      await RawClient.connect(urls[2], bob.token),
      await RawClient.connect(urls[2], carol.token),
    ];
    open.push(bobWs, carolWs);
    for (const socket of [bobSocket, carolSocket]) await emitOk(socket, 'chat:join', room.id);
    for (const client of [bobWs, carolWs])
      await client.request({ type: 'join', room: room.id }, 'joined');
    // Node 1 now has bob's membership cached.
    await emitOk(bobSocket, 'chat:message', { roomId: room.id, text: 'before' });
    const bobGets = collect<MessageJson>(bobSocket, 'chat:message');
    const notified = nextEvent<NotificationJson>(bobSocket, 'notification');

    await removeMember(urls[0], ada, room.id, bob.id);

    expect(await notified).toMatchObject({ type: 'room:removed', room: { id: room.id } });
    await bobWs.next((frame) => frame.type === 'left');
    const refused = await emitAck(bobSocket, 'chat:message', { roomId: room.id, text: 'after' });
    expect(refused).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    const afterRemoval = (frame: { type: string; message?: unknown }) =>
      frame.type === 'chat:message' && (frame.message as MessageJson).text === 'without bob';
    const othersGet = [
      nextEvent<MessageJson>(adaSocket, 'chat:message'),
      nextEvent<MessageJson>(carolSocket, 'chat:message'),
      carolWs.next(afterRemoval),
    ];
    // 'before' was 1; the refused send took no seq.
    expect((await postMessage(urls[0], ada, room.id, 'without bob')).seq).toBe(2);
    await Promise.all(othersGet);
    // Nodes 1 and 2 have handed the message out; a round trip on each of bob's connections
    // comes after anything they were sent of it.
    await emitAck(bobSocket, 'room:presence', { roomId: room.id });
    await bobWs.request({ type: 'ping' }, 'pong');
    expect(bobGets).toEqual([]);
    expect(bobWs.frames.filter(afterRemoval)).toEqual([]);
  });

  it('closes a deleted account’s connections on every node', async () => {
    const bob = await registerUser(urls[0]);
    const bobSocket = await socketOn(1, bob);
    const disconnected = new Promise<string>((resolve) => bobSocket.once('disconnect', resolve));
    const bobWs = await RawClient.connect(urls[2], bob.token);
    open.push(bobWs);

    const deleted = await fetch(`${urls[0]}/api/auth/me`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${bob.token}` },
    });
    expect(deleted.status).toBe(204);

    expect(await disconnected).toBe('io server disconnect');
    expect(await bobWs.closed).toEqual({ code: 4001, reason: 'Unauthorized' });
  });

  it('shares each user’s message budget and connection cap across nodes', async () => {
    const eve = await registerUser(urls[0]);
    const room = await createRoom(urls[0], eve);
    const sockets = await Promise.all([0, 1, 2, 0].map((node) => socketOn(node, eve)));
    await expect(connectSocket(urls[1], eve.token)).rejects.toMatchObject({
      data: { code: 'RATE_LIMITED' },
    });

    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        emitAck(sockets[i % 3], 'chat:message', { roomId: room.id, text: `m${i}` }),
      ),
    );
    expect(answers.filter((answer) => answer.ok)).toHaveLength(30);
    expect(
      answers
        .filter((answer) => !answer.ok)
        .every((answer) => !answer.ok && answer.error.code === 'RATE_LIMITED'),
    ).toBe(true);
  });

  it('shares each user’s event-stream cap across nodes, and frees a slot on every node when a stream ends', async () => {
    const fay = await registerUser(urls[0]);
    const personalOn = async (node: number) => {
      const stream = await openSse(`${urls[node]}/api/events?token=${fay.token}`);
      open.push(stream);
      return stream;
    };
    const streams = [await personalOn(0), await personalOn(1), await personalOn(2)];
    expect(streams.map((stream) => stream.status)).toEqual([200, 200, 200]);

    const refused = await personalOn(1);
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ code: 'RATE_LIMITED' });

    streams[0].close();
    let reopened: SseConnection | undefined;
    // Well within the slot's lease (PRESENCE_TTL_MS, 3 s, renewed every second): released,
    // not left to expire.
    await eventually(async () => {
      reopened = await personalOn(2);
      return reopened.status === 200;
    }, 1_500);
    await reopened!.next((event) => event.event === 'connected');
  });
});
