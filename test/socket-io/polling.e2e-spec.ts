import { io, type ManagerOptions, type SocketOptions } from 'socket.io-client';
import type { MessageJson } from '@app/contract/models';
import type { UserJoinedEvent } from '@app/contract/socket-events';
import { createRoom, registerUser, type TestUser } from '../support/api';
import {
  collect,
  emitOk,
  eventually,
  nextEvent,
  socketPool,
  type ClientSocket,
} from '../support/sockets';
import { metricValue } from '../support/metrics';
import { startTestApp, type TestApp } from '../support/test-app';

/**
 * A client as the seed's front end writes it: `io(url, { auth: { token } })`
 * with Socket.IO's default transports (long-polling first, then the upgrade
 * to WebSocket), a bare room id for `chat:join`, and no acks at all.
 */
function seedClient(
  url: string,
  token: string,
  options: Partial<ManagerOptions & SocketOptions> = {},
): ClientSocket {
  return io(url, { auth: { token }, forceNew: true, reconnection: false, ...options });
}

describe('Socket.IO over long-polling, as the seed client connects', () => {
  let t: TestApp;
  let owner: TestUser;
  const sockets = socketPool(() => t.url);
  const seeds: ClientSocket[] = [];

  beforeAll(async () => {
    t = await startTestApp('sqlite');
    owner = await registerUser(t.url);
  });
  afterEach(async () => {
    sockets.closeAll();
    seeds.splice(0).forEach((socket) => socket.close());
    // Until the server has seen them go: a polling session still open when the app closes
    // would hold the process for Engine.IO's 30 s close timeout.
    await eventually(async () => (await openSockets()) === 0);
  });
  afterAll(() => t.close());

  const openSockets = () => metricValue(t.url, 'realtime_connections{transport="socket.io"}');

  it.each<[string, Partial<ManagerOptions & SocketOptions>, 'websocket' | 'polling']>([
    ['the default transports (polling, then the upgrade)', {}, 'websocket'],
    ['polling only', { transports: ['polling'] }, 'polling'],
  ])(
    'joins with a bare room id and sends without acks over %s',
    async (_case, options, finalTransport) => {
      const room = await createRoom(t.url, owner);
      const member = await sockets.connect(owner); // WebSocket only, the other member
      await emitOk(member, 'chat:join', room.id);
      const memberGets = collect<MessageJson>(member, 'chat:message');

      const seedUser = await registerUser(t.url);
      const seed = seedClient(t.url, seedUser.token, options);
      seeds.push(seed);
      // Long-polling first, whatever comes later.
      expect(seed.io.engine.transport.name).toBe('polling');
      const upgrades: string[] = [];
      seed.io.engine.on('upgrade', (transport) => upgrades.push(transport.name));
      const errors = collect(seed, 'error');
      const seedGets = collect<MessageJson>(seed, 'chat:message');
      await new Promise<void>((resolve, reject) => {
        seed.once('connect', resolve);
        seed.once('connect_error', reject);
      });

      const joined = nextEvent<UserJoinedEvent>(member, 'chat:userJoined');
      seed.emit('chat:join', room.id);
      // The contract's shape, and the bare user of the reference server for its clients.
      expect(await joined).toEqual({
        roomId: room.id,
        user: { id: seedUser.id, username: seedUser.username },
        id: seedUser.id,
        username: seedUser.username,
      });
      if (finalTransport === 'websocket') await eventually(() => upgrades.length === 1);

      seed.emit('chat:message', { roomId: room.id, text: `over ${finalTransport}` });
      await eventually(() => memberGets.length === 1);
      expect(memberGets[0]).toMatchObject({
        roomId: room.id,
        seq: 1,
        userId: seedUser.id,
        text: `over ${finalTransport}`,
      });
      // The sender is a member too, and receives its own message on its transport.
      await eventually(() => seedGets.length === 1);
      expect(seedGets).toEqual(memberGets);

      // And what the other member sends comes back to the seed client.
      const reply = await emitOk<MessageJson>(member, 'chat:message', {
        roomId: room.id,
        text: 'reply',
      });
      await eventually(() => seedGets.length === 2);
      expect(seedGets[1]).toEqual(reply);
      expect(seed.io.engine.transport.name).toBe(finalTransport);
      expect(upgrades).toEqual(finalTransport === 'websocket' ? ['websocket'] : []);
      expect(errors).toEqual([]);
    },
  );

  /**
   * Engine.IO long-polling by hand, to control when the client asks for
   * packets: between two polls the server has no request to write to, which
   * is when a volatile packet is dropped and any other is kept for the next.
   */
  class ManualPolling {
    private constructor(private readonly endpoint: string) {}

    static async open(url: string, token: string): Promise<ManualPolling> {
      const base = `${url}/socket.io/?EIO=4&transport=polling`;
      const handshake = await (await fetch(base)).text();
      const { sid } = JSON.parse(handshake.slice(1)) as { sid: string };
      const polling = new ManualPolling(`${base}&sid=${sid}`);
      await polling.send(`40${JSON.stringify({ token })}`);
      expect((await polling.poll())[0]).toMatch(/^40/);
      return polling;
    }

    async send(...packets: string[]): Promise<void> {
      const response = await fetch(this.endpoint, { method: 'POST', body: packets.join('\x1e') });
      expect(await response.text()).toBe('ok');
    }

    /** The packets waiting for this client, as Engine.IO packs them into one answer. */
    async poll(): Promise<string[]> {
      return (await (await fetch(this.endpoint)).text()).split('\x1e');
    }

    close(): Promise<void> {
      return this.send('1');
    }
  }

  it.each([
    ['the default transports', {}],
    ['polling only', { transports: ['polling'] }],
  ])(
    'refuses a bad token over %s with connect_error "Authentication failed"',
    async (_, options) => {
      const refused = seedClient(t.url, 'not-a-token', options);
      seeds.push(refused);
      const error = await new Promise<Error & { data?: unknown }>((resolve) =>
        refused.once('connect_error', resolve),
      );
      expect(error.message).toBe('Authentication failed');
      expect(error.data).toEqual({
        code: 'UNAUTHORIZED',
        message: expect.any(String),
        details: [],
      });
      expect(refused.connected).toBe(false);
    },
  );

  it('drops chat:typing for a client that cannot take it now, and keeps messages for it', async () => {
    const room = await createRoom(t.url, owner);
    const reader = await registerUser(t.url);
    const polling = await ManualPolling.open(t.url, reader.token);
    try {
      await polling.send(`421${JSON.stringify(['chat:join', room.id])}`);
      expect((await polling.poll()).some((packet) => packet.startsWith('431'))).toBe(true);

      // No poll pending from here on: the server cannot write to the reader.
      const typist = await sockets.connect(owner);
      await emitOk(typist, 'chat:join', room.id);
      await emitOk(typist, 'chat:typing', { roomId: room.id });
      await emitOk(typist, 'chat:message', { roomId: room.id, text: 'kept for you' });

      const events = (await polling.poll())
        .filter((packet) => packet.startsWith('42'))
        .map((packet) => (JSON.parse(packet.slice(2)) as [string, unknown])[0]);
      expect(events).toContain('chat:message');
      expect(events).not.toContain('chat:typing');
    } finally {
      await polling.close();
    }
  });
});
