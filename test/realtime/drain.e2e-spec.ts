import { createServer, type RequestListener } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { MessageJson, NotificationJson } from '@app/contract/models';
import { TransactionRunner } from '@app/database/transaction-runner';
import { DeliveryService } from '@app/delivery/delivery.service';
import { ConnectionTracker } from '@app/realtime/connection-tracker';
import { GracefulShutdown } from '@app/realtime/graceful-shutdown.service';
import { SlowConsumerWatch } from '@app/realtime/slow-consumers';
import { UsersService } from '@app/users/users.service';
import { addMember, createRoom, registerUser } from '../support/api';
import { databaseKinds, type DatabaseKind } from '../support/databases';
import { holdNextCall } from '../support/hold';
import { RawClient } from '../support/raw-ws';
import { openSse } from '../support/sse';
import { collect, connectSocket, emitAck, eventually, sleep } from '../support/sockets';
import { TcpProxy } from '../support/tcp-proxy';
import { startTestApp, type TestApp } from '../support/test-app';

/** One keep-alive HTTP/1.1 connection, written by hand: the kind that outlives a closed listener. */
class RawHttp {
  private readonly socket: Socket;
  private received = '';

  constructor(url: string) {
    const { hostname, port } = new URL(url);
    this.socket = connect(Number(port), hostname);
    this.socket.on('data', (chunk: Buffer) => (this.received += chunk.toString('utf8')));
    this.socket.on('error', () => undefined);
    // Read to its end, so that `ended` sees the server's FIN.
    this.socket.on('end', () => undefined);
  }

  send(method: string, path: string, headers: Record<string, string> = {}, body = ''): void {
    const lines = [`${method} ${path} HTTP/1.1`, 'Host: localhost'];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    if (body) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    this.socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
  }

  /** The status of the next response, once it has come; what came is then forgotten. */
  async nextStatus(): Promise<number> {
    await eventually(() => /\r\n\r\n/.test(this.received));
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(this.received)?.[1]);
    const length = Number(/content-length: (\d+)/i.exec(this.received)?.[1] ?? 0);
    await eventually(() => this.received.indexOf('\r\n\r\n') + 4 + length <= this.received.length);
    this.received = this.received.slice(this.received.indexOf('\r\n\r\n') + 4 + length);
    return status;
  }

  /** Whether the server has ended the connection. */
  get ended(): boolean {
    return this.socket.readableEnded || this.socket.destroyed;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** What a test that fails midway must not leave behind: calls held, a drain kept open, an app not closed. */
interface Leftovers {
  /** The app's close, once the test began it. */
  closing?: Promise<void>;
  release: Array<() => void>;
}

/** Releases what the test held, closes the app unless the test did, and drops its database. */
async function cleanUp(t: TestApp, left: Leftovers): Promise<void> {
  for (const release of left.release) release();
  await (left.closing ?? t.app.close()).catch(() => undefined);
  await t.database.drop();
}

/** Holds the drain open at its last step until the returned function is called. */
function keepDraining(t: TestApp): () => void {
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  t.app.get(GracefulShutdown).register('finish-writes', () => finished);
  return finish;
}

interface ProxiedApp {
  t: TestApp;
  proxy: TcpProxy;
  /** The app's URL through the proxy. */
  proxied: string;
  /** Marks the app stopped once `closing` (its close) has ended. */
  stopped(closing: Promise<void>): Promise<void>;
}

/** `body` with an app behind a TCP proxy; closed, unless `body` did, and dropped however it ends. */
async function behindProxy(
  kind: DatabaseKind,
  body: (app: ProxiedApp) => Promise<void>,
): Promise<void> {
  const t = await startTestApp(kind);
  const proxy = await TcpProxy.start('127.0.0.1', Number(new URL(t.url).port));
  let closed = false;
  const stopped = async (closing: Promise<void>) => {
    await closing;
    closed = true;
  };
  try {
    await body({ t, proxy, proxied: `http://127.0.0.1:${proxy.port}`, stopped });
  } finally {
    await proxy.cut();
    if (!closed) await t.app.close();
    await t.database.drop();
  }
}

/**
 * A /ws client whose upgrade is held at its connection slot while the node
 * begins to drain (`meanwhile` runs before the drain), then let through.
 */
async function upgradeAuthenticatedAsDrainBegins(
  t: TestApp,
  url: string,
  meanwhile: () => void = () => undefined,
): Promise<{ raw: RawClient; closing: Promise<void> }> {
  const ada = await registerUser(t.url);
  const slot = holdNextCall(t.app.get(ConnectionTracker), 'acquire', { after: true });
  const raw = RawClient.open(url, ada.token);
  await slot.started;
  meanwhile();
  const closing = t.app.close();
  await eventually(() => t.app.get(GracefulShutdown).draining);
  slot.release();
  return { raw, closing };
}

describe.each(databaseKinds())('Draining a node (%s)', (kind) => {
  /** The TransactionRunner method each write of messages goes through. */
  const writeMethod = kind === 'postgres' ? 'executePrepared' : 'sqliteTransaction';

  const holdNextWrite = (t: TestApp) => holdNextCall(t.app.get(TransactionRunner), writeMethod);

  it('acknowledges and delivers the sends in flight before telling clients to go, and refuses new ones', async () => {
    const t = await startTestApp(kind);
    const left: Leftovers = { release: [] };
    try {
      const ada = await registerUser(t.url);
      const room = await createRoom(t.url, ada);
      const socket = await connectSocket(t.url, ada.token);
      await emitAck(socket, 'chat:join', { roomId: room.id });
      const stream = await openSse(`${t.url}/api/rooms/${room.id}/events?token=${ada.token}`);
      await stream.next((event) => event.event === 'connected');
      const seen: string[] = [];
      socket.on('disconnect', () => seen.push('disconnect'));
      socket.on('chat:message', () => seen.push('live'));

      const write = holdNextWrite(t);
      left.release.push(write.release);

      const inFlight = emitAck<MessageJson>(socket, 'chat:message', {
        roomId: room.id,
        text: 'in flight',
      }).then((answer) => {
        seen.push('ack');
        return answer;
      });
      await write.started;
      const closing = (left.closing = t.app.close());
      await eventually(() => t.app.get(GracefulShutdown).draining);

      const refused = await emitAck(socket, 'chat:message', { roomId: room.id, text: 'too late' });
      expect(refused).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE' } });
      expect(seen).toEqual([]);

      write.release();
      expect(await inFlight).toMatchObject({ ok: true, data: { seq: 1, text: 'in flight' } });
      await closing;
      await eventually(() => seen.includes('disconnect'));
      // Delivered live too: the node still delivers while it drains.
      expect([...seen].sort()).toEqual(['ack', 'disconnect', 'live']);
      expect(seen.at(-1)).toBe('disconnect');
      socket.close();
      // The event stream got the message too, then was told to come back (to another node).
      await stream.closed;
      expect(stream.received.map(({ event }) => event)).toEqual(['chat:message', 'closed']);
      expect(JSON.parse(stream.received[1].data)).toEqual({
        code: 'UNAVAILABLE',
        message: 'The server is shutting down: connect again',
        details: [],
      });
    } finally {
      await cleanUp(t, left);
    }
  });

  it('tells clients to go when a send stalls past its share of the shutdown timeout', async () => {
    // 6 s leaves the sends in flight the least they get: one second.
    const t = await startTestApp(kind, { SHUTDOWN_TIMEOUT_MS: '6000' });
    const left: Leftovers = { release: [] };
    try {
      const ada = await registerUser(t.url);
      const room = await createRoom(t.url, ada);
      const socket = await connectSocket(t.url, ada.token);
      await emitAck(socket, 'chat:join', { roomId: room.id });
      let disconnected = false;
      socket.on('disconnect', () => (disconnected = true));
      const write = holdNextWrite(t);
      left.release.push(write.release);
      const send = emitAck(socket, 'chat:message', { roomId: room.id, text: 'stalled' }).then(
        () => 'answered',
        () => 'cut off',
      );
      await write.started;

      const closing = (left.closing = t.app.close());
      try {
        await eventually(() => disconnected, 4_000);
        // The client sends it again elsewhere, with the same clientMsgId if it gave one.
        expect(await send).toBe('cut off');
      } finally {
        write.release();
        await closing;
        socket.close();
      }
    } finally {
      await cleanUp(t, left);
    }
  });

  it('closes a kept-alive connection that outlived the listener once its response is out', async () => {
    const t = await startTestApp(kind);
    const http = new RawHttp(t.url);
    const left: Leftovers = { release: [] };
    try {
      const ada = await registerUser(t.url);
      const room = await createRoom(t.url, ada);
      const auth = { Authorization: `Bearer ${ada.token}`, 'Content-Type': 'application/json' };
      // Busy when the listener closes (idle connections are closed with it), and the drain
      // kept going by a last step until the test has seen the connection end.
      const write = holdNextWrite(t);
      left.release.push(write.release);
      http.send('POST', `/api/rooms/${room.id}/messages`, auth, JSON.stringify({ text: 'busy' }));
      await write.started;
      const finish = keepDraining(t);
      left.release.push(finish);
      const closing = (left.closing = t.app.close());
      await sleep(100);
      write.release();
      expect(await http.nextStatus()).toBe(201);

      // A proxy's next request would otherwise go over it, to be refused: the node closes it.
      await eventually(() => http.ended, 2_000);
      finish();
      await closing;
    } finally {
      http.close();
      await cleanUp(t, left);
    }
  });

  it('answers not ready and opens no stream for requests that still reach it while it drains', async () => {
    const t = await startTestApp(kind);
    // Another listener onto the same application: what a request reaching it late meets.
    const lateDoor = createServer(t.app.getHttpAdapter().getInstance() as RequestListener);
    await new Promise<void>((resolve) => lateDoor.listen(0, '127.0.0.1', resolve));
    const lateUrl = `http://127.0.0.1:${(lateDoor.address() as AddressInfo).port}`;
    const left: Leftovers = { release: [] };
    try {
      const ada = await registerUser(t.url);
      const room = await createRoom(t.url, ada);
      const finish = keepDraining(t);
      left.release.push(finish);
      const closing = (left.closing = t.app.close());
      await eventually(() => t.app.get(GracefulShutdown).draining);

      expect((await fetch(`${lateUrl}/health/ready`)).status).toBe(503);
      // A client that reads the status is told to come back (elsewhere) in a second.
      const refused = await fetch(`${lateUrl}/api/rooms/${room.id}/events`, {
        headers: { Authorization: `Bearer ${ada.token}`, Accept: 'text/event-stream' },
      });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(await refused.json()).toMatchObject({ code: 'UNAVAILABLE' });
      // A browser's EventSource, which would stop for good on a status, gets that as a stream.
      const eventSource = await fetch(`${lateUrl}/api/events?token=${ada.token}`, {
        headers: { Accept: 'text/event-stream' },
      });
      expect(eventSource.status).toBe(200);
      const told = await eventSource.text();
      expect(told).toMatch(/^retry: (1\d{3}|2000)\nevent: refused\ndata: \{"code":"UNAVAILABLE"/);
      // What Socket.IO handshakes and /ws upgrades reserve first.
      await expect(t.app.get(ConnectionTracker).acquire(ada.id, 'late')).rejects.toMatchObject({
        code: 'UNAVAILABLE',
      });
      finish();
      await closing;
    } finally {
      lateDoor.close();
      await cleanUp(t, left);
    }
  });

  it('sends a /ws client authenticated while the drain began away with 1001, and stops without waiting on it', async () => {
    const t = await startTestApp(kind);
    let stopped = false;
    try {
      const finish = keepDraining(t);
      const { raw, closing } = await upgradeAuthenticatedAsDrainBegins(t, t.url);

      expect(await raw.closed).toEqual({ code: 1001, reason: 'Server shutting down' });
      expect(raw.frames).toEqual([]);
      finish();
      const started = Date.now();
      await closing;
      stopped = true;
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      if (!stopped) await t.app.close();
      await t.database.drop();
    }
  }, 60_000);

  it(
    'stops within a few seconds though a /ws client sent away during the drain never answers',
    () =>
      behindProxy(kind, async ({ t, proxy, proxied, stopped }) => {
        const started = Date.now();
        const { raw, closing } = await upgradeAuthenticatedAsDrainBegins(t, proxied, () =>
          proxy.stallOpenConnections(),
        );
        await stopped(closing);

        // ws waits 30 s for an unanswered close by default.
        expect(Date.now() - started).toBeLessThan(10_000);
        raw.close();
      }),
    60_000,
  );

  it(
    'stops within a few seconds though its clients are gone without a word, on Socket.IO and /ws',
    () =>
      behindProxy(kind, async ({ t, proxy, proxied, stopped }) => {
        const ada = await registerUser(t.url);
        const socket = await connectSocket(proxied, ada.token);
        const raw = await RawClient.connect(proxied, ada.token);
        proxy.stallOpenConnections();

        const started = Date.now();
        await stopped(t.app.close());

        // A close handshake nobody answers would hold the HTTP server for 30 s.
        expect(Date.now() - started).toBeLessThan(10_000);
        socket.close();
        raw.close();
      }),
    60_000,
  );

  it('goes on checking for slow consumers while it finishes its sends', async () => {
    const t = await startTestApp(kind);
    const checks = jest.spyOn(SlowConsumerWatch.prototype, 'check');
    let finish!: () => void;
    const finishing = new Promise<void>((resolve) => (finish = resolve));
    t.app.get(GracefulShutdown).register('finish-sends', () => finishing);
    try {
      const closing = t.app.close();
      await eventually(() => t.app.get(GracefulShutdown).draining);
      const before = checks.mock.calls.length;
      await eventually(() => checks.mock.calls.length > before, 5_000);
      finish();
      await closing;
    } finally {
      finish();
      checks.mockRestore();
      await t.app.close().catch(() => undefined);
      await t.database.drop();
    }
  });

  it('notifies the mentions of its last sends to their connected members before telling clients to go', async () => {
    const t = await startTestApp(kind);
    let stopped = false;
    try {
      const [ada, bob] = await Promise.all([registerUser(t.url), registerUser(t.url)]);
      const room = await createRoom(t.url, ada);
      await addMember(t.url, bob, room.id, bob.id);
      const socket = await connectSocket(t.url, ada.token);
      await emitAck(socket, 'chat:join', { roomId: room.id });
      const bobSocket = await connectSocket(t.url, bob.token);
      const bobHeard = collect<NotificationJson>(bobSocket, 'notification');
      const lookup = holdNextCall(t.app.get(UsersService), 'findActiveByUsernames');
      const mentioned = jest.spyOn(t.app.get(DeliveryService), 'mentioned');
      await emitAck(socket, 'chat:message', {
        roomId: room.id,
        text: `over to you @${bob.username}`,
      });
      await lookup.started;

      const closing = t.app.close();
      await sleep(300);
      lookup.release();
      await closing;
      stopped = true;

      expect(mentioned).toHaveBeenCalledWith(
        bob.id,
        expect.objectContaining({ text: `over to you @${bob.username}` }),
      );
      // On the connection still open: told to go only after it.
      expect(bobHeard).toEqual([
        {
          type: 'mention',
          message: expect.objectContaining({ text: `over to you @${bob.username}` }),
        },
      ]);
      socket.close();
      bobSocket.close();
    } finally {
      if (!stopped) await t.app.close();
      await t.database.drop();
    }
  });
});
