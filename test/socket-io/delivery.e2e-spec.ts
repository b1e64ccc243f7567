import { WebSocket } from 'ws';
import request from 'supertest';
import type { MessageJson } from '@app/contract/models';
import type { JoinResult } from '@app/contract/socket-events';
import { MessageStore } from '@app/messages/message-store.service';
import { createRoom, registerUser, type TestUser } from '../support/api';
import { databaseKinds } from '../support/databases';
import {
  collect,
  connectSocket,
  emitAck,
  emitOk,
  eventually,
  sleep,
  socketPool,
} from '../support/sockets';
import { startTestApp, type TestApp } from '../support/test-app';

const seqs = (messages: MessageJson[]) => messages.map((message) => message.seq);
const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

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

  it('delivers 5 senders × 50 messages to every member in seq order, no gap, no duplicate, as REST stores them', async () => {
    const room = await createRoom(t.url, owner);
    const senders = await Promise.all(range(1, 5).map(() => registerUser(t.url)));
    const sockets = await Promise.all(senders.map((sender) => connect(sender)));
    const listener = await connect(owner);
    for (const socket of [...sockets, listener]) await emitOk(socket, 'chat:join', room.id);
    const inboxes = [...sockets, listener].map((socket) =>
      collect<MessageJson>(socket, 'chat:message'),
    );

    await Promise.all(
      sockets.map(async (socket, s) => {
        for (let i = 0; i < 50; i += 1) {
          await emitOk(socket, 'chat:message', {
            roomId: room.id,
            text: `s${s}-${i}`,
            clientMsgId: `s${s}-${i}`,
          });
        }
      }),
    );
    await eventually(() => inboxes.every((inbox) => inbox.length >= 250), 15_000);
    await sleep(100);
    const history = await request(t.url)
      .get(`/api/rooms/${room.id}/messages?since=0&limit=200`)
      .set('Authorization', `Bearer ${owner.token}`);
    const rest = await request(t.url)
      .get(`/api/rooms/${room.id}/messages?since=200&limit=200`)
      .set('Authorization', `Bearer ${owner.token}`);
    const stored = [...history.body.items, ...rest.body.items] as MessageJson[];
    expect(seqs(stored)).toEqual(range(1, 250));
    for (const inbox of inboxes) expect(inbox).toEqual(stored);
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
    const ackCount = async (event: string) => {
      const text = await (await fetch(`${t.url}/metrics`)).text();
      const line = new RegExp(
        `^realtime_ack_duration_seconds_count\\{event="${event}"\\} (\\d+)`,
        'm',
      ).exec(text);
      return Number(line?.[1] ?? 0);
    };
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

  it('leaves the gauges where they started after 1000 connect/join/disconnect cycles', async () => {
    const room = await createRoom(t.url, owner);
    const gauges = async () => {
      const text = await (await fetch(`${t.url}/metrics`)).text();
      const read = (name: string) =>
        Number(new RegExp(`^${name}(\\{[^}]*\\})? (\\d+)`, 'm').exec(text)?.[2] ?? 0);
      return {
        connections: read('realtime_connections'),
        rooms: read('realtime_rooms_with_members'),
        presence: read('realtime_presence_entries'),
      };
    };
    const before = await gauges();
    const cycle = async () => {
      const socket = await connectSocket(t.url, owner.token);
      await emitOk(socket, 'chat:join', room.id);
      socket.close();
    };
    for (let batch = 0; batch < 100; batch += 1) await Promise.all(range(1, 10).map(cycle));
    await eventually(async () => JSON.stringify(await gauges()) === JSON.stringify(before), 10_000);
    const presence = await emitOk<{ users: unknown[] }>(await connect(owner), 'room:presence', {
      roomId: room.id,
    });
    expect(presence.users).toEqual([]);
  }, 120_000);

  it('closes a socket that sends a frame over 64 KiB, and keeps serving others', async () => {
    const room = await createRoom(t.url, owner);
    const socket = await connect(owner);
    await emitOk(socket, 'chat:join', room.id);
    const disconnected = new Promise<string>((resolve) => socket.once('disconnect', resolve));
    socket.emit('chat:message', { roomId: room.id, text: 'x'.repeat(70 * 1024) });
    expect(await disconnected).toBe('transport close');
    const other = await connect(owner);
    const stored = await emitOk<MessageJson>(other, 'chat:message', {
      roomId: room.id,
      text: 'still fine',
    });
    expect(stored.seq).toBe(1);
  });

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
});
