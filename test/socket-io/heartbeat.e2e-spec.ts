import { io } from 'socket.io-client';
import { WebSocket } from 'ws';
import type { RoomUserEvent } from '@app/contract/socket-events';
import { createRoom, registerUser, type TestUser } from '../support/api';
import {
  connectSocket,
  emitOk,
  eventually,
  nextEvent,
  type ClientSocket,
} from '../support/sockets';
import { metricValue } from '../support/metrics';
import { startTestApp, type TestApp } from '../support/test-app';

const PING_INTERVAL_MS = 1_000;
const PING_TIMEOUT_MS = 1_500;

interface OpenPacket {
  sid: string;
  upgrades: string[];
  pingInterval: number;
  pingTimeout: number;
  maxPayload: number;
}

/**
 * An Engine.IO v4 client over a bare WebSocket that speaks the Socket.IO
 * packets it needs itself and never answers the server's pings ("2").
 */
class SilentEngineClient {
  readonly packets: string[] = [];
  readonly pings: number[] = [];
  /** When Engine.IO's open packet came in, which starts the server's ping timer. */
  openedAt = 0;
  readonly closed: Promise<number>;
  private readonly socket: WebSocket;

  constructor(url: string) {
    this.socket = new WebSocket(
      `${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`,
    );
    this.socket.on('error', () => undefined);
    this.socket.on('message', (data: Buffer) => {
      const packet = data.toString('utf8');
      if (packet === '2') this.pings.push(Date.now());
      else this.packets.push(packet);
      // Read here, not once a poll of `next` finds it, which a loaded machine delays.
      if (packet.startsWith('0') && this.openedAt === 0) this.openedAt = Date.now();
    });
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve(Date.now())));
  }

  send(packet: string): void {
    this.socket.send(packet);
  }

  async next(prefix: string, timeoutMs = 5_000): Promise<string> {
    let found: string | undefined;
    await eventually(() => {
      const index = this.packets.findIndex((packet) => packet.startsWith(prefix));
      if (index !== -1) found = this.packets.splice(index, 1)[0];
      return found !== undefined;
    }, timeoutMs);
    return found!.slice(prefix.length);
  }

  get open(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  terminate(): void {
    this.socket.terminate();
  }
}

describe('Socket.IO heartbeat', () => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  const open: Array<ClientSocket | SilentEngineClient> = [];

  beforeAll(async () => {
    t = await startTestApp('sqlite', {
      WS_PING_INTERVAL_MS: String(PING_INTERVAL_MS),
      WS_PING_TIMEOUT_MS: String(PING_TIMEOUT_MS),
    });
    ada = await registerUser(t.url);
    bob = await registerUser(t.url);
  });
  afterEach(async () => {
    open
      .splice(0)
      .forEach((client) =>
        client instanceof SilentEngineClient ? client.terminate() : client.close(),
      );
    // Until the server has seen them go: a polling session still open when the app closes
    // would hold the process for Engine.IO's 30 s close timeout.
    await eventually(async () => (await openSockets()) === 0);
  });
  afterAll(() => t.close());

  const openSockets = () => metricValue(t.url, 'realtime_connections{transport="socket.io"}');

  it('announces the configured pingInterval and pingTimeout in the open packet, on polling and WebSocket', async () => {
    const polling = io(t.url, {
      auth: { token: ada.token },
      transports: ['polling'],
      forceNew: true,
      reconnection: false,
    });
    open.push(polling);
    const handshake = new Promise<unknown>((resolve) =>
      polling.io.engine.once('handshake', resolve),
    );
    expect(await handshake).toEqual({
      sid: expect.any(String),
      upgrades: ['websocket'],
      pingInterval: PING_INTERVAL_MS,
      pingTimeout: PING_TIMEOUT_MS,
      maxPayload: 64 * 1024,
    });

    const client = new SilentEngineClient(t.url);
    open.push(client);
    expect(JSON.parse(await client.next('0')) as OpenPacket).toEqual({
      sid: expect.any(String),
      upgrades: [],
      pingInterval: PING_INTERVAL_MS,
      pingTimeout: PING_TIMEOUT_MS,
      maxPayload: 64 * 1024,
    });
  });

  it('drops a client that stops answering pings after about interval + timeout, and keeps one that answers', async () => {
    const room = await createRoom(t.url, ada);
    const watcher = await connectSocket(t.url, ada.token);
    open.push(watcher);
    await emitOk(watcher, 'chat:join', room.id);
    let watcherPings = 0;
    watcher.io.on('ping', () => (watcherPings += 1));

    const silent = new SilentEngineClient(t.url);
    open.push(silent);
    await silent.next('0');
    const openedAt = silent.openedAt;
    silent.send(`40${JSON.stringify({ token: bob.token })}`);
    expect(JSON.parse(await silent.next('40'))).toEqual({ sid: expect.any(String) });
    silent.send(`421${JSON.stringify(['chat:join', room.id])}`);
    expect(JSON.parse(await silent.next('431'))).toEqual([expect.objectContaining({ ok: true })]);
    const left = nextEvent<RoomUserEvent>(
      watcher,
      'chat:userLeft',
      (event) => event.user.id === bob.id,
      15_000,
    );

    const closedAt = await silent.closed;
    const silentFor = closedAt - openedAt;
    // The server pinged once, after the interval, then gave up after the timeout.
    expect(silent.pings.length).toBeGreaterThanOrEqual(1);
    expect(silent.pings[0] - openedAt).toBeGreaterThanOrEqual(PING_INTERVAL_MS * 0.8);
    expect(closedAt - silent.pings[0]).toBeGreaterThanOrEqual(PING_TIMEOUT_MS * 0.8);
    expect(silentFor).toBeGreaterThanOrEqual((PING_INTERVAL_MS + PING_TIMEOUT_MS) * 0.8);
    // Far below the defaults (25 s + 20 s): the configured values are in force.
    expect(silentFor).toBeLessThan(PING_INTERVAL_MS + PING_TIMEOUT_MS + 6_000);
    expect(await left).toEqual({ roomId: room.id, user: { id: bob.id, username: bob.username } });

    // The answering client outlives several rounds, more than interval + timeout in all.
    const pingsSoFar = watcherPings;
    await eventually(() => watcherPings >= pingsSoFar + 3, 15_000);
    expect(watcher.connected).toBe(true);
    const present = await emitOk<{ users: Array<{ id: string }> }>(watcher, 'room:presence', {
      roomId: room.id,
    });
    expect(present.users.map((user) => user.id)).toEqual([ada.id]);
  });
});
