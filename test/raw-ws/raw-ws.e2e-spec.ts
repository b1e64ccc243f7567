import { Logger } from '@nestjs/common';
import { createConnection } from 'node:net';
import { WebSocket, type WebSocketServer } from 'ws';
import type { MessageJson } from '@app/contract/models';
import {
  addMember,
  badTokensFor,
  createRoom,
  forgeToken,
  nowSeconds,
  postMessage,
  registerUser,
  removeMember,
  type TestUser,
} from '../support/api';
import { TokenService } from '@app/auth/token.service';
import { ChatService } from '@app/chat/chat.service';
import { LiveDelivery } from '@app/chat/live-delivery';
import { PresenceService } from '@app/chat/presence.service';
import { DeliveryService } from '@app/delivery/delivery.service';
import { RawWsGateway } from '@app/raw-ws/raw-ws.gateway';
import { ConnectionTracker } from '@app/realtime/connection-tracker';
import { RoomsService } from '@app/rooms/rooms.service';
import { RateLimitService } from '@app/throttling/rate-limit.service';
import { databaseKinds } from '../support/databases';
import { holdNextCall } from '../support/hold';
import { loggedFailure } from '../support/logged-failure';
import { RawClient } from '../support/raw-ws';
import {
  connectSocket,
  emitOk,
  eventually,
  nextEvent,
  sleep,
  type ClientSocket,
} from '../support/sockets';
import { startTestApp, type TestApp } from '../support/test-app';

describe.each(databaseKinds())('raw WebSocket /ws (%s)', (kind) => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  const open: Array<RawClient | ClientSocket> = [];

  beforeAll(async () => {
    t = await startTestApp(kind, {
      CORS_ORIGINS: 'https://app.example.com',
      WS_PING_INTERVAL_MS: '1000',
      // Far more connections than the default budget of one address: none of these tests is about it.
      RATE_LIMIT_CONNECTIONS_PER_IP: '10000/60s',
    });
    ada = await registerUser(t.url);
    bob = await registerUser(t.url);
  });
  afterEach(() => open.splice(0).forEach((client) => client.close()));
  afterAll(() => t.close());

  const raw = async (user: TestUser) => {
    const client = await RawClient.connect(t.url, user.token);
    open.push(client);
    return client;
  };

  describe('handshake', () => {
    it('greets with connected and the user id', async () => {
      const client = RawClient.open(t.url, ada.token);
      open.push(client);
      expect(await client.next(() => true)).toEqual({ type: 'connected', userId: ada.id });
    });

    it('also takes the token from the Authorization header', async () => {
      const client = RawClient.open(t.url, undefined, {
        headers: { Authorization: `Bearer ${ada.token}` },
      });
      open.push(client);
      expect((await client.next(() => true)).type).toBe('connected');
    });

    it('completes the upgrade and closes 4001 Unauthorized for no token and every bad one', async () => {
      const refusals = [undefined, ...badTokensFor(ada).map(([, token]) => token)].map(
        async (token) => {
          const client = RawClient.open(t.url, token);
          const opened = new Promise<boolean>((resolve) =>
            client.socket.once('open', () => resolve(true)),
          );
          return { opened: await opened, closed: await client.closed, frames: client.frames };
        },
      );
      for (const refusal of await Promise.all(refusals))
        expect(refusal).toEqual({
          opened: true,
          closed: { code: 4001, reason: 'Unauthorized' },
          frames: [],
        });
    });

    it('refuses a foreign Origin before upgrading', async () => {
      const socket = new WebSocket(`${t.url.replace('http', 'ws')}/ws?token=${ada.token}`, {
        headers: { Origin: 'https://evil.example.net' },
      });
      const status = await new Promise<number | undefined>((resolve) => {
        socket.once('unexpected-response', (_request, response) => resolve(response.statusCode));
        socket.once('open', () => resolve(undefined));
      });
      expect(status).toBe(403);
      socket.on('error', () => undefined);
      socket.terminate();
      const allowed = RawClient.open(t.url, ada.token, {
        headers: { Origin: 'https://app.example.com' },
      });
      open.push(allowed);
      expect((await allowed.next(() => true)).type).toBe('connected');
    });

    it('closes with 1013 an upgrade whose authentication failed on our side, logging why', async () => {
      const admit = jest
        .spyOn(t.app.get(TokenService), 'admit')
        .mockRejectedValueOnce(new TypeError('tokens.secret is undefined'));
      const logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      try {
        const client = RawClient.open(t.url, ada.token);
        expect(await client.closed).toEqual({ code: 1013, reason: 'Try again later' });
        expect(logged).toHaveBeenCalledWith(expect.stringContaining('tokens.secret is undefined'));
      } finally {
        admit.mockRestore();
        logged.mockRestore();
      }
    });

    it('closes with 4001 when the token expires mid-connection, not before, and within a second or so', async () => {
      const exp = nowSeconds() + 2;
      const token = forgeToken({ sub: ada.id, username: ada.username, iat: nowSeconds(), exp });
      const client = await RawClient.connect(t.url, token);
      expect(await client.closed).toEqual({ code: 4001, reason: 'Unauthorized' });
      // Expiries are checked once a second (late by up to that, never early), plus some slack.
      const closedAt = Date.now();
      expect(closedAt).toBeGreaterThanOrEqual(exp * 1000);
      expect(closedAt).toBeLessThan(exp * 1000 + 2_500);
      expect(client.frames).toEqual([
        expect.objectContaining({ type: 'error', code: 'UNAUTHORIZED' }),
      ]);
    });

    it.each([
      ['an unknown path', '/elsewhere', {}, 404, 'NOT_FOUND'],
      ['a foreign Origin', '/ws', { Origin: 'https://evil.example.net' }, 403, 'FORBIDDEN'],
    ])(
      'closes the connection of an upgrade refused for %s, even one its client keeps half open',
      async (_, path, headers, status, code) => {
        const server = t.app.getHttpServer();
        const upgraded = new Promise<import('node:stream').Duplex>((resolve) =>
          server.once('upgrade', (_request, serverSide: import('node:stream').Duplex) =>
            resolve(serverSide),
          ),
        );
        const socket = createConnection({
          port: Number(new URL(t.url).port),
          host: '127.0.0.1',
          allowHalfOpen: true,
        });
        const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
        socket.write(
          `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
            `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra.join('')}\r\n`,
        );
        try {
          const answer = await new Promise<string>((resolve) => {
            let text = '';
            socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
            socket.once('end', () => resolve(text));
          });
          // With the contract's error, as REST answers.
          const [head, body] = answer.split('\r\n\r\n');
          expect(head).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
          expect(head).toContain('Content-Type: application/json');
          expect(JSON.parse(body)).toEqual({ code, message: expect.any(String), details: [] });
          // The client never ends its side: the server must let go anyway.
          const serverSide = await upgraded;
          await eventually(() => serverSide.destroyed, 5_000);
        } finally {
          socket.destroy();
        }
      },
    );

    it('closes with 4001 an upgrade whose account closed after its token was read, however late', async () => {
      const user = await registerUser(t.url);
      const gateway = t.app.get(RawWsGateway);
      const server = (gateway as unknown as { server: WebSocketServer }).server;
      const handleUpgrade = server.handleUpgrade.bind(server);
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let begin!: () => void;
      const upgrading = new Promise<void>((resolve) => (begin = resolve));
      // Authenticated, with its slot: the upgrade itself waits (as for a slow client).
      jest.spyOn(server, 'handleUpgrade').mockImplementationOnce((...args) => {
        begin();
        void released.then(() => handleUpgrade(...args));
      });
      try {
        const client = RawClient.open(t.url, user.token);
        open.push(client);
        await upgrading;
        const deleted = await fetch(`${t.url}/api/auth/me`, {
          method: 'DELETE',
          headers: { Authorization: `Bearer ${user.token}` },
        });
        expect(deleted.ok).toBe(true);
        release();

        expect(await client.closed).toEqual({ code: 4001, reason: 'Unauthorized' });
        expect(client.frames).toEqual([]);
      } finally {
        release();
        jest.restoreAllMocks();
      }
    });

    it('answers an upgrade to an unknown path with 404', async () => {
      const socket = new WebSocket(`${t.url.replace('http', 'ws')}/elsewhere`);
      const status = await new Promise<number>((resolve) =>
        socket.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)),
      );
      expect(status).toBe(404);
      socket.on('error', () => undefined);
      socket.terminate();
    });
  });

  describe('frames of the reference design', () => {
    it('joins and leaves rooms: after leaving, nothing of the room arrives, and others are told', async () => {
      const room = await createRoom(t.url, ada);
      const watcher = await connectSocket(t.url, ada.token);
      open.push(watcher);
      await emitOk(watcher, 'chat:join', room.id);
      const client = await raw(bob);
      expect(await client.request({ type: 'join', room: room.id }, 'joined')).toEqual({
        type: 'joined',
        room: room.id,
        lastSeq: 0,
      });
      const left = nextEvent(watcher, 'chat:userLeft');
      expect(await client.request({ type: 'leave', room: room.id }, 'left')).toEqual({
        type: 'left',
        room: room.id,
      });
      expect(await left).toEqual({ roomId: room.id, user: { id: bob.id, username: bob.username } });

      await postMessage(t.url, ada, room.id, 'after leaving');
      // Answered behind anything the server sent this connection before.
      await client.request({ type: 'ping' }, 'pong');
      expect(client.frames.filter((f) => f.type !== 'pong')).toEqual([]);
    });

    it('broadcasts to every other member, on raw WebSocket and Socket.IO, without storing', async () => {
      const room = await createRoom(t.url, ada);
      const sender = await raw(ada);
      const sameUserOther = await raw(ada);
      const peer = await raw(bob);
      for (const client of [sender, sameUserOther, peer])
        await client.request({ type: 'join', room: room.id }, 'joined');
      const socket = await connectSocket(t.url, bob.token);
      open.push(socket);
      await emitOk(socket, 'chat:join', room.id);
      const onSocket = nextEvent(socket, 'room:broadcast');

      sender.send({ type: 'broadcast', room: room.id, payload: { cursor: [1, 2] } });
      expect(await peer.next((f) => f.type === 'message')).toEqual({
        type: 'message',
        room: room.id,
        payload: { cursor: [1, 2] },
      });
      expect(await sameUserOther.next((f) => f.type === 'message')).toEqual({
        type: 'message',
        room: room.id,
        payload: { cursor: [1, 2] },
      });
      expect(await onSocket).toEqual({
        roomId: room.id,
        payload: { cursor: [1, 2] },
        from: { id: ada.id, username: ada.username },
      });
      await sleep(100);
      expect(sender.frames.filter((f) => f.type === 'message')).toEqual([]);
      const history = await fetch(`${t.url}/api/rooms/${room.id}/messages`, {
        headers: { Authorization: `Bearer ${ada.token}` },
      });
      expect(((await history.json()) as { items: unknown[] }).items).toEqual([]);
    });

    it('passes a broadcast payload on as sent, keys named like Object.prototype members included, polluting keys excepted', async () => {
      const room = await createRoom(t.url, ada);
      const [sender, peer] = [await raw(ada), await raw(bob)];
      for (const client of [sender, peer])
        await client.request({ type: 'join', room: room.id }, 'joined');
      const kept = '"toString":"t","valueOf":2,"hasOwnProperty":3';
      const sent =
        `{"constructor":"a",${kept},"nested":{"__proto__":{"c":2},"prototype":1,"b":1},` +
        '"list":[{"isPrototypeOf":null,"constructor":{}}]}';

      sender.socket.send(`{"type":"broadcast","room":"${room.id}","payload":${sent}}`);

      const { payload } = await peer.next((f) => f.type === 'message');
      expect(JSON.stringify(payload)).toBe(
        `{${kept},"nested":{"b":1},"list":[{"isPrototypeOf":null}]}`,
      );
    });

    it('passes a null payload on too, to /ws and Socket.IO members', async () => {
      const room = await createRoom(t.url, ada);
      const [sender, peer] = [await raw(ada), await raw(bob)];
      for (const client of [sender, peer])
        await client.request({ type: 'join', room: room.id }, 'joined');
      const socket = await connectSocket(t.url, bob.token);
      open.push(socket);
      await emitOk(socket, 'chat:join', { roomId: room.id });
      const onSocket = nextEvent<{ payload: unknown }>(socket, 'room:broadcast');

      sender.send({ type: 'broadcast', room: room.id, payload: null });

      expect(await peer.next((f) => f.type === 'message')).toEqual({
        type: 'message',
        room: room.id,
        payload: null,
      });
      expect(await onSocket).toMatchObject({ roomId: room.id, payload: null });
    });

    it('delivers chat messages of joined rooms from Socket.IO and REST', async () => {
      const room = await createRoom(t.url, ada);
      const client = await raw(bob);
      await client.request({ type: 'join', room: room.id }, 'joined');
      const socket = await connectSocket(t.url, ada.token);
      open.push(socket);
      const fromSocket = await emitOk<MessageJson>(socket, 'chat:message', {
        roomId: room.id,
        text: 'from socket.io',
      });
      const fromRest = await postMessage(t.url, ada, room.id, 'from REST');
      expect(await client.next((f) => f.type === 'chat:message')).toEqual({
        type: 'chat:message',
        room: room.id,
        message: fromSocket,
      });
      expect(await client.next((f) => f.type === 'chat:message')).toEqual({
        type: 'chat:message',
        room: room.id,
        message: fromRest,
      });
    });

    it('keeps private rooms of others invisible: NOT_FOUND for join and broadcast', async () => {
      const room = await createRoom(t.url, ada, { isPrivate: true });
      const client = await raw(bob);
      expect(await client.request({ type: 'join', room: room.id }, 'joined')).toMatchObject({
        type: 'error',
        code: 'NOT_FOUND',
      });
      expect(
        await client.request({ type: 'broadcast', room: room.id, payload: 1 }, 'never'),
      ).toMatchObject({ type: 'error', code: 'NOT_FOUND' });
    });

    it.each([
      ['invalid JSON', '{"type": "join", ', {}],
      ['a JSON array', '[1,2]', {}],
      ['a JSON string', '"join"', {}],
      ['an unknown type', { type: 'shout', room: 'x' }, {}],
      ['no type', { room: 'x' }, {}],
      ['a malformed room', { type: 'join', room: 'lobby' }, { request: 'join' }],
      ['a number for room', { type: 'leave', room: 12 }, { request: 'leave' }],
      [
        'a broadcast without payload',
        { type: 'broadcast', room: '01a21548-0000-7000-8000-000000000000' },
        { request: 'broadcast', room: '01a21548-0000-7000-8000-000000000000' },
      ],
      [
        'an unknown field',
        { type: 'join', room: '01A21548-0000-7000-8000-000000000000', extra: 1 },
        { request: 'join', room: '01a21548-0000-7000-8000-000000000000' },
      ],
      [
        'a deeply nested payload',
        {
          type: 'broadcast',
          room: '01a21548-0000-7000-8000-000000000000',
          payload: JSON.parse('['.repeat(40) + ']'.repeat(40)) as unknown,
        },
        { request: 'broadcast', room: '01a21548-0000-7000-8000-000000000000' },
      ],
    ])(
      'answers %s with VALIDATION_FAILED, naming the request when its type is known, and keeps the connection',
      async (_case, frame, request) => {
        const client = await raw(ada);
        const error = await client.request(frame, 'never');
        expect(error).toEqual({
          type: 'error',
          code: 'VALIDATION_FAILED',
          message: expect.any(String),
          details: expect.any(Array),
          ...request,
        });
        const room = await createRoom(t.url, ada);
        expect(await client.request({ type: 'join', room: room.id }, 'joined')).toEqual({
          type: 'joined',
          room: room.id,
          lastSeq: 0,
        });
      },
    );

    it('names the refused request and its room, so that a client can tell which of its frames failed', async () => {
      const mine = await createRoom(t.url, bob);
      const hidden = await createRoom(t.url, ada, { isPrivate: true });
      const client = await raw(bob);
      client.send({ type: 'broadcast', room: hidden.id.toUpperCase(), payload: 1 });
      client.send({ type: 'join', room: mine.id });
      client.send({ type: 'join', room: hidden.id });

      const errors = [
        await client.next((f) => f.type === 'error'),
        await client.next((f) => f.type === 'error'),
      ];
      expect(errors).toEqual([
        expect.objectContaining({ code: 'NOT_FOUND', request: 'broadcast', room: hidden.id }),
        expect.objectContaining({ code: 'NOT_FOUND', request: 'join', room: hidden.id }),
      ]);
      expect(client.frames).toContainEqual({ type: 'joined', room: mine.id, lastSeq: 0 });
    });

    it('answers a join and a leave of an upper-case room id with the id as the server issues it', async () => {
      const room = await createRoom(t.url, ada);
      const client = await raw(ada);
      const upperCase = room.id.toUpperCase();
      expect(await client.request({ type: 'join', room: upperCase }, 'joined')).toEqual({
        type: 'joined',
        room: room.id,
        lastSeq: 0,
      });
      expect(await client.request({ type: 'leave', room: upperCase }, 'left')).toEqual({
        type: 'left',
        room: room.id,
      });
    });

    it('answers a failure of its own with INTERNAL, and logs what it was, telling the client nothing more', async () => {
      const room = await createRoom(t.url, ada);
      jest
        .spyOn(t.app.get(ChatService), 'enter')
        .mockRejectedValueOnce(new Error('relation "secret_table" does not exist'));
      const logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      const client = await raw(ada);
      const answer = await client.request({ type: 'join', room: room.id }, 'joined');
      expect(answer).toEqual({
        type: 'error',
        code: 'INTERNAL',
        message: 'Internal server error',
        details: [],
        request: 'join',
        room: room.id,
      });
      expect(logged).toHaveBeenCalledWith(expect.stringContaining('secret_table'));
      logged.mockRestore();
    });

    it('answers ping with pong, for clients that cannot see protocol pings', async () => {
      const client = await raw(ada);
      expect(await client.request({ type: 'ping' }, 'pong')).toEqual({ type: 'pong' });
    });

    it('answers a text frame of invalid UTF-8 with VALIDATION_FAILED, passing nothing on', async () => {
      const room = await createRoom(t.url, ada);
      const sender = await raw(ada);
      const peer = await raw(bob);
      for (const client of [sender, peer])
        await client.request({ type: 'join', room: room.id }, 'joined');
      const frame = `{"type":"broadcast","room":"${room.id}","payload":"caf\xe9"}`;

      sender.socket.send(Buffer.from(frame, 'latin1'), { binary: false });
      expect(await sender.next((f) => f.type === 'error')).toEqual({
        type: 'error',
        code: 'VALIDATION_FAILED',
        message: 'Text frames must be UTF-8',
        details: [],
      });
      // The connection stays, and the peer's first message is the next, valid one.
      sender.send({ type: 'broadcast', room: room.id, payload: 'café' });
      expect(await peer.next((f) => f.type === 'message')).toMatchObject({ payload: 'café' });
    });

    it('answers a binary frame with VALIDATION_FAILED', async () => {
      const client = await raw(ada);
      client.socket.send(Buffer.from([1, 2, 3]), { binary: true });
      expect(await client.next((f) => f.type === 'error')).toMatchObject({
        code: 'VALIDATION_FAILED',
      });
    });
  });

  describe("frames waiting in a connection's queue", () => {
    afterEach(() => jest.restoreAllMocks());

    /** Holds the next rate-limit check, which every join and broadcast starts with. */
    const holdNextFrame = () => holdNextCall(t.app.get(RateLimitService), 'consume');

    /** Deletes the account: every connection of it is cut off with 4001. */
    const deleteAccount = async (user: TestUser) => {
      const deleted = await fetch(`${t.url}/api/auth/me`, {
        method: 'DELETE',
        headers: { Authorization: `Bearer ${user.token}` },
      });
      expect(deleted.ok).toBe(true);
    };

    it('hold at most the slow-consumer limit: later frames are refused with UNAVAILABLE, naming each, and the queued ones still run', async () => {
      const room = await createRoom(t.url, ada);
      await addMember(t.url, ada, room.id, bob.id);
      const sender = await raw(ada);
      const receiver = await raw(bob);
      for (const client of [sender, receiver])
        expect((await client.request({ type: 'join', room: room.id }, 'joined')).type).toBe(
          'joined',
        );
      const stalled = holdNextFrame();
      const filler = 'x'.repeat(60_000);
      const sent = 40;
      for (let i = 0; i < sent; i += 1)
        sender.send({ type: 'broadcast', room: room.id, payload: `${i}:${filler}` });
      await stalled.started;
      // 1 MiB by default: the frame under way and 16 more fit, each about 60 kB.
      const queued = 17;
      const refusals = await Promise.all(
        Array.from({ length: sent - queued }, () => sender.next((f) => f.type === 'error')),
      );
      expect(new Set(refusals.map((refusal) => JSON.stringify(refusal)))).toEqual(
        new Set([
          JSON.stringify({
            type: 'error',
            code: 'UNAVAILABLE',
            message: 'Too many frames waiting to be handled: send it again later',
            details: [],
            request: 'broadcast',
            room: room.id,
          }),
        ]),
      );

      stalled.release();
      // One after another: waits polling side by side take the frames in the order they poll.
      const delivered = [];
      for (let i = 0; i < queued; i += 1)
        delivered.push(await receiver.next((f) => f.type === 'message'));
      const numbers = delivered.map((frame) => Number(String(frame.payload).split(':')[0]));
      expect(numbers).toEqual(Array.from({ length: queued }, (_, i) => i));
      expect(await sender.request({ type: 'ping' }, 'pong')).toEqual({ type: 'pong' });
      expect(receiver.frames.filter((f) => f.type === 'message')).toEqual([]);
    });

    it('do nothing once the server cut the connection, queued or under way (the account is deleted)', async () => {
      const doomed = await registerUser(t.url);
      const room = await createRoom(t.url, ada);
      const client = await raw(doomed);
      const joining = holdNextFrame();
      const entering = jest.spyOn(t.app.get(ChatService), 'enter');
      const adding = jest.spyOn(t.app.get(RoomsService), 'addMember');
      const broadcasting = jest.spyOn(t.app.get(DeliveryService), 'broadcast');
      client.send({ type: 'join', room: room.id });
      client.send({ type: 'broadcast', room: room.id, payload: 'sent before the cut' });
      await joining.started;

      await deleteAccount(doomed);
      expect(await client.closed).toEqual({ code: 4001, reason: 'Unauthorized' });
      joining.release();
      await Promise.allSettled(entering.mock.results.map((result) => result.value as unknown));
      await sleep(100);

      expect(entering).toHaveBeenCalledTimes(1);
      expect(adding).not.toHaveBeenCalled();
      expect(broadcasting).not.toHaveBeenCalled();
    });

    it('send no broadcast that was under way when the server cut the connection', async () => {
      const doomed = await registerUser(t.url);
      const room = await createRoom(t.url, ada);
      const client = await raw(doomed);
      const checking = holdNextCall(t.app.get(RoomsService), 'assertAccessible');
      const broadcasting = jest.spyOn(t.app.get(DeliveryService), 'broadcast');
      client.send({ type: 'broadcast', room: room.id, payload: 'under way at the cut' });
      await checking.started;

      await deleteAccount(doomed);
      expect(await client.closed).toEqual({ code: 4001, reason: 'Unauthorized' });
      checking.release();
      await sleep(100);

      expect(broadcasting).not.toHaveBeenCalled();
    });

    it('are still done when the client closes by itself, as a reference client sends, then closes', async () => {
      const room = await createRoom(t.url, ada);
      const [sender, peer] = [await raw(ada), await raw(bob)];
      for (const client of [sender, peer])
        await client.request({ type: 'join', room: room.id }, 'joined');

      sender.send({ type: 'broadcast', room: room.id, payload: 'last words' });
      sender.socket.close();

      expect(await peer.next((f) => f.type === 'message')).toEqual({
        type: 'message',
        room: room.id,
        payload: 'last words',
      });
    });

    it('and a removal that comes meanwhile leave the room once', async () => {
      const privateRoom = await createRoom(t.url, ada, { isPrivate: true });
      const publicRoom = await createRoom(t.url, ada);
      await addMember(t.url, ada, privateRoom.id, bob.id);
      const client = await raw(bob);
      await client.request({ type: 'join', room: privateRoom.id }, 'joined');
      const held = holdNextFrame();
      client.send({ type: 'join', room: publicRoom.id });
      client.send({ type: 'leave', room: privateRoom.id });
      await held.started;

      await removeMember(t.url, ada, privateRoom.id, bob.id);
      held.release();
      await client.next((f) => f.type === 'joined');
      await client.request({ type: 'ping' }, 'pong');

      const leftFrames = client.frames.filter((f) => f.type === 'left');
      expect(leftFrames).toEqual([{ type: 'left', room: privateRoom.id }]);
    });

    it('do not keep a removed member receiving the private room', async () => {
      const privateRoom = await createRoom(t.url, ada, { isPrivate: true });
      const publicRoom = await createRoom(t.url, ada);
      await addMember(t.url, ada, privateRoom.id, bob.id);
      const client = await raw(bob);
      for (const room of [privateRoom, publicRoom])
        await client.request({ type: 'join', room: room.id }, 'joined');
      const held = holdNextFrame();
      client.send({ type: 'broadcast', room: publicRoom.id, payload: 'waiting' });
      await held.started;

      await removeMember(t.url, ada, privateRoom.id, bob.id);
      await postMessage(t.url, ada, privateRoom.id, 'after the removal');
      // Sent after it on the same connection: once it is here, the other would have been.
      const marker = await postMessage(t.url, ada, publicRoom.id, 'marker');
      await client.next(
        (f) => f.type === 'chat:message' && (f.message as MessageJson).id === marker.id,
      );

      expect(client.frames.filter((f) => f.type === 'chat:message')).toEqual([]);
      held.release();
      expect(await client.next((f) => f.type === 'left')).toEqual({
        type: 'left',
        room: privateRoom.id,
      });
    });
  });

  describe('limits and liveness', () => {
    it('announces the leave of every room of a closed connection, though one fails', async () => {
      const rooms = [await createRoom(t.url, ada), await createRoom(t.url, ada)];
      const client = await raw(ada);
      for (const room of rooms) await client.request({ type: 'join', room: room.id }, 'joined');
      const logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      const announcing = jest.spyOn(t.app.get(DeliveryService), 'userLeft');
      announcing.mockImplementationOnce(() => {
        throw new Error('delivery gone');
      });
      try {
        client.close();
        await eventually(() => announcing.mock.calls.length === 2);
        expect(announcing.mock.calls.map(([roomId]) => roomId).sort()).toEqual(
          rooms.map((room) => room.id).sort(),
        );
        expect(logged).toHaveBeenCalledWith(
          expect.stringContaining('delivery gone'),
          expect.anything(),
        );
        // No follower left on this node: neither room is tracked, the failed one included.
        const live = t.app.get(LiveDelivery);
        expect(rooms.map((room) => live.deliveredSeq(room.id))).toEqual([undefined, undefined]);
      } finally {
        logged.mockRestore();
        announcing.mockRestore();
      }
    });

    it('logs a failure to leave the rooms of a closed connection, rather than end the process', async () => {
      const room = await createRoom(t.url, ada);
      const client = await raw(ada);
      await client.request({ type: 'join', room: room.id }, 'joined');
      const leaving = jest
        .spyOn(t.app.get(PresenceService), 'leaveAll')
        .mockRejectedValueOnce(new Error('presence store gone'));
      try {
        const { logged, unhandled } = await loggedFailure(() => client.close());
        expect(unhandled).toEqual([]);
        expect(logged[0]).toContain('presence store gone');
      } finally {
        leaving.mockRestore();
      }
      const again = await raw(ada);
      expect((await again.request({ type: 'join', room: room.id }, 'joined')).type).toBe('joined');
    });

    it('closes with 1009 on a frame over 64 KiB, and keeps serving others', async () => {
      const client = await raw(ada);
      client.send({
        type: 'broadcast',
        room: '01a21548-0000-7000-8000-000000000000',
        payload: 'x'.repeat(70 * 1024),
      });
      expect((await client.closed).code).toBe(1009);
      const other = await raw(ada);
      const room = await createRoom(t.url, ada);
      expect(await other.request({ type: 'join', room: room.id }, 'joined')).toEqual({
        type: 'joined',
        room: room.id,
        lastSeq: 0,
      });
    });

    it('negotiates no compression, so a deflate bomb cannot be sent', async () => {
      const client = RawClient.open(t.url, ada.token, { perMessageDeflate: true });
      open.push(client);
      await client.next((f) => f.type === 'connected');
      expect(client.socket.extensions).toBe('');
    });

    it('terminates a peer that stops answering pings, and cleans up its presence', async () => {
      const room = await createRoom(t.url, ada);
      const watcher = await connectSocket(t.url, ada.token);
      open.push(watcher);
      await emitOk(watcher, 'chat:join', room.id);
      const silent = await RawClient.connect(t.url, bob.token, { autoPong: false });
      await silent.request({ type: 'join', room: room.id }, 'joined');
      expect(
        (await emitOk<{ users: unknown[] }>(watcher, 'room:presence', { roomId: room.id })).users,
      ).toHaveLength(2);
      const left = nextEvent(watcher, 'chat:userLeft', () => true, 8_000);
      expect((await silent.closed).code).toBe(1006);
      expect(await left).toEqual({ roomId: room.id, user: { id: bob.id, username: bob.username } });
      expect(
        (await emitOk<{ users: unknown[] }>(watcher, 'room:presence', { roomId: room.id })).users,
      ).toHaveLength(1);
    });

    it('keeps a peer that answers pings, ping after ping', async () => {
      const client = await raw(ada);
      let pings = 0;
      client.socket.on('ping', () => (pings += 1));
      // Past several termination checks, not only the first.
      await eventually(() => pings >= 4, 10_000);
      expect(client.socket.readyState).toBe(WebSocket.OPEN);
      await client.request({ type: 'ping' }, 'pong');
    });

    it('shares the per-user message budget with Socket.IO', async () => {
      const limited = await startTestApp(kind, { RATE_LIMIT_CHAT_MESSAGE: '3/60s' });
      try {
        const user = await registerUser(limited.url);
        const room = await createRoom(limited.url, user);
        const socket = await connectSocket(limited.url, user.token);
        open.push(socket);
        await emitOk(socket, 'chat:message', { roomId: room.id, text: 'one' });
        await emitOk(socket, 'chat:message', { roomId: room.id, text: 'two' });
        const client = await RawClient.connect(limited.url, user.token);
        open.push(client);
        client.send({ type: 'broadcast', room: room.id, payload: 'three' });
        client.send({ type: 'broadcast', room: room.id, payload: 'four' });
        expect(await client.next((f) => f.type === 'error')).toMatchObject({
          code: 'RATE_LIMITED',
        });
        const other = await registerUser(limited.url);
        const otherClient = await RawClient.connect(limited.url, other.token);
        open.push(otherClient);
        await client.request({ type: 'join', room: room.id }, 'joined');
        otherClient.send({ type: 'broadcast', room: room.id, payload: 'fine' });
        expect(await client.next((f) => f.type === 'message')).toMatchObject({ payload: 'fine' });
        expect(otherClient.frames.filter((f) => f.type === 'error')).toEqual([]);
      } finally {
        await limited.close();
      }
    });

    /** Writes `request` on a raw TCP connection, and reads what comes back until the server closes it. */
    const exchange = async (request: string | Buffer): Promise<string> => {
      const tcp = createConnection(Number(new URL(t.url).port), '127.0.0.1');
      await new Promise((resolve) => tcp.once('connect', resolve));
      const answer: Buffer[] = [];
      tcp.on('data', (chunk: Buffer) => answer.push(chunk));
      tcp.on('error', () => undefined);
      tcp.write(request);
      await new Promise((resolve) => tcp.once('close', resolve));
      return Buffer.concat(answer).toString('latin1');
    };
    const upgrade = (target: string) =>
      `GET ${target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

    it.each(['//', '//:1', 'http://[', 'http://x:99999/'])(
      'answers 400 to an upgrade whose target %j is no URL, and keeps serving',
      async (target) => {
        const answer = await exchange(upgrade(target));
        expect(answer).toMatch(/^HTTP\/1\.1 400 /);
        expect(answer).toContain('"code":"VALIDATION_FAILED"');
        expect((await raw(ada)).socket.readyState).toBe(WebSocket.OPEN);
      },
    );

    it.each([
      ['an unknown WebSocket version', 'Sec-WebSocket-Version: 99\r\n', true],
      ['no key', 'Sec-WebSocket-Version: 13\r\n', false],
    ])(
      'answers an authenticated handshake with %s 400 and the contract’s error, freeing its slot',
      async (_case, headers, namesVersions) => {
        const user = await registerUser(t.url);
        const slots = t.app.get(ConnectionTracker);
        const acquired = jest.spyOn(slots, 'acquire');
        const released = jest.spyOn(slots, 'release');
        try {
          const answer = await exchange(
            `GET /ws?token=${user.token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n` +
              `Connection: Upgrade\r\n${headers}\r\n`,
          );
          const [head, body] = answer.split('\r\n\r\n');
          expect(head).toMatch(/^HTTP\/1\.1 400 /);
          // The versions spoken, only to a client that asked for another.
          expect(head.includes('Sec-WebSocket-Version: 13, 8')).toBe(namesVersions);
          expect(JSON.parse(body)).toEqual({
            code: 'VALIDATION_FAILED',
            message: expect.stringContaining('Sec-WebSocket-'),
            details: [],
          });
          // Other tests' connections come and go meanwhile: this one's slot is the user's.
          const slot = acquired.mock.calls.filter(([userId]) => userId === user.id);
          expect(slot).toHaveLength(1);
          await eventually(() =>
            released.mock.calls.some(([userId, id]) => userId === user.id && id === slot[0][1]),
          );
        } finally {
          jest.restoreAllMocks();
        }
      },
    );

    it.each([
      '/x/../socket.io/?EIO=4&transport=websocket',
      'http://x/socket.io/?EIO=4&transport=websocket',
    ])(
      'answers 404 to %j, which Socket.IO does not take as its own, rather than hold it',
      async (target) => {
        expect(await exchange(upgrade(target))).toMatch(/^HTTP\/1\.1 404 /);
      },
    );

    it('leaves /socket.io/../ws to Socket.IO alone: one answer, no WebSocket', async () => {
      const answer = await exchange(upgrade('/socket.io/../ws?token=garbage'));
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer.match(/HTTP\/1\.1/g)).toHaveLength(1);
    });

    it.each([
      ['an unmasked frame', Buffer.from([0x81, 0x02, 0x68, 0x69])],
      ['a frame over 64 KiB', Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 0x02, 0, 0, 1, 2, 3, 4])],
      ['invalid UTF-8', Buffer.from([0x81, 0x81, 1, 2, 3, 4, 0xfe ^ 1])],
    ])(
      'closes a refused client that sends %s right behind its upgrade, and keeps serving',
      async (_case, frame) => {
        const answer = await exchange(
          Buffer.concat([Buffer.from(upgrade('/ws?token=garbage'), 'latin1'), frame]),
        );
        expect(answer).toMatch(/^HTTP\/1\.1 101 /);
        expect((await raw(ada)).socket.readyState).toBe(WebSocket.OPEN);
      },
    );

    it('survives a raw TCP client sending a broken upgrade', async () => {
      const port = new URL(t.url).port;
      const tcp = createConnection(Number(port), '127.0.0.1');
      await new Promise((resolve) => tcp.once('connect', resolve));
      tcp.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      await sleep(100);
      tcp.destroy();
      const client = await raw(ada);
      expect(client.socket.readyState).toBe(WebSocket.OPEN);
    });
  });
});

describe.each(databaseKinds())('raw WebSocket /ws connection slots (%s)', (kind) => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp(kind, { MAX_SOCKETS_PER_USER: '1' });
  });
  afterAll(() => t.close());

  it('frees the slot of a client that reset its connection while its upgrade was authenticated', async () => {
    const dave = await registerUser(t.url);
    const verifying = holdNextCall(t.app.get(TokenService), 'verify');
    const tcp = createConnection(Number(new URL(t.url).port), '127.0.0.1');
    await new Promise((resolve) => tcp.once('connect', resolve));
    tcp.write(
      `GET /ws?token=${dave.token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n` +
        'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
        'Sec-WebSocket-Version: 13\r\n\r\n',
    );
    await verifying.started;
    tcp.resetAndDestroy();
    await sleep(100);
    verifying.release();
    await sleep(100);

    const client = await RawClient.connect(t.url, dave.token);
    client.close();
  });
});
