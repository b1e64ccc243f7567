import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import type { Socket } from 'socket.io-client';
import { ChatClient } from './chat-client';
import {
  ClientEvent,
  ServerEvent,
  type AckResponse,
  type ClientToServerEvents,
  type ErrorBody,
  type JoinPayload,
  type JoinResult,
  type MessageJson,
  type NotificationJson,
  type RoomJson,
  type ServerToClientEvents,
} from './contract';
import { storedMessage } from './test-fixtures';

const ROOM = '0190b0b0-0000-7000-8000-0000000000aa';
const OTHER_ROOM = '0190b0b0-0000-7000-8000-0000000000bb';
const ROOM_LAST_SEQ = 3;

function room(id: string): RoomJson {
  return {
    id,
    name: id.slice(-2),
    isPrivate: true,
    ownerId: 'u9',
    createdAt: new Date(0).toISOString(),
    lastSeq: ROOM_LAST_SEQ,
  };
}

const message = (roomId: string, seq: number) => storedMessage(roomId, seq);

const removedFrom = (roomId: string): NotificationJson => ({
  type: 'room:removed',
  room: room(roomId),
  by: { id: 'u9', username: 'owner' },
});

const joinRefusal = (code: ErrorBody['code']): AckResponse<JoinResult> => ({
  ok: false,
  error: { code, message: code, details: [] },
});

/**
 * Plays the chat server over real Socket.IO: acks every join, unless told to
 * refuse the next ones, and records it per connection.
 */
class FakeChatServer {
  readonly joinsPerConnection: JoinPayload[][] = [];
  /** The rooms of every `chat:leave`, in order. */
  readonly leaves: string[] = [];
  /** Tokens handed over by `auth:renew`, in order. */
  readonly renewals: string[] = [];
  /** The connections of the next this many `auth:renew` are lost before they answer. */
  renewalsToDrop = 0;
  /** Answers for the next joins, before they are acked. */
  readonly refusals: AckResponse<JoinResult>[] = [];
  private constructor(
    private readonly http: HttpServer,
    readonly io: Server<ClientToServerEvents, ServerToClientEvents>,
  ) {
    io.on('connection', (socket) => {
      const joins: JoinPayload[] = [];
      this.joinsPerConnection.push(joins);
      socket.on(ClientEvent.Join, (payload, ack) => {
        const join = payload as JoinPayload;
        joins.push(join);
        ack?.(
          this.refusals.shift() ?? {
            ok: true,
            data: {
              room: room(join.roomId),
              members: [],
              membersTruncated: false,
              missed: [],
              truncated: false,
            },
          },
        );
      });
      socket.on(ClientEvent.Leave, ({ roomId }, ack) => {
        this.leaves.push(roomId);
        ack?.({ ok: true, data: {} });
      });
      socket.on(ClientEvent.Presence, (_payload, ack) => ack?.({ ok: true, data: { users: [] } }));
      socket.on(ClientEvent.RenewToken, ({ token }, ack) => {
        this.renewals.push(token);
        if (this.renewalsToDrop > 0) {
          this.renewalsToDrop -= 1;
          socket.conn.close();
          return;
        }
        ack?.({ ok: true, data: { userId: 'u', expiresAt: new Date().toISOString() } });
      });
    });
  }

  static async start(): Promise<FakeChatServer> {
    const http = createServer();
    const io = new Server<ClientToServerEvents, ServerToClientEvents>(http);
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    return new FakeChatServer(http, io);
  }

  get url(): string {
    return `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    await this.io.close();
  }
}

async function until(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function recordMessages(chat: ChatClient): MessageJson[] {
  const messages: MessageJson[] = [];
  chat.on('message', (delivered) => messages.push(delivered));
  return messages;
}

function recordLost(chat: ChatClient): string[] {
  const lost: string[] = [];
  chat.on('roomLost', ({ roomId }) => lost.push(roomId));
  return lost;
}

describe('ChatClient', () => {
  let server: FakeChatServer;
  let chat: ChatClient;
  const restCalls: string[] = [];

  beforeEach(async () => {
    server = await FakeChatServer.start();
    restCalls.length = 0;
    chat = new ChatClient({
      url: server.url,
      token: () => 't',
      backoff: { baseMs: 50, capMs: 100 },
      fetch: (url) => {
        restCalls.push(url);
        return Promise.resolve(new Response(JSON.stringify({ items: [], nextCursor: null })));
      },
    });
  });
  afterEach(async () => {
    chat.close();
    await server.close();
  });

  /** A client whose every REST history read is answered so. */
  const historyAnswering = (status: number, body: ErrorBody) =>
    new ChatClient({
      url: server.url,
      token: () => 't',
      fetch: () => Promise.resolve(new Response(JSON.stringify(body), { status })),
    });

  it('tells a failed catch-up apart from the server’s own errors', async () => {
    const down: ErrorBody = { code: 'UNAVAILABLE', message: 'down', details: [] };
    const failing = historyAnswering(503, down);
    try {
      const catchUps: Array<{ roomId: string; error: ErrorBody }> = [];
      const errors: ErrorBody[] = [];
      failing.on('catchUpFailed', (failure) => catchUps.push(failure));
      failing.on('error', (error) => errors.push(error));
      failing.connect();
      await failing.join(ROOM);
      server.io.emit(ServerEvent.Message, message(ROOM, ROOM_LAST_SEQ + 3));
      await until('the failed catch-up', () => catchUps.length === 1);
      const refusal: ErrorBody = { code: 'FORBIDDEN', message: 'Not in the room', details: [] };
      server.io.emit(ServerEvent.Error, refusal);
      await until('the server’s error', () => errors.length === 2);
      expect({ catchUps, errors }).toEqual({
        catchUps: [{ roomId: ROOM, error: down }],
        errors: [down, refusal],
      });
    } finally {
      failing.close();
    }
  }, 5_000);

  it('names the room a catch-up failed for, and says when it has caught up', async () => {
    const down: ErrorBody = { code: 'UNAVAILABLE', message: 'down', details: [] };
    const missed = [message(ROOM, ROOM_LAST_SEQ + 1), message(ROOM, ROOM_LAST_SEQ + 2)];
    const answers = [
      new Response(JSON.stringify(down), { status: 503 }),
      new Response(JSON.stringify({ items: missed, nextCursor: null })),
    ];
    const recovering = new ChatClient({
      url: server.url,
      token: () => 't',
      fetch: () => Promise.resolve(answers.shift()!),
    });
    try {
      const told: string[] = [];
      recovering.on('catchUpFailed', ({ roomId }) => told.push(`failed ${roomId}`));
      recovering.on('caughtUp', ({ roomId }) => told.push(`caught up ${roomId}`));
      const messages = recordMessages(recovering);
      recovering.connect();
      await recovering.join(ROOM);
      server.io.emit(ServerEvent.Message, message(ROOM, ROOM_LAST_SEQ + 3));
      await until('the catch-up', () => told.length === 2);
      expect(told).toEqual([`failed ${ROOM}`, `caught up ${ROOM}`]);
      expect(messages.map((m) => m.seq)).toEqual([4, 5, 6]);
    } finally {
      recovering.close();
    }
  }, 5_000);

  it('drops a room whose missed messages REST refuses for good, and tells the app', async () => {
    const gone: ErrorBody = { code: 'NOT_FOUND', message: 'Room not found', details: [] };
    const refused = historyAnswering(404, gone);
    try {
      const lost = recordLost(refused);
      refused.connect();
      await refused.join(ROOM);
      // A gap: the feed asks REST for what is missing.
      server.io.emit(ServerEvent.Message, message(ROOM, ROOM_LAST_SEQ + 3));
      await until('the room lost', () => lost.length === 1);
      expect(lost).toEqual([ROOM]);
      expect(refused.lastSeq(ROOM)).toBeUndefined();
    } finally {
      refused.close();
    }
  }, 5_000);

  it('stops treating a room it was removed from as joined, and passes the notification on', async () => {
    const notifications: NotificationJson[] = [];
    const messages: MessageJson[] = [];
    chat.on('notification', (notification) => notifications.push(notification));
    chat.on('message', (delivered) => messages.push(delivered));
    chat.connect();
    await Promise.all([chat.join(ROOM), chat.join(OTHER_ROOM)]);

    server.io.emit(ServerEvent.Notification, removedFrom(ROOM));
    await until('the notification', () => notifications.length === 1);
    expect(notifications).toEqual([removedFrom(ROOM)]);
    expect(chat.lastSeq(ROOM)).toBeUndefined();

    // A message that would open a gap in a joined room: neither delivered nor filled.
    server.io.emit(ServerEvent.Message, message(ROOM, ROOM_LAST_SEQ + 5));
    server.io.emit(ServerEvent.Message, message(OTHER_ROOM, ROOM_LAST_SEQ + 1));
    await until('the other room’s message', () => messages.length === 1);
    expect(messages.map((delivered) => delivered.roomId)).toEqual([OTHER_ROOM]);
    expect(restCalls).toEqual([]);

    server.io.disconnectSockets(true);
    await until(
      'a second connection’s joins',
      () => (server.joinsPerConnection[1]?.length ?? 0) > 0,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(server.joinsPerConnection[1].map((join) => join.roomId)).toEqual([OTHER_ROOM]);
  });

  it('joins again after a reconnect with the last seq delivered as since', async () => {
    const messages = recordMessages(chat);
    chat.connect();
    await chat.join(ROOM);
    server.io.emit(ServerEvent.Message, message(ROOM, ROOM_LAST_SEQ + 1));
    await until('the live message', () => messages.length === 1);

    server.io.disconnectSockets(true);
    await until('the re-join', () => server.joinsPerConnection[1]?.length === 1);
    expect(server.joinsPerConnection).toEqual([
      [{ roomId: ROOM }],
      [{ roomId: ROOM, since: ROOM_LAST_SEQ + 1 }],
    ]);
  });

  it('leaves a room: the server is told, and only the other room is joined after a reconnect', async () => {
    chat.connect();
    await Promise.all([chat.join(ROOM), chat.join(OTHER_ROOM)]);
    await chat.leave(ROOM);
    expect(server.leaves).toEqual([ROOM]);
    server.io.disconnectSockets();
    await until('the second connection’s join', () => server.joinsPerConnection[1]?.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(server.joinsPerConnection[1]).toEqual([{ roomId: OTHER_ROOM, since: ROOM_LAST_SEQ }]);
    expect(chat.lastSeq(ROOM)).toBeUndefined();
  });

  it('joins a room joined from a listener of the connected state once', async () => {
    chat.on('state', (state) => {
      if (state.status === 'connected') void chat.join(ROOM);
    });
    chat.connect();
    await until('the join', () => (server.joinsPerConnection[0]?.length ?? 0) >= 1);
    await chat.presence(ROOM); // a round trip behind any second join
    expect(server.joinsPerConnection).toEqual([[{ roomId: ROOM }]]);
  });

  it('counts the clientMsgId it adds in the size a message is refused over', async () => {
    const limit = 1_024;
    const sized = new ChatClient({ url: server.url, token: () => 't', maxPayloadBytes: limit });
    try {
      // Fits as given, with room for the envelope; not once the id is added.
      const bare = JSON.stringify({ roomId: ROOM, text: '' }).length + 64;
      const text = 'x'.repeat(limit - bare);
      await expect(sized.send(ROOM, text)).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
      expect(sized.pendingMessages).toEqual([]);
    } finally {
      sized.close();
    }
  });

  it('fails a request the server never answers with the contract’s UNAVAILABLE', async () => {
    server.io.removeAllListeners('connection');
    const quiet = new ChatClient({ url: server.url, token: () => 't', ackTimeoutMs: 50 });
    try {
      quiet.connect();
      await until('the connection', () => quiet.state.status === 'connected');
      await expect(quiet.presence(ROOM)).rejects.toMatchObject({
        name: 'ChatError',
        code: 'UNAVAILABLE',
      });
    } finally {
      quiet.close();
    }
  });

  it.each(['RATE_LIMITED', 'UNAVAILABLE'] as const)(
    'retries a join the server refused with %s, and resolves once it is accepted',
    async (code) => {
      const lost = recordLost(chat);
      server.refusals.push(joinRefusal(code));
      chat.connect();
      await expect(chat.join(ROOM)).resolves.toMatchObject({ room: { id: ROOM } });
      expect(server.joinsPerConnection).toEqual([[{ roomId: ROOM }, { roomId: ROOM }]]);
      expect(lost).toEqual([]);
    },
  );

  it('drops a room whose join the server fails on three times, as it drops such a message', async () => {
    const lost = recordLost(chat);
    server.refusals.push(...(['INTERNAL', 'INTERNAL', 'INTERNAL'] as const).map(joinRefusal));
    chat.connect();
    await until('the connection', () => chat.state.status === 'connected');
    // Each retry at once: the backoff draws its delays from Math.random.
    const random = jest.spyOn(Math, 'random').mockReturnValue(0);
    try {
      await expect(chat.join(ROOM)).rejects.toMatchObject({ code: 'INTERNAL' });
    } finally {
      random.mockRestore();
    }
    expect(server.joinsPerConnection).toEqual([
      [{ roomId: ROOM }, { roomId: ROOM }, { roomId: ROOM }],
    ]);
    expect(lost).toEqual([ROOM]);
  });

  it('fails a join still waiting for a connection when closed', async () => {
    const joining = chat.join(ROOM);
    chat.close();
    await expect(joining).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: 'The client was closed',
    });
  }, 5_000);

  it('refuses joins and sends asked for after close(), until connected again', async () => {
    chat.connect();
    chat.close();
    const refused = { name: 'ChatError', code: 'UNAVAILABLE', message: 'The client was closed' };
    await expect(chat.join(ROOM)).rejects.toMatchObject(refused);
    await expect(chat.send(ROOM, 'after close')).rejects.toMatchObject(refused);
    chat.connect();
    await expect(chat.join(ROOM)).resolves.toMatchObject({ room: { id: ROOM } });
  }, 5_000);

  it('does not send on the next connection what was buffered for the closed one', async () => {
    const received: string[] = [];
    server.io.on('connection', (socket) =>
      socket.on(ClientEvent.Message, (payload) => received.push(payload.text)),
    );
    chat.connect();
    await until('the connection', () => chat.state.status === 'connected');
    // A laptop waking from sleep: connected in name, its pings lapsed, so emits are buffered.
    const { engine } = (chat as unknown as { socket: Socket }).socket.io;
    (engine as unknown as { _hasPingExpired(): boolean })._hasPingExpired = () => true;
    const sending = chat.send(ROOM, 'written before close()');
    chat.close();
    await expect(sending).rejects.toMatchObject({ code: 'UNAVAILABLE' });

    chat.connect();
    await until('the connection', () => chat.state.status === 'connected');
    await chat.presence(ROOM);
    expect(received).toEqual([]);
  }, 5_000);

  it('sends on the next connection nothing buffered for the lost one: a room left meanwhile stays left', async () => {
    // The next connection waits for its token until the room is left: a reconnect may otherwise
    // come (full jitter) before the test has seen the disconnect.
    let away: Promise<void> | undefined;
    let comeBack = () => undefined as void;
    const waking = new ChatClient({
      url: server.url,
      token: async () => {
        await away;
        return 't';
      },
      backoff: { baseMs: 50, capMs: 100 },
    });
    try {
      waking.connect();
      await until('the connection', () => waking.state.status === 'connected');
      await waking.join(ROOM);
      // A laptop waking from sleep: connected in name, its pings lapsed, so emits are buffered.
      const { engine } = (waking as unknown as { socket: Socket }).socket.io;
      (engine as unknown as { _hasPingExpired(): boolean })._hasPingExpired = () => true;
      const joining = waking.join(OTHER_ROOM);
      away = new Promise<void>((resolve) => (comeBack = resolve));
      for (const socket of server.io.sockets.sockets.values()) socket.conn.close();
      await until('the disconnect', () => waking.state.status !== 'connected');
      await waking.leave(OTHER_ROOM);
      await expect(joining).rejects.toMatchObject({ code: 'CONFLICT' });

      comeBack();
      await until('the next connection', () => waking.state.status === 'connected');
      await waking.presence(ROOM);
      expect(server.joinsPerConnection[1].map((join) => join.roomId)).toEqual([ROOM]);
    } finally {
      waking.close();
    }
  }, 5_000);

  it('hands a token given while not connected to the next connection, and not one given after close()', async () => {
    await expect(chat.renewToken('fresh')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    chat.connect();
    await until('the renewal', () => server.renewals.length === 1);
    expect(server.renewals).toEqual(['fresh']);

    chat.close();
    await expect(chat.renewToken('of the user before')).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: 'The client was closed',
    });
    chat.connect();
    await until('the connection', () => chat.state.status === 'connected');
    await chat.presence(ROOM);
    expect(server.renewals).toEqual(['fresh']);
  }, 5_000);

  it('sends nothing on the next connection from socket.io retries given in socketOptions', async () => {
    const received: string[] = [];
    server.io.on('connection', (socket) =>
      socket.on(ClientEvent.Message, (payload) => received.push(payload.text)),
    );
    const retrying = new ChatClient({
      url: server.url,
      token: () => 't',
      socketOptions: { retries: 3, ackTimeout: 50 },
    });
    try {
      retrying.connect();
      await until('the connection', () => retrying.state.status === 'connected');
      const sending = retrying.send(ROOM, 'never answered');
      await until('the message', () => received.length === 1);
      retrying.close();
      await expect(sending).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      retrying.connect();
      await until('the connection', () => retrying.state.status === 'connected');
      // A round trip: socket.io sends what it queued on connect, before anything sent after.
      await retrying.presence(ROOM);
      expect(received).toEqual(['never answered']);
    } finally {
      retrying.close();
    }
  }, 5_000);

  it('hands a token to the next connection when this one is lost before it answers, until one does', async () => {
    server.renewalsToDrop = 2;
    chat.connect();
    await until('the connection', () => chat.state.status === 'connected');
    await expect(chat.renewToken('fresh')).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringContaining('The connection was lost before an answer'),
    });
    await until('the renewal answered', () => server.renewals.length === 3);
    expect(server.renewals).toEqual(['fresh', 'fresh', 'fresh']);
    // Answered: the next connection is not handed it again.
    server.io.disconnectSockets();
    await until(
      'the next connection',
      () => server.joinsPerConnection.length === 4 && chat.state.status === 'connected',
    );
    await chat.presence(ROOM);
    expect(server.renewals).toEqual(['fresh', 'fresh', 'fresh']);
  }, 5_000);

  it('stays closed when asked to reconnect at once after close()', async () => {
    chat.connect();
    await until('the connection', () => chat.state.status === 'connected');
    chat.close();
    chat.reconnectNow();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(chat.state).toEqual({ status: 'offline', reason: 'closed' });
  }, 5_000);

  it('fails a first join still pending when the removal arrives', async () => {
    server.io.removeAllListeners('connection');
    server.io.on('connection', (socket) => {
      socket.on(ClientEvent.Join, () => {
        socket.emit(ServerEvent.Notification, removedFrom(ROOM));
      });
    });
    chat.connect();
    await expect(chat.join(ROOM)).rejects.toMatchObject({ code: 'FORBIDDEN' });
  }, 5_000);
});
