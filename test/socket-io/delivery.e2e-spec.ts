import { Logger } from '@nestjs/common';
import { WebSocket } from 'ws';
import request from 'supertest';
import type { MessageJson, NotificationJson } from '@app/contract/models';
import type { JoinResult } from '@app/contract/socket-events';
import { DEFAULT_JOIN_MEMBERS_LIMIT } from '@app/config/env.validation';
import { MessageStore } from '@app/messages/message-store.service';
import { RoomsService } from '@app/rooms/rooms.service';
import { createRoom, registerUser, type TestUser } from '../support/api';
import { databaseKinds } from '../support/databases';
import { holdNextCall } from '../support/hold';
import { RawClient } from '../support/raw-ws';
import { openSse, type SseConnection } from '../support/sse';
import {
  collect,
  connectSocket,
  emitAck,
  emitOk,
  eventually,
  sleep,
  socketPool,
  type ClientSocket,
} from '../support/sockets';
import { metricValue, requiredSeries } from '../support/metrics';
import { startTestApp, type TestApp } from '../support/test-app';

const seqs = (messages: MessageJson[]) => messages.map((message) => message.seq);
const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);
const connectionReset = () => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
const sseSeqs = (connection: SseConnection) =>
  connection.received.filter((event) => event.event === 'chat:message').map((event) => event.id);
const rawSeqs = (client: RawClient) =>
  client.frames
    .filter((frame) => frame.type === 'chat:message')
    .map((frame) => (frame.message as MessageJson).seq);

describe.each(databaseKinds())('Socket.IO ordering, recovery and clean-up (%s)', (kind) => {
  let t: TestApp;
  let owner: TestUser;
  const sockets = socketPool(() => t.url);

  beforeAll(async () => {
    t = await startTestApp(kind, {
      RATE_LIMIT_CHAT_MESSAGE: '100000/10s',
      RATE_LIMIT_CONNECTIONS_PER_IP: '100000/60s',
      RATE_LIMIT_CHAT_JOIN: '100000/60s',
    });
    owner = await registerUser(t.url);
  });
  afterEach(() => sockets.closeAll());
  afterAll(() => t.close());

  const connect = (user: TestUser) => sockets.connect(user);

  it('delivers 5 senders × 50 messages to every member in seq order, no gap, no duplicate, as REST stores them, on both transports', async () => {
    const room = await createRoom(t.url, owner);
    const senders = await Promise.all(range(1, 5).map(() => registerUser(t.url)));
    const sockets = await Promise.all(senders.map((sender) => connect(sender)));
    const listener = await connect(owner);
    for (const socket of [...sockets, listener]) await emitOk(socket, 'chat:join', room.id);
    const inboxes = [...sockets, listener].map((socket) =>
      collect<MessageJson>(socket, 'chat:message'),
    );
    const rawListener = await RawClient.connect(t.url, owner.token);
    try {
      await rawListener.request({ type: 'join', room: room.id }, 'joined');
      await sendConcurrently(room.id, sockets);
      await eventually(() => rawSeqs(rawListener).length >= 250, 15_000);
      const stored = await expectStoredToMatch(room.id, inboxes);
      expect(rawListener.frames.filter((frame) => frame.type === 'chat:message')).toEqual(
        stored.map((message) => ({ type: 'chat:message', room: room.id, message })),
      );
    } finally {
      rawListener.close();
    }
  });

  const sendConcurrently = (roomId: string, sockets: ClientSocket[]) =>
    Promise.all(
      sockets.map(async (socket, s) => {
        for (let i = 0; i < 50; i += 1) {
          await emitOk(socket, 'chat:message', {
            roomId,
            text: `s${s}-${i}`,
            clientMsgId: `s${s}-${i}`,
          });
        }
      }),
    );

  /** The 250 messages stored, once every inbox holds them, in seq order, each once. */
  const expectStoredToMatch = async (roomId: string, inboxes: MessageJson[][]) => {
    await eventually(() => inboxes.every((inbox) => inbox.length >= 250), 15_000);
    await sleep(100);
    const history = await request(t.url)
      .get(`/api/rooms/${roomId}/messages?since=0&limit=200`)
      .set('Authorization', `Bearer ${owner.token}`);
    const rest = await request(t.url)
      .get(`/api/rooms/${roomId}/messages?since=200&limit=200`)
      .set('Authorization', `Bearer ${owner.token}`);
    const stored = [...history.body.items, ...rest.body.items] as MessageJson[];
    expect(seqs(stored)).toEqual(range(1, 250));
    for (const inbox of inboxes) expect(inbox).toEqual(stored);
    return stored;
  };

  it('stores one socket’s messages in the order sent, also when its access checks read storage', async () => {
    const room = await createRoom(t.url, owner, { isPrivate: true });
    const socket = await connect(owner);
    await emitOk(socket, 'chat:join', room.id);
    const rooms = t.app.get(RoomsService);
    rooms.forgetMembership(room.id, owner.id);
    const firstCheck = holdNextCall(rooms, 'isMember');

    const first = emitOk<MessageJson>(socket, 'chat:message', { roomId: room.id, text: 'first' });
    await firstCheck.started;
    const second = emitOk<MessageJson>(socket, 'chat:message', { roomId: room.id, text: 'second' });
    await sleep(100);
    firstCheck.release();

    const [stored1, stored2] = await Promise.all([first, second]);
    expect([stored1.text, stored2.text]).toEqual(['first', 'second']);
    expect(stored2.seq).toBe(stored1.seq + 1);
    jest.restoreAllMocks();
  });

  it('recovers exactly the messages sent while disconnected, with since', async () => {
    const room = await createRoom(t.url, owner);
    const reader = await registerUser(t.url);
    const first = await connect(reader);
    const seen = collect<MessageJson>(first, 'chat:message');
    await emitOk(first, 'chat:join', room.id);
    const writer = await connect(owner);
    for (let i = 0; i < 5; i += 1)
      await emitOk(writer, 'chat:message', { roomId: room.id, text: `before ${i}` });
    await eventually(() => seen.length === 5);
    first.close();

    const sentWhileAway: MessageJson[] = [];
    for (let i = 0; i < 30; i += 1)
      sentWhileAway.push(
        await emitOk(writer, 'chat:message', { roomId: room.id, text: `away ${i}` }),
      );

    const second = await connect(reader);
    const rejoined = await emitOk<JoinResult>(second, 'chat:join', {
      roomId: room.id,
      since: seen[seen.length - 1].seq,
    });
    expect(rejoined.missed).toEqual(sentWhileAway);
    expect(rejoined.truncated).toBe(false);
  });

  it('times every answered event in realtime_ack_duration_seconds, and no rejected one', async () => {
    const room = await createRoom(t.url, owner);
    const ackCount = (event: string) =>
      metricValue(t.url, `realtime_ack_duration_seconds_count{event="${event}"}`);
    const [joins, messages] = [await ackCount('chat:join'), await ackCount('chat:message')];
    const socket = await connect(owner);
    await emitOk(socket, 'chat:join', room.id);
    await emitOk(socket, 'chat:message', { roomId: room.id, text: 'timed' });
    await emitOk(socket, 'chat:message', { roomId: room.id, text: 'timed too' });
    const rejected = await emitAck(socket, 'chat:message', { roomId: room.id, text: '' });
    expect(rejected).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
    expect(await ackCount('chat:join')).toBe(joins + 1);
    expect(await ackCount('chat:message')).toBe(messages + 2);
  });

  it('caps missed messages at 1000 and says truncated', async () => {
    const room = await createRoom(t.url, owner);
    const store = t.app.get(MessageStore);
    for (let i = 1; i <= 1003; i += 1) {
      await store.append({
        roomId: room.id,
        userId: owner.id,
        username: owner.username,
        text: `bulk ${i}`,
      });
    }
    const socket = await connect(owner);
    const result = await emitOk<JoinResult>(socket, 'chat:join', { roomId: room.id, since: 1 });
    expect(seqs(result.missed)).toEqual(range(2, 1001));
    expect(result.truncated).toBe(true);
    const exact = await emitOk<JoinResult>(socket, 'chat:join', { roomId: room.id, since: 3 });
    expect(exact.missed).toHaveLength(1000);
    expect(exact.truncated).toBe(false);
  });

  describe('caps missed messages at half SLOW_CONSUMER_LIMIT_BYTES of JSON with the members too', () => {
    const half = (1024 * 1024) / 2;
    const bytesOf = (value: unknown) => Buffer.byteLength(JSON.stringify(value));
    const total = 200;

    /** A room of `total` messages of 4000 characters. */
    const roomOfLongMessages = async () => {
      const room = await createRoom(t.url, owner);
      const store = t.app.get(MessageStore);
      const long = 'x'.repeat(4000);
      await Promise.all(
        range(1, total).map((i) =>
          store.append({
            roomId: room.id,
            userId: owner.id,
            username: owner.username,
            text: `${i} ${long}`.slice(0, 4000),
          }),
        ),
      );
      return room;
    };

    it('and says truncated, the rest coming with the next join', async () => {
      const room = await roomOfLongMessages();
      const socket = await connect(owner);

      const first = await emitOk<JoinResult>(socket, 'chat:join', { roomId: room.id, since: 0 });
      const budget = half - bytesOf(first.members);
      expect(first.truncated).toBe(true);
      expect(bytesOf(first.missed)).toBeLessThanOrEqual(budget);
      const firstCount = first.missed.length;
      expect(firstCount).toBeGreaterThan(100);
      expect(seqs(first.missed)).toEqual(range(1, firstCount));
      // One more would not have fitted.
      const next = await emitOk<JoinResult>(socket, 'chat:join', {
        roomId: room.id,
        since: firstCount,
      });
      expect(bytesOf(first.missed) + bytesOf(next.missed[0])).toBeGreaterThan(budget);
      expect(seqs(next.missed)).toEqual(range(firstCount + 1, total));
      expect(next.truncated).toBe(false);
    });

    it('leaving the missed messages of a room with many members less room', async () => {
      const room = await roomOfLongMessages();
      const socket = await connect(owner);
      const alone = await emitOk<JoinResult>(socket, 'chat:join', { roomId: room.id, since: 0 });
      const many = Array.from({ length: DEFAULT_JOIN_MEMBERS_LIMIT }, (_, i) => ({
        id: `01a21548-0000-7000-8000-${String(i).padStart(12, '0')}`,
        username: `member_with_a_long_name_${i}`.slice(0, 32),
        joinedAt: new Date(),
      }));
      const listMembers = jest
        .spyOn(t.app.get(RoomsService), 'listMembers')
        .mockResolvedValueOnce({ items: many, nextCursor: many[many.length - 1].id });

      const crowded = await emitOk<JoinResult>(socket, 'chat:join', { roomId: room.id, since: 0 });
      listMembers.mockRestore();
      expect(crowded.members).toHaveLength(DEFAULT_JOIN_MEMBERS_LIMIT);
      expect(crowded.membersTruncated).toBe(true);
      expect(bytesOf(crowded.missed) + bytesOf(crowded.members)).toBeLessThanOrEqual(half);
      // About 85 KiB of members: some 20 messages of 4000 characters fewer.
      expect(crowded.missed.length).toBeLessThan(alone.missed.length - 15);
      expect(crowded.truncated).toBe(true);
    });
  });

  it('leaves the gauges where they started after 1000 connect/join/disconnect cycles, /ws ones too', async () => {
    const room = await createRoom(t.url, owner);
    const gauges = async () => {
      const text = await (await fetch(`${t.url}/metrics`)).text();
      const read = (series: string) => requiredSeries(text, series);
      return {
        socketIo: read('realtime_connections{transport="socket.io"}'),
        ws: read('realtime_connections{transport="ws"}'),
        rooms: read('realtime_rooms_with_members'),
        presence: read('realtime_presence_entries'),
      };
    };
    // Every connection of the earlier tests is closed: once the server has seen them go,
    // nothing is left on the gauges.
    const idle = { socketIo: 0, ws: 0, rooms: 0, presence: 0 };
    await eventually(async () => JSON.stringify(await gauges()) === JSON.stringify(idle), 10_000);
    const cycle = async () => {
      const socket = await connectSocket(t.url, owner.token);
      await emitOk(socket, 'chat:join', room.id);
      socket.close();
    };
    const rawCycle = async () => {
      const client = await RawClient.connect(t.url, owner.token);
      await client.request({ type: 'join', room: room.id }, 'joined');
      client.close();
    };
    for (let batch = 0; batch < 100; batch += 1) await Promise.all(range(1, 10).map(cycle));
    for (let batch = 0; batch < 20; batch += 1) await Promise.all(range(1, 10).map(rawCycle));
    await eventually(async () => JSON.stringify(await gauges()) === JSON.stringify(idle), 10_000);
    const presence = await emitOk<{ users: unknown[] }>(await connect(owner), 'room:presence', {
      roomId: room.id,
    });
    expect(presence.users).toEqual([]);
  }, 120_000);

  it.each([
    ['WebSocket', ['websocket'], 'transport close'],
    [
      'HTTP long-polling, where clients of the reference design start',
      ['polling'],
      'transport error',
    ],
  ])(
    'closes a socket that sends a packet over 64 KiB over %s, stores nothing, and keeps serving others',
    async (_transport, transports, reason) => {
      const room = await createRoom(t.url, owner);
      const socket = await connectSocket(t.url, owner.token, { transports });
      await emitOk(socket, 'chat:join', room.id);
      const disconnected = new Promise<string>((resolve) => socket.once('disconnect', resolve));
      socket.emit('chat:message', { roomId: room.id, text: 'x'.repeat(70 * 1024) });
      expect(await disconnected).toBe(reason);
      socket.close();
      const other = await connect(owner);
      const stored = await emitOk<MessageJson>(other, 'chat:message', {
        roomId: room.id,
        text: 'still fine',
      });
      expect(stored.seq).toBe(1);
    },
  );

  it('survives malformed Socket.IO packets', async () => {
    const url = `${t.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`;
    for (const garbage of [
      '42[',
      '4{"x":1}',
      '40/unknown,{"token":1}',
      '2probe',
      '\u0000\u0001',
      '451-["chat:message",{"_placeholder":true,"num":9}]',
      '99',
      '4',
    ]) {
      const raw = new WebSocket(url);
      await new Promise((resolve) => raw.once('open', resolve));
      raw.send(`40${JSON.stringify({ token: owner.token })}`);
      raw.send(garbage);
      await sleep(50);
      raw.terminate();
    }
    const socket = await connect(owner);
    expect(
      (await emitAck(socket, 'room:presence', { roomId: (await createRoom(t.url, owner)).id })).ok,
    ).toBe(true);
  });

  it('acks a message whose mention notifications fail, delivers it, and logs the failure', async () => {
    const room = await createRoom(t.url, owner);
    const bob = await registerUser(t.url);
    const socket = await connect(owner);
    await emitOk(socket, 'chat:join', room.id);
    const inbox = collect<MessageJson>(socket, 'chat:message');
    const rooms = jest
      .spyOn(t.app.get(RoomsService), 'membersAmong')
      .mockRejectedValueOnce(connectionReset());
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const message = await emitOk<MessageJson>(socket, 'chat:message', {
        roomId: room.id,
        text: `hi @${bob.username}`,
      });
      expect(message.seq).toBe(1);
      await eventually(() =>
        warn.mock.calls.some(([message]) => String(message).includes('read ECONNRESET')),
      );
      await eventually(() => inbox.length === 1);
      expect(inbox).toEqual([message]);
    } finally {
      rooms.mockRestore();
      warn.mockRestore();
    }
  });

  describe('a send committed but reported failed', () => {
    const joinAll = async (roomId: string, reader: TestUser) => {
      const socket = await connect(reader);
      await emitOk(socket, 'chat:join', roomId);
      const raw = await RawClient.connect(t.url, reader.token);
      await raw.request({ type: 'join', room: roomId }, 'joined');
      const sse = await openSse(`${t.url}/api/rooms/${roomId}/events`, {
        Authorization: `Bearer ${reader.token}`,
      });
      return {
        socketInbox: collect<MessageJson>(socket, 'chat:message'),
        raw,
        sse,
        close: () => {
          raw.close();
          sse.close();
        },
      };
    };

    /** The first append commits, then reports a lost connection, as after ECONNRESET on COMMIT. */
    const failAfterCommitOnce = () => {
      const store = t.app.get(MessageStore);
      const append = store.append.bind(store);
      return jest.spyOn(store, 'append').mockImplementationOnce(async (input) => {
        await append(input);
        throw connectionReset();
      });
    };

    it('is delivered live by its retry, once per subscriber, also after a second retry', async () => {
      const room = await createRoom(t.url, owner);
      const reader = await registerUser(t.url);
      const subscribers = await joinAll(room.id, reader);
      try {
        const sender = await connect(owner);
        const payload = { roomId: room.id, text: 'committed', clientMsgId: 'lost-ack' };
        const append = failAfterCommitOnce();
        try {
          expect(await emitAck(sender, 'chat:message', payload)).toMatchObject({
            ok: false,
            error: { code: 'UNAVAILABLE' },
          });
        } finally {
          append.mockRestore();
        }
        await sleep(100);
        expect(subscribers.socketInbox).toEqual([]);

        const stored = await emitOk<MessageJson>(sender, 'chat:message', payload);
        expect(stored.seq).toBe(1);
        await eventually(() => subscribers.socketInbox.length === 1);
        await eventually(() => sseSeqs(subscribers.sse).length === 1);
        expect(subscribers.socketInbox).toEqual([stored]);

        expect(await emitOk(sender, 'chat:message', payload)).toEqual(stored);
        const next = await emitOk<MessageJson>(sender, 'chat:message', {
          roomId: room.id,
          text: 'next',
        });
        await eventually(() => subscribers.socketInbox.length >= 2);
        await eventually(() => sseSeqs(subscribers.sse).includes('2'));
        await eventually(() => rawSeqs(subscribers.raw).includes(2));
        await sleep(100);
        expect(subscribers.socketInbox).toEqual([stored, next]);
        expect(sseSeqs(subscribers.sse)).toEqual(['1', '2']);
        expect(rawSeqs(subscribers.raw)).toEqual([1, 2]);
      } finally {
        subscribers.close();
      }
    });

    it('does not send mention notifications again when a retry is answered from storage', async () => {
      const room = await createRoom(t.url, owner);
      const bob = await registerUser(t.url);
      await request(t.url)
        .post(`/api/rooms/${room.id}/members`)
        .set('Authorization', `Bearer ${bob.token}`)
        .send({ userId: bob.id })
        .expect(201);
      const bobNotes = collect<NotificationJson>(await connect(bob), 'notification');
      const sender = await connect(owner);
      const payload = { roomId: room.id, text: `hi @${bob.username}`, clientMsgId: 'mention' };
      const first = await emitOk<MessageJson>(sender, 'chat:message', payload);
      expect(await emitOk(sender, 'chat:message', payload)).toEqual(first);
      const second = await emitOk<MessageJson>(sender, 'chat:message', {
        roomId: room.id,
        text: `again @${bob.username}`,
      });
      // Notifications go out from tasks of their own, in any order; a third shows the rest came.
      const sentinel = await emitOk<MessageJson>(sender, 'chat:message', {
        roomId: room.id,
        text: `last @${bob.username}`,
      });
      await eventually(() => bobNotes.length >= 3);
      const bySeq = (notes: NotificationJson[]) =>
        [...notes].sort(
          (a, b) =>
            (a as { message: MessageJson }).message.seq -
            (b as { message: MessageJson }).message.seq,
        );
      expect(bySeq(bobNotes)).toEqual([
        { type: 'mention', message: first },
        { type: 'mention', message: second },
        { type: 'mention', message: sentinel },
      ]);
    });
  });
});
