import { io } from 'socket.io-client';
import { WebSocket } from 'ws';
import type { MessageJson } from '@app/contract/models';
import { createRoom, postMessage, registerUser, type TestUser } from '../support/api';
import { sleep } from '../support/sockets';
import { RestartableService, waitFor } from './sdk-harness';

jest.setTimeout(120_000);

interface SeedFrame {
  type: string;
  room?: string;
  payload?: unknown;
}

/**
 * A WebSocket wrapper as the reference design's client writes it: it opens
 * the URL again after each close, waiting 1 s, 2 s, 4 s… (at most 30 s, ten
 * tries), and sends only while open. What it reads is the application's.
 */
class SeedReconnectingWebSocket {
  private ws: WebSocket | null = null;
  private retryCount = 0;
  private readonly maxRetries = 10;
  private stopped = false;
  readonly frames: SeedFrame[] = [];
  opens = 0;

  constructor(private readonly url: string) {
    this.connect();
  }

  private connect(): void {
    if (this.stopped) return;
    this.ws = new WebSocket(this.url);
    this.ws.onopen = () => {
      this.retryCount = 0;
      this.opens += 1;
    };
    this.ws.onmessage = (event) => this.frames.push(JSON.parse(event.data as string) as SeedFrame);
    this.ws.onclose = () => this.scheduleReconnect();
    this.ws.onerror = () => this.ws?.close();
  }

  private scheduleReconnect(): void {
    if (this.retryCount >= this.maxRetries) return;
    const delay = Math.min(1000 * 2 ** this.retryCount, 30000);
    this.retryCount++;
    setTimeout(() => this.connect(), delay);
  }

  get open(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  send(data: string): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(data);
  }

  stop(): void {
    this.stopped = true;
    this.retryCount = this.maxRetries;
    this.ws?.close();
  }
}

/**
 * Clients written as the reference design writes them, unchanged, against a
 * service that crashes and comes back on the same port and database: they
 * reconnect on their own and, once they have joined again as they do on
 * every connect, get the room's traffic again.
 */
describe('seed clients across a server crash and restart', () => {
  let service: RestartableService;
  let ada: TestUser;
  let bob: TestUser;
  let roomId: string;

  beforeAll(async () => {
    service = await RestartableService.start();
    [ada, bob] = [await registerUser(service.url), await registerUser(service.url)];
    roomId = (await createRoom(service.url, ada, { name: 'seed-restart' })).id;
  });
  afterAll(async () => {
    await service?.dispose();
  });

  /** Posts until one posted now has reached `received`: the client's join is not acknowledged. */
  const reachesAgain = async (received: () => string[], label: string) => {
    let posted = 0;
    await waitFor(`${label} to receive the room's messages again`, async () => {
      posted += 1;
      await postMessage(service.url, bob, roomId, `${label} ${posted}`);
      await sleep(200);
      return received().some((text) => text.startsWith(`${label} `));
    });
  };

  it('a default Socket.IO client comes back by itself, polling then upgrading, and rejoins as it connects', async () => {
    // Socket.IO's defaults: reconnection on, long-polling first.
    const seed = io(service.url, { auth: { token: ada.token }, forceNew: true });
    const texts: string[] = [];
    let connects = 0;
    seed.on('connect', () => {
      connects += 1;
      seed.emit('chat:join', roomId);
    });
    seed.on('chat:message', (message: MessageJson) => texts.push(message.text));
    try {
      await waitFor('the first connect', () => connects === 1);
      await reachesAgain(() => texts, 'before');

      await service.kill();
      await waitFor('the client to see it gone', () => !seed.connected);
      await service.start();

      await waitFor('the client to connect again', () => connects === 2, 60_000);
      await reachesAgain(() => texts, 'after');
      expect(seed.io.engine.transport.name).toBe('websocket');
    } finally {
      seed.close();
    }
  });

  it('a reconnecting WebSocket with backoff opens /ws again with its token and, joined again, gets broadcasts', async () => {
    const wsUrl = `${service.url.replace(/^http/, 'ws')}/ws?token=${ada.token}`;
    const seed = new SeedReconnectingWebSocket(wsUrl);
    const join = () => seed.send(JSON.stringify({ type: 'join', room: roomId }));
    const joinedCount = () => seed.frames.filter((frame) => frame.type === 'joined').length;
    const bobWs = new SeedReconnectingWebSocket(
      `${service.url.replace(/^http/, 'ws')}/ws?token=${bob.token}`,
    );
    try {
      await waitFor('both to open', () => seed.open && bobWs.open);
      join();
      await waitFor('the join', () => joinedCount() === 1);

      await service.kill();
      await waitFor('the client to see it gone', () => !seed.open);
      // Down for a while: the client's tries wait longer each time.
      await sleep(3_000);
      await service.start();

      await waitFor(
        'the client to open again',
        () => seed.opens === 2 && bobWs.opens === 2,
        60_000,
      );
      expect(seed.frames.filter((frame) => frame.type === 'connected')).toHaveLength(2);
      join();
      await waitFor('the join again', () => joinedCount() === 2);
      bobWs.send(JSON.stringify({ type: 'broadcast', room: roomId, payload: { cursor: [1, 2] } }));
      await waitFor('the broadcast', () =>
        seed.frames.some((frame) => frame.type === 'message' && frame.room === roomId),
      );
      expect(seed.frames.find((frame) => frame.type === 'message')).toEqual({
        type: 'message',
        room: roomId,
        payload: { cursor: [1, 2] },
      });
    } finally {
      seed.stop();
      bobWs.stop();
    }
  });
});
