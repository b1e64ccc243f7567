import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { EventSource } from 'eventsource';
import { TokenService } from '@app/auth/token.service';
import { DeliveryService } from '@app/delivery/delivery.service';
import { RoomsService } from '@app/rooms/rooms.service';
import { SseHub } from '@app/sse/sse.hub';
import { SseService } from '@app/sse/sse.service';
import {
  addMember,
  badTokensFor,
  createRoom,
  forgeToken,
  nowSeconds,
  postMessage,
  registerUser,
  type TestUser,
} from '../support/api';
import { databaseKinds } from '../support/databases';
import { liveHeapBytes } from '../support/heap';
import { eventually, sleep } from '../support/sockets';
import { openSse, type SseConnection } from '../support/sse';
import { startTestApp, type TestApp } from '../support/test-app';

const json = (data: string) => JSON.parse(data) as unknown;

const MAX_STREAMS_PER_USER = 3;
const MAX_SEQ = 2 ** 31 - 1;

/** Makes the next call of `target[method]` wait for `until` before it runs. */
function holdNextCall<T extends object>(
  target: T,
  method: jest.FunctionPropertyNames<Required<T>>,
  until: Promise<unknown>,
): Promise<void> {
  const original = (target[method] as (...args: unknown[]) => unknown).bind(target);
  return new Promise((reached) => {
    jest.spyOn(target, method).mockImplementationOnce((async (...args: unknown[]) => {
      reached();
      await until;
      return original(...args);
    }) as never);
  });
}

/** The server side of every request to a path: whether the server has seen each one close. */
function trackResponses(server: Server, path: string) {
  const closed: boolean[] = [];
  const track = (request: IncomingMessage, response: ServerResponse) => {
    if (!request.url?.startsWith(path)) return;
    const index = closed.push(false) - 1;
    response.once('close', () => (closed[index] = true));
  };
  server.on('request', track);
  return {
    count: () => closed.length,
    allClosed: () => closed.every(Boolean),
    /** Resolves when the server sees the first request to the path close. */
    firstClosed: () => eventually(() => closed[0] === true),
    stop: () => server.off('request', track),
  };
}

/**
 * A real EventSource on a room's stream, and a way to cut its connection as
 * a network would: it then reconnects by itself.
 */
function followRoom(server: Server, url: string) {
  const streamSockets = new Set<Socket>();
  const track = (request: IncomingMessage) => {
    if (request.url?.includes('/events')) streamSockets.add(request.socket);
  };
  server.on('request', track);
  const source = new EventSource(url);
  const received: number[] = [];
  source.addEventListener('chat:message', (event) => received.push(Number(event.lastEventId)));
  return {
    source,
    received,
    cut: () => streamSockets.forEach((socket) => socket.destroy()),
    close: () => {
      source.close();
      server.off('request', track);
    },
  };
}

describe.each(databaseKinds())('Server-Sent Events (%s)', (kind) => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  const open: SseConnection[] = [];

  beforeAll(async () => {
    t = await startTestApp(kind, {
      SSE_HEARTBEAT_MS: '1000',
      MAX_SSE_STREAMS_PER_USER: String(MAX_STREAMS_PER_USER),
    });
    ada = await registerUser(t.url);
    bob = await registerUser(t.url);
  });
  afterEach(() => {
    jest.restoreAllMocks();
    open.splice(0).forEach((connection) => connection.close());
  });
  afterAll(() => t.close());

  const stream = async (
    path: string,
    user: TestUser | undefined,
    headers: Record<string, string> = {},
  ) => {
    const separator = path.includes('?') ? '&' : '?';
    const connection = await openSse(
      `${t.url}${path}${user ? `${separator}token=${user.token}` : ''}`,
      headers,
    );
    open.push(connection);
    return connection;
  };

  /** No stream of the user is left over: they may open as many as the cap allows. */
  const expectFullAllowance = async (user: TestUser) => {
    for (let i = 0; i < MAX_STREAMS_PER_USER; i += 1) {
      expect((await stream('/api/events', user)).status).toBe(200);
    }
  };

  describe('GET /api/events', () => {
    it('refuses a missing or bad token with 401 in the error shape, before any stream', async () => {
      const badUsers = badTokensFor(ada).map(([, token]) => ({ ...ada, token }));
      for (const user of [undefined, ...badUsers]) {
        const connection = await stream('/api/events', user);
        expect(connection.status).toBe(401);
        expect(connection.body).toEqual({
          code: 'UNAUTHORIZED',
          message: expect.any(String),
          details: [],
        });
      }
    });

    it('accepts the Authorization header as well', async () => {
      const connection = await stream('/api/events', undefined, {
        Authorization: `Bearer ${ada.token}`,
      });
      expect(connection.status).toBe(200);
    });

    it('writes connected before a notification that comes as the stream registers', async () => {
      const hub = t.app.get(SseHub);
      const attach = hub.attach.bind(hub);
      const notification = { type: 'mention', message: { text: 'right behind' } };
      jest.spyOn(hub, 'attach').mockImplementationOnce((subscriber, slot) => {
        const detach = attach(subscriber, slot);
        queueMicrotask(() => t.app.get(DeliveryService).notify(bob.id, notification as never));
        return detach;
      });

      const connection = await stream('/api/events', bob);

      expect((await connection.next(() => true)).event).toBe('connected');
      expect(json((await connection.next(() => true)).data)).toEqual(notification);
    });

    it('streams connected first, then notifications, with the right headers and heartbeats', async () => {
      const connection = await stream('/api/events', bob);
      expect(connection.status).toBe(200);
      expect(connection.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(connection.headers.get('cache-control')).toContain('no-cache');
      expect(connection.headers.get('x-accel-buffering')).toBe('no');
      const connected = await connection.next(() => true);
      expect(connected.event).toBe('connected');
      expect(json(connected.data)).toEqual({ userId: bob.id });

      const room = await createRoom(t.url, ada, { isPrivate: true });
      await addMember(t.url, ada, room.id, bob.id);
      const invited = await connection.next((event) => event.event === 'notification');
      expect(json(invited.data)).toEqual({
        type: 'room:invited',
        room,
        by: { id: ada.id, username: ada.username },
      });

      const mention = await postMessage(t.url, ada, room.id, `hello @${bob.username}`);
      const mentioned = await connection.next((event) => event.event === 'notification');
      expect(json(mentioned.data)).toEqual({ type: 'mention', message: mention });
      expect(mentioned.id).toBeUndefined();

      expect(await connection.next((event) => event.event === ':comment', 3_000)).toEqual({
        event: ':comment',
        data: 'heartbeat',
      });
    });
  });

  describe('GET /events/:userId (the reference design path)', () => {
    it("streams the caller's own personal stream, connected first, then notifications", async () => {
      const connection = await stream(`/events/${bob.id}`, bob);
      expect(connection.status).toBe(200);
      expect(connection.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const connected = await connection.next(() => true);
      expect(connected.event).toBe('connected');
      expect(json(connected.data)).toEqual({ userId: bob.id });

      const room = await createRoom(t.url, ada);
      await addMember(t.url, ada, room.id, bob.id);
      const invited = await connection.next((event) => event.event === 'notification');
      expect(json(invited.data)).toMatchObject({ type: 'room:invited', room });
      const mention = await postMessage(t.url, ada, room.id, `hi @${bob.username}`);
      const mentioned = await connection.next((event) => event.event === 'notification');
      expect(json(mentioned.data)).toEqual({ type: 'mention', message: mention });
    });

    it("refuses someone else's stream with 403 and a missing token with 401, in the error shape", async () => {
      const foreign = await stream(`/events/${ada.id}`, bob);
      expect(foreign.status).toBe(403);
      expect(foreign.body).toEqual({ code: 'FORBIDDEN', message: expect.any(String), details: [] });
      const anonymous = await stream(`/events/${bob.id}`, undefined);
      expect(anonymous.status).toBe(401);
      expect(anonymous.body).toMatchObject({ code: 'UNAUTHORIZED' });
    });
  });

  describe('GET /api/rooms/:id/events', () => {
    it('streams chat:message events with id = seq', async () => {
      const room = await createRoom(t.url, ada);
      const connection = await stream(`/api/rooms/${room.id}/events`, bob);
      expect(connection.status).toBe(200);
      const posted = await postMessage(t.url, ada, room.id, 'live');
      const event = await connection.next((e) => e.event === 'chat:message');
      expect(event).toEqual({ id: '1', event: 'chat:message', data: JSON.stringify(posted) });
    });

    it('replays after Last-Event-ID, then continues live, with no gap and no duplicate', async () => {
      const room = await createRoom(t.url, ada);
      for (let i = 1; i <= 5; i += 1) await postMessage(t.url, ada, room.id, `m${i}`);
      const connection = await stream(`/api/rooms/${room.id}/events`, bob, {
        'Last-Event-ID': '2',
      });
      await postMessage(t.url, ada, room.id, 'm6');
      await eventually(
        () => connection.received.filter((e) => e.event === 'chat:message').length >= 4,
      );
      await sleep(100);
      expect(
        connection.received.filter((e) => e.event === 'chat:message').map((e) => e.id),
      ).toEqual(['3', '4', '5', '6']);
    });

    it('resumes with ?since= too, and lets Last-Event-ID win', async () => {
      const room = await createRoom(t.url, ada);
      for (let i = 1; i <= 3; i += 1) await postMessage(t.url, ada, room.id, `m${i}`);
      const bySince = await stream(`/api/rooms/${room.id}/events?since=1`, bob);
      await eventually(
        () => bySince.received.filter((e) => e.event === 'chat:message').length === 2,
      );
      const both = await stream(`/api/rooms/${room.id}/events?since=0`, bob, {
        'Last-Event-ID': '2',
      });
      await eventually(() => both.received.some((e) => e.event === 'chat:message'));
      await sleep(100);
      expect(both.received.filter((e) => e.event === 'chat:message').map((e) => e.id)).toEqual([
        '3',
      ]);
    });

    it('takes Last-Event-ID as a query parameter too, as EventSource polyfills send it, the header first', async () => {
      const room = await createRoom(t.url, ada);
      for (let i = 1; i <= 3; i += 1) await postMessage(t.url, ada, room.id, `m${i}`);
      const path = `/api/rooms/${room.id}/events`;
      const byQuery = await stream(`${path}?lastEventId=1&since=0`, bob);
      const byHeader = await stream(`${path}?lastEventId=1`, bob, { 'Last-Event-ID': '2' });
      const messageIds = (connection: SseConnection) =>
        connection.received.filter((e) => e.event === 'chat:message').map((e) => e.id);
      await eventually(() => messageIds(byQuery).length === 2 && messageIds(byHeader).length === 1);
      await postMessage(t.url, ada, room.id, 'm4');
      await eventually(() => messageIds(byHeader).length === 2);
      expect(messageIds(byQuery)).toEqual(['2', '3', '4']);
      expect(messageIds(byHeader)).toEqual(['3', '4']);
      const bad = await stream(`${path}?lastEventId=abc`, bob);
      expect(bad.status).toBe(400);
      expect(bad.body).toMatchObject({ code: 'VALIDATION_FAILED' });
    });

    it('answers 404 for a private room of someone else and 400 for a bad resume point', async () => {
      const secret = await createRoom(t.url, ada, { isPrivate: true });
      const hidden = await stream(`/api/rooms/${secret.id}/events`, bob);
      expect(hidden.status).toBe(404);
      expect(hidden.body).toMatchObject({ code: 'NOT_FOUND' });
      const room = await createRoom(t.url, ada);
      for (const [path, headers] of [
        [`/api/rooms/${room.id}/events`, { 'Last-Event-ID': 'abc' }],
        [`/api/rooms/${room.id}/events?since=-1`, {}],
        [`/api/rooms/${room.id}/events?since=x`, {}],
        [`/api/rooms/${room.id}/events?other=1`, {}],
      ] as const) {
        const bad = await stream(path, bob, headers);
        expect({ path, status: bad.status, code: (bad.body as { code: string }).code }).toEqual({
          path,
          status: 400,
          code: 'VALIDATION_FAILED',
        });
      }
    });

    it("starts at the room's last seq when the resume point is past it, so that new messages arrive", async () => {
      const reader = await registerUser(t.url);
      const room = await createRoom(t.url, ada);
      await postMessage(t.url, ada, room.id, 'm1');
      const byHeader = await stream(`/api/rooms/${room.id}/events`, reader, {
        'Last-Event-ID': '100',
      });
      const bySince = await stream(`/api/rooms/${room.id}/events?since=100`, reader);
      const posted = await postMessage(t.url, ada, room.id, 'm2');
      for (const connection of [byHeader, bySince]) {
        const event = await connection.next((e) => e.event === 'chat:message');
        expect(event).toEqual({ id: '2', event: 'chat:message', data: JSON.stringify(posted) });
      }
    });

    it('holds Last-Event-ID to the rule of ?since: the same values refused with 400, the same accepted', async () => {
      const reader = await registerUser(t.url);
      const room = await createRoom(t.url, ada);
      const path = `/api/rooms/${room.id}/events`;
      for (const value of ['5000000000', String(MAX_SEQ + 1), '-1', '1.5', '1e3', 'abc']) {
        const byHeader = await stream(path, reader, { 'Last-Event-ID': value });
        const bySince = await stream(`${path}?since=${encodeURIComponent(value)}`, reader);
        expect({ value, byHeader: byHeader.status, bySince: bySince.status }).toEqual({
          value,
          byHeader: 400,
          bySince: 400,
        });
        expect(byHeader.body).toEqual({
          code: 'VALIDATION_FAILED',
          message: expect.stringContaining('Last-Event-ID'),
          details: [{ field: 'Last-Event-ID', constraints: [expect.any(String)] }],
        });
      }
      const highest = String(MAX_SEQ);
      expect((await stream(path, reader, { 'Last-Event-ID': highest })).status).toBe(200);
      expect((await stream(`${path}?since=${highest}`, reader)).status).toBe(200);
    });

    it('opens with connected, whose id and since are where the stream resumes from', async () => {
      const reader = await registerUser(t.url);
      const room = await createRoom(t.url, ada);
      for (let i = 1; i <= 3; i += 1) await postMessage(t.url, ada, room.id, `m${i}`);
      const path = `/api/rooms/${room.id}/events`;
      const cases: [string, Record<string, string>, number][] = [
        [path, {}, 3],
        [`${path}?since=1`, {}, 1],
        [`${path}?since=0`, { 'Last-Event-ID': '2' }, 2],
        [`${path}?since=100`, {}, 3],
      ];
      for (const [url, headers, since] of cases) {
        const connection = await stream(url, reader, headers);
        await eventually(() => connection.received.length > 0);
        expect({ url, headers, first: connection.received[0] }).toEqual({
          url,
          headers,
          first: {
            id: String(since),
            event: 'connected',
            data: JSON.stringify({ userId: reader.id, roomId: room.id, since }),
          },
        });
        connection.close();
      }
    });

    it('resumes a real EventSource that lost its stream before any message: nothing posted meanwhile is lost', async () => {
      const room = await createRoom(t.url, ada);
      for (let i = 1; i <= 3; i += 1) await postMessage(t.url, ada, room.id, `old ${i}`);
      const follower = followRoom(
        t.app.getHttpServer(),
        `${t.url}/api/rooms/${room.id}/events?token=${bob.token}`,
      );
      let connected = 0;
      follower.source.addEventListener('connected', () => (connected += 1));
      try {
        await eventually(() => connected === 1);
        follower.cut();
        // Posted before the EventSource is back (it waits about 3 s to reconnect).
        await postMessage(t.url, ada, room.id, 'new 4');
        await postMessage(t.url, ada, room.id, 'new 5');
        await eventually(() => connected === 2, 15_000);
        await eventually(() => follower.received.length >= 2);
        await postMessage(t.url, ada, room.id, 'new 6');
        await eventually(() => follower.received.length >= 3);
        expect(follower.received).toEqual([4, 5, 6]);
      } finally {
        follower.close();
      }
    }, 30_000);

    it('resumes a real EventSource after a forced disconnect while messages keep arriving: seqs 1..N exactly once', async () => {
      const room = await createRoom(t.url, ada);
      const follower = followRoom(
        t.app.getHttpServer(),
        `${t.url}/api/rooms/${room.id}/events?token=${bob.token}`,
      );
      let opens = 0;
      follower.source.addEventListener('open', () => (opens += 1));
      try {
        await eventually(() => opens === 1);
        const total = 60;
        for (let i = 1; i <= total; i += 1) {
          await postMessage(t.url, ada, room.id, `n${i}`);
          // The network drops the stream; the sender goes on.
          if (i === 20) follower.cut();
        }
        await eventually(() => follower.received.length >= total, 20_000);
        await sleep(200);
        expect(opens).toBeGreaterThanOrEqual(2);
        expect(follower.received).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      } finally {
        follower.close();
      }
    }, 40_000);

    it('ends the stream when its token expires, saying so, and frees its place', async () => {
      const carol = await registerUser(t.url);
      const room = await createRoom(t.url, ada);
      const shortLived = {
        ...carol,
        token: forgeToken({
          sub: carol.id,
          username: carol.username,
          iat: nowSeconds(),
          exp: nowSeconds() + 2,
        }),
      };
      const connection = await stream(`/api/rooms/${room.id}/events`, shortLived);
      expect(connection.status).toBe(200);
      await connection.closed;
      // The last event says why, so that the client opens a new stream with a fresh token.
      expect(connection.received.at(-1)).toEqual({
        event: 'closed',
        data: JSON.stringify({ code: 'UNAUTHORIZED', message: 'Token expired', details: [] }),
      });
      await expectFullAllowance(carol);
    });
  });

  describe('clients that leave before their stream opens', () => {
    /** Asks for `path` and leaves while the server is held in `hold`; resolves when the handler is done. */
    const leaveWhileHeld = async (
      path: string,
      user: TestUser,
      hold: (serverSawLeave: Promise<unknown>) => Promise<void>,
    ) => {
      const responses = trackResponses(t.app.getHttpServer(), path);
      const handlers = [
        jest.spyOn(t.app.get(SseService), 'openRoom'),
        jest.spyOn(t.app.get(SseService), 'openPersonal'),
      ];
      try {
        const held = hold(responses.firstClosed());
        const client = new AbortController();
        const asked = fetch(`${t.url}${path}?token=${user.token}`, { signal: client.signal });
        await held;
        client.abort();
        await asked.catch(() => undefined);
        await eventually(() => handlers.some((handler) => handler.mock.results.length > 0));
        await Promise.allSettled(handlers.flatMap((h) => h.mock.results.map((r) => r.value)));
      } finally {
        responses.stop();
      }
    };

    it('keeps no room stream whose client left during the room lookup', async () => {
      const carol = await registerUser(t.url);
      const secret = await createRoom(t.url, carol, { isPrivate: true });
      const hub = t.app.get(SseHub);
      await eventually(() => hub.streamCount === 0);
      await leaveWhileHeld(`/api/rooms/${secret.id}/events`, carol, (serverSawLeave) =>
        holdNextCall(t.app.get(RoomsService), 'findAccessible', serverSawLeave),
      );
      expect(hub.streamCount).toBe(0);
      expect(hub.channelCount).toBe(0);
      await expectFullAllowance(carol);
    });

    it('keeps no personal stream whose client left during authentication', async () => {
      const carol = await registerUser(t.url);
      const hub = t.app.get(SseHub);
      await eventually(() => hub.streamCount === 0);
      await leaveWhileHeld('/api/events', carol, (serverSawLeave) =>
        holdNextCall(t.app.get(TokenService), 'verify', serverSawLeave),
      );
      expect(hub.streamCount).toBe(0);
      expect(hub.channelCount).toBe(0);
      await expectFullAllowance(carol);
    });

    it('does not lock a user out after many requests aborted within milliseconds', async () => {
      const carol = await registerUser(t.url);
      const secret = await createRoom(t.url, carol, { isPrivate: true });
      const paths = [`/api/rooms/${secret.id}/events`, '/api/events'];
      const server: Server = t.app.getHttpServer();
      const responses = paths.map((path) => trackResponses(server, path));
      try {
        for (let i = 0; i < 20; i += 1) {
          for (const path of paths) {
            const client = new AbortController();
            const asked = fetch(`${t.url}${path}?token=${carol.token}`, { signal: client.signal });
            await sleep(i % 4);
            client.abort();
            await asked.catch(() => undefined);
          }
        }
        await sleep(100);
        await eventually(() => responses.every((tracked) => tracked.allClosed()));
      } finally {
        responses.forEach((tracked) => tracked.stop());
      }
      await expectFullAllowance(carol);
    });
  });

  describe('resources', () => {
    it('answers HEAD with a stream’s headers and no stream: the connection serves the next request', async () => {
      const carol = await registerUser(t.url);
      const room = await createRoom(t.url, ada);
      const { port } = new URL(t.url);
      for (const path of ['/api/events', `/api/rooms/${room.id}/events`]) {
        const socket = connect(Number(port), '127.0.0.1');
        let received = '';
        socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
        try {
          const request = (method: string, target: string) =>
            socket.write(`${method} ${target} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
          request('HEAD', `${path}?token=${carol.token}`);
          request('GET', '/health/live');
          await eventually(() => (received.match(/HTTP\/1\.1 200/g) ?? []).length === 2);
          expect(received).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*content-type: text\/event-stream/i);
        } finally {
          socket.destroy();
        }
      }
      await expectFullAllowance(carol);
    });

    it('caps concurrent streams per user with 429', async () => {
      const carol = await registerUser(t.url);
      for (let i = 0; i < 3; i += 1) expect((await stream('/api/events', carol)).status).toBe(200);
      const refused = await stream('/api/events', carol);
      expect(refused.status).toBe(429);
      expect(refused.body).toMatchObject({ code: 'RATE_LIMITED' });
    });

    it('tells an EventSource refused for now when to come back, in a stream, instead of an error status', async () => {
      const carol = await registerUser(t.url);
      const held: SseConnection[] = [];
      for (let i = 0; i < MAX_STREAMS_PER_USER; i += 1)
        held.push(await stream('/api/events', carol));
      // Behind HTTP Basic auth, the browser sends the site's credentials with it.
      const eventSources: Record<string, string>[] = [
        { Accept: 'text/event-stream' },
        { Accept: 'text/event-stream', Authorization: 'Basic c3RhZmY6c2VjcmV0' },
      ];
      for (const headers of eventSources) {
        const refused = await fetch(`${t.url}/api/events?token=${carol.token}`, { headers });
        expect({ headers, status: refused.status }).toEqual({ headers, status: 200 });
        expect(refused.headers.get('content-type')).toMatch(/^text\/event-stream/);
        const [retry, event, data] = (await refused.text()).split('\n');
        expect(Number(retry.replace('retry: ', ''))).toBeGreaterThanOrEqual(1000);
        expect(event).toBe('event: refused');
        expect(JSON.parse(data.replace('data: ', ''))).toMatchObject({ code: 'RATE_LIMITED' });
      }
      // Clients that set a header, or want JSON first, read the status as on any route.
      const statusReaders: Record<string, string>[] = [
        { Accept: 'text/event-stream', Authorization: `Bearer ${carol.token}` },
        { Accept: 'application/json, text/event-stream' },
      ];
      for (const headers of statusReaders) {
        const answer = await fetch(`${t.url}/api/events?token=${carol.token}`, { headers });
        expect({ headers, status: answer.status }).toEqual({ headers, status: 429 });
        expect(await answer.json()).toMatchObject({ code: 'RATE_LIMITED' });
      }

      // A real EventSource comes back by itself, once a place is free.
      const source = new EventSource(`${t.url}/api/events?token=${carol.token}`);
      let refusals = 0;
      let connected = false;
      source.addEventListener('refused', () => (refusals += 1));
      source.addEventListener('connected', () => (connected = true));
      try {
        await eventually(() => refusals === 1);
        held[0].close();
        await eventually(() => connected, 20_000);
        expect(source.readyState).toBe(EventSource.OPEN);
      } finally {
        source.close();
      }
    }, 30_000);

    it('leaves no listener or timer behind after 500 open/close cycles', async () => {
      const room = await createRoom(t.url, ada);
      const hub = t.app.get(SseHub);
      await eventually(() => hub.streamCount === 0);
      const cycles = async (count: number) => {
        for (let i = 0; i < count; i += 1) {
          const connection = await openSse(
            `${t.url}/api/rooms/${room.id}/events?token=${ada.token}`,
          );
          connection.close();
          await connection.closed;
        }
      };
      // Code compiled and caches filled on first use are not a leak.
      await cycles(50);
      await eventually(() => hub.streamCount === 0);
      const heapBefore = liveHeapBytes();
      // Intervals started during the cycles and not cleared (unref'd ones included, which
      // process.getActiveResourcesInfo() does not list): each stream's heartbeat is one.
      const { setInterval: realSet, clearInterval: realClear } = globalThis;
      const running = new Set<unknown>();
      const starting = jest
        .spyOn(globalThis, 'setInterval')
        .mockImplementation((...args: Parameters<typeof setInterval>) => {
          const interval = realSet(...args);
          running.add(interval);
          return interval;
        });
      const clearing = jest
        .spyOn(globalThis, 'clearInterval')
        .mockImplementation((interval: Parameters<typeof clearInterval>[0]) => {
          running.delete(interval);
          realClear(interval);
        });
      try {
        await cycles(500);
        await eventually(() => hub.streamCount === 0 && hub.channelCount === 0, 10_000);
        expect(starting.mock.calls.length).toBeGreaterThanOrEqual(500);
        expect(running.size).toBeLessThanOrEqual(2);
      } finally {
        starting.mockRestore();
        clearing.mockRestore();
      }
      // Live heap after a full collection (about 1.2 MB here): a leak of 8 kB a cycle would show.
      expect(liveHeapBytes() - heapBefore).toBeLessThan(4 * 1000 * 1000);
    }, 60_000);
  });
});
