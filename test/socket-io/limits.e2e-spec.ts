import request from 'supertest';
import { WebSocket } from 'ws';
import { ConfigService } from '@nestjs/config';
import { TokenService } from '@app/auth/token.service';
import type { AllConfig } from '@app/config/app-config';
import type { RoomJson } from '@app/contract/models';
import type { AckResponse } from '@app/contract/socket-events';
import { createRoom, registerUser, type TestUser } from '../support/api';
import { databaseKinds } from '../support/databases';
import { REFUSED_SESSION_GRACE_MS } from '@app/realtime/session-budget';
import { holdNextCall } from '../support/hold';
import { RoomsService } from '@app/rooms/rooms.service';
import {
  collect,
  connectSocket,
  emitAck,
  emitOk,
  eventually,
  sleep,
  type ClientSocket,
  socketPool,
} from '../support/sockets';
import { startTestApp, type TestApp } from '../support/test-app';

type ConnectError = Error & { data?: { code: string } };

describe.each(databaseKinds())('Socket.IO limits (%s)', (kind) => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  const sockets = socketPool(() => t.url);

  beforeAll(async () => {
    t = await startTestApp(kind, {
      RATE_LIMIT_CHAT_MESSAGE: '5/10s',
      RATE_LIMIT_CHAT_TYPING: '2/1s',
      MAX_ROOMS_PER_CONNECTION: '2',
      MAX_SOCKETS_PER_USER: '2',
    });
    ada = await registerUser(t.url);
    bob = await registerUser(t.url);
  });
  afterEach(() => sockets.closeAll());
  afterAll(() => t.close());

  const connect = (user: TestUser) => sockets.connect(user);

  it('refuses messages over the budget with RATE_LIMITED, stores none of them, and leaves other users alone', async () => {
    const room = await createRoom(t.url, ada);
    const adaSocket = await connect(ada);
    const bobSocket = await connect(bob);
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        emitAck(adaSocket, 'chat:message', { roomId: room.id, text: `flood ${i}` }),
      ),
    );
    expect(answers.filter((answer) => answer.ok)).toHaveLength(5);
    for (const answer of answers.filter((a) => !a.ok)) {
      expect(answer).toEqual({
        ok: false,
        error: { code: 'RATE_LIMITED', message: expect.any(String), details: [] },
      });
    }
    const bobAnswer = await emitOk<{ seq: number }>(bobSocket, 'chat:message', {
      roomId: room.id,
      text: 'unaffected',
    });
    expect(bobAnswer.seq).toBe(6);
    const history = await request(t.url)
      .get(`/api/rooms/${room.id}/messages?since=0`)
      .set('Authorization', `Bearer ${ada.token}`);
    expect(history.body.items.map((m: { seq: number }) => m.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('counts REST sends against the same budget as live ones', async () => {
    const erin = await registerUser(t.url);
    const room = await createRoom(t.url, erin);
    const socket = await connect(erin);
    for (let i = 0; i < 3; i += 1)
      await emitOk(socket, 'chat:message', { roomId: room.id, text: `live ${i}` });
    const post = (text: string) =>
      request(t.url)
        .post(`/api/rooms/${room.id}/messages`)
        .set('Authorization', `Bearer ${erin.token}`)
        .send({ text });
    expect((await post('rest 1')).status).toBe(201);
    expect((await post('rest 2')).status).toBe(201);
    const refused = await post('rest 3');
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ code: 'RATE_LIMITED' });
    const live = await emitAck(socket, 'chat:message', { roomId: room.id, text: 'live 3' });
    expect(live).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
    const history = await request(t.url)
      .get(`/api/rooms/${room.id}/messages?since=0`)
      .set('Authorization', `Bearer ${erin.token}`);
    expect(history.body.items).toHaveLength(5);
  });

  it('limits typing per user, over all of the user’s sockets', async () => {
    const room = await createRoom(t.url, ada);
    const sockets = [await connect(ada), await connect(ada)];
    for (const socket of sockets) await emitOk(socket, 'chat:join', room.id);
    const answers = await Promise.all(
      [0, 1, 0].map((which) => emitAck(sockets[which], 'chat:typing', { roomId: room.id })),
    );
    // All three are in flight at once: whichever two come first pass.
    expect(answers.filter((answer) => answer.ok)).toHaveLength(2);
    expect(answers.find((answer) => !answer.ok)).toEqual({
      ok: false,
      error: expect.objectContaining({ code: 'RATE_LIMITED' }),
    });
  });

  it('caps the rooms one socket may join', async () => {
    const socket = await connect(bob);
    const rooms = await Promise.all([1, 2, 3].map(() => createRoom(t.url, bob)));
    await emitOk(socket, 'chat:join', rooms[0].id);
    await emitOk(socket, 'chat:join', rooms[1].id);
    const third = await emitAck(socket, 'chat:join', rooms[2].id);
    expect(third).toEqual({ ok: false, error: expect.objectContaining({ code: 'FORBIDDEN' }) });
    await emitOk(socket, 'chat:join', rooms[1].id);
    await emitOk(socket, 'chat:leave', { roomId: rooms[0].id });
    await emitOk(socket, 'chat:join', rooms[2].id);
  });

  it('caps the rooms of a socket that asks for them all at once', async () => {
    const socket = await connect(bob);
    const rooms = await Promise.all([1, 2, 3].map(() => createRoom(t.url, bob)));
    const answers = await Promise.all(
      rooms.map((room) => emitAck(socket, 'chat:join', { roomId: room.id })),
    );
    // Joins of different rooms run side by side: which one comes last is not fixed.
    expect(answers.filter((answer) => answer.ok)).toHaveLength(2);
    expect(answers.filter((answer) => !answer.ok)).toEqual([
      { ok: false, error: expect.objectContaining({ code: 'FORBIDDEN' }) },
    ]);
  });

  it('caps concurrent sockets per user, and frees the slot on disconnect', async () => {
    const carol = await registerUser(t.url);
    const first = await connect(carol);
    await connect(carol);
    const error = await connectSocket(t.url, carol.token).then(
      () => {
        throw new Error('connected');
      },
      (e: ConnectError) => e,
    );
    expect(error.data?.code).toBe('RATE_LIMITED');
    first.close();
    // Once the server has seen the close, the slot is free again.
    await eventually(() =>
      connect(carol).then(
        () => true,
        () => false,
      ),
    );
  });

  it('frees the slot of a client that left while its handshake ran', async () => {
    const dave = await registerUser(t.url);
    const verifying = holdNextCall(t.app.get(TokenService), 'verify');

    const raw = new WebSocket(
      `${t.url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`,
    );
    raw.on('error', () => undefined);
    await new Promise((resolve) => raw.once('open', resolve));
    raw.send(`40${JSON.stringify({ token: dave.token })}`);
    await verifying.started;
    raw.terminate();
    await sleep(100);
    verifying.release();
    await sleep(100);

    await connect(dave);
    await connect(dave);
  });
});

describe.each(databaseKinds())('Socket.IO connection attempts per address (%s)', (kind) => {
  it('refuses connection attempts over the budget with RATE_LIMITED', async () => {
    const t = await startTestApp(kind, { RATE_LIMIT_CONNECTIONS_PER_IP: '3/60s' });
    const sockets: ClientSocket[] = [];
    try {
      const user = await registerUser(t.url);
      for (let i = 0; i < 3; i += 1) sockets.push(await connectSocket(t.url, user.token));
      const error = await connectSocket(t.url, user.token).then(
        () => {
          throw new Error('connected');
        },
        (e: ConnectError) => e,
      );
      expect(error.data?.code).toBe('RATE_LIMITED');
    } finally {
      sockets.forEach((socket) => socket.close());
      await t.close();
    }
  });

  it('counts Engine.IO sessions that never connect, and closes those over the budget', async () => {
    const t = await startTestApp(kind, { RATE_LIMIT_CONNECTIONS_PER_IP: '3/60s' });
    try {
      const user = await registerUser(t.url);
      const sessions: string[] = [];
      for (let i = 0; i < 4; i += 1) sessions.push(await openPollingSession(t.url));

      const error = await connectSocket(t.url, user.token).then(
        () => {
          throw new Error('connected');
        },
        (e: ConnectError) => e,
      );
      expect(error.data?.code).toBe('RATE_LIMITED');
      await sleep(REFUSED_SESSION_GRACE_MS + 500);
      const open = await Promise.all(sessions.map((sid) => sessionOpen(t.url, sid)));
      expect(open).toEqual([true, true, true, false]);
    } finally {
      await t.close();
    }
  }, 20_000);
});

const JOIN_ALL_WAIT_MS = 20_000;

describe('Socket.IO events waiting behind a join', () => {
  const LIMIT_BYTES = 128 * 1024;
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp('sqlite', { SLOW_CONSUMER_LIMIT_BYTES: String(LIMIT_BYTES) });
  });
  afterAll(() => t.close());

  /** A new user's socket whose join of a room of theirs is held in its admission: what it sends next waits. */
  const joinHeld = async () => {
    const ada = await registerUser(t.url);
    const room = await createRoom(t.url, ada);
    const socket = await connectSocket(t.url, ada.token);
    const joining = holdNextCall(t.app.get(RoomsService), 'admit');
    const joined = emitAck(socket, 'chat:join', { roomId: room.id });
    await joining.started;
    return { ada, room, socket, joining, joined };
  };

  it('hold at most the slow-consumer limit: later ones are refused with UNAVAILABLE, and the held ones still run in order', async () => {
    const { ada, room, socket, joining, joined } = await joinHeld();
    try {
      // About 16 kB each as JSON: a few fit in what a socket's waiting events may hold.
      const text = (i: number) => `${i} ${'\u{1F600}'.repeat(3990)}`;
      const sent = 20;
      const answers = Array.from({ length: sent }, (_, i) =>
        emitAck<{ seq: number; text: string }>(socket, 'chat:message', {
          roomId: room.id,
          text: text(i),
        }),
      );
      const errors = collect<unknown>(socket, 'error');
      socket.emit('chat:typing', { roomId: room.id, padding: 'x'.repeat(60_000) } as never);
      await eventually(() => errors.length === 1);
      joining.release();

      expect(await joined).toMatchObject({ ok: true });
      const settled = await Promise.all(answers);
      const taken = settled.filter((answer) => answer.ok);
      const fitting = Math.floor(LIMIT_BYTES / Buffer.byteLength(JSON.stringify(text(10))));
      expect(taken.length).toBeGreaterThanOrEqual(fitting - 1);
      expect(taken.length).toBeLessThanOrEqual(fitting + 1);
      // The first ones, each stored in the order sent; all the rest refused, none stored.
      expect(settled.slice(0, taken.length)).toEqual(taken);
      expect(taken.map((answer) => answer.ok && answer.data.seq)).toEqual(
        taken.map((_, i) => i + 1),
      );
      const refusal = {
        code: 'UNAVAILABLE',
        message: 'Too many events waiting to be handled: send it again later',
        details: [],
      };
      expect(new Set(settled.slice(taken.length).map((answer) => JSON.stringify(answer)))).toEqual(
        new Set([JSON.stringify({ ok: false, error: refusal })]),
      );
      expect(errors).toEqual([refusal]);
      const history = await request(t.url)
        .get(`/api/rooms/${room.id}/messages?since=0&limit=200`)
        .set('Authorization', `Bearer ${ada.token}`);
      expect(history.body.items.map((message: { text: string }) => message.text)).toEqual(
        taken.map((_, i) => text(i)),
      );
      // Nothing waits any more: the next event is taken at once.
      expect(await emitOk(socket, 'chat:typing', { roomId: room.id })).toEqual({});
    } finally {
      socket.close();
    }
  });

  it('measures a waiting event nested deeper than JSON can be written again, and refuses it as too deep', async () => {
    const { room, socket, joining, joined } = await joinHeld();
    try {
      const errors = collect<unknown>(socket, 'error');
      // No client writes this (its own JSON.stringify would overflow its stack): sent as raw packet text.
      const depth = 30_000;
      const deep = '['.repeat(depth) + ']'.repeat(depth);
      socket.io.engine.write(`2["chat:message",{"roomId":"${room.id}","text":${deep}}]`);
      await sleep(100);
      joining.release();

      expect(await joined).toMatchObject({ ok: true });
      await eventually(() => errors.length === 1);
      expect(errors).toEqual([
        { code: 'VALIDATION_FAILED', message: expect.stringContaining('nested'), details: [] },
      ]);
      expect(await emitOk(socket, 'chat:typing', { roomId: room.id })).toEqual({});
    } finally {
      socket.close();
    }
  });
});

describe('Socket.IO join budget by default', () => {
  it('lets a connection that holds the most rooms it may rejoin all of them after a reconnect', async () => {
    const t = await startTestApp('sqlite');
    try {
      const config = t.app.get(ConfigService<AllConfig, true>);
      const mostRooms = config.get('realtime.maxRoomsPerConnection', { infer: true });
      const user = await registerUser(t.url);
      const rooms: RoomJson[] = [];
      for (let i = 0; i < mostRooms; i += 1) rooms.push(await createRoom(t.url, user));
      const joinAll = async (since?: number) => {
        const socket = await connectSocket(t.url, user.token);
        // A hundred joins answered one after another: on a busy machine the
        // last takes longer than the usual few seconds, and none may fail.
        const answers: AckResponse<unknown>[] = await Promise.all(
          rooms.map((room) =>
            socket.timeout(JOIN_ALL_WAIT_MS).emitWithAck('chat:join', { roomId: room.id, since }),
          ),
        );
        socket.close();
        return answers.filter((answer) => !answer.ok);
      };

      expect(await joinAll()).toEqual([]);
      expect(await joinAll(0)).toEqual([]);
    } finally {
      await t.close();
    }
  }, 60_000);
});

const pollingUrl = (url: string) => `${url}/socket.io/?EIO=4&transport=polling`;

/** An Engine.IO session opened by its polling handshake, and nothing more: its id. */
async function openPollingSession(url: string): Promise<string> {
  const response = await fetch(pollingUrl(url));
  const open = JSON.parse((await response.text()).slice(1)) as { sid: string };
  return open.sid;
}

const CLOSE_PACKET = '1';

/** Whether the session is still open: gone (400) or closing (a close packet among the polled) is closed. */
async function sessionOpen(url: string, sid: string): Promise<boolean> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 200);
  try {
    const response = await fetch(`${pollingUrl(url)}&sid=${sid}`, { signal: controller.signal });
    const packets = (await response.text()).split('\x1e');
    return response.status === 200 && !packets.includes(CLOSE_PACKET);
  } catch {
    return true; // a long poll nothing has answered yet
  } finally {
    clearTimeout(timer);
  }
}
