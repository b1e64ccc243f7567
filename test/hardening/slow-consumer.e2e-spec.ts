import { connect, type Socket as NetSocket } from 'node:net';
import { addMember, createRoom, postMessage, registerUser, removeMember } from '../support/api';
import { liveHeapBytes } from '../support/heap';
import { metricValue } from '../support/metrics';
import { RawClient } from '../support/raw-ws';
import { openSse } from '../support/sse';
import { SlowConsumerWatch } from '@app/realtime/slow-consumers';
import type { AppServer, AppSocket } from '@app/realtime/socket-data';
import { connectSocket, emitOk, eventually, sleep, type ClientSocket } from '../support/sockets';
import { startTestApp, type TestApp } from '../support/test-app';

const MIB = 1024 * 1024;

/** The heap and the buffers outside it (where socket backlogs are), as they are now. */
function memoryInUse(): number {
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

/** `memoryInUse` after a full collection: what is kept alive. */
function liveMemoryBytes(): number {
  liveHeapBytes();
  return memoryInUse();
}

/** The TCP socket under a client, to stop reading from it as a stuck client would. */
function tcpOfRaw(client: RawClient): NetSocket {
  return (client.socket as unknown as { _socket: NetSocket })._socket;
}

function tcpOfSocketIo(socket: ClientSocket): NetSocket {
  const engine = socket.io.engine as unknown as { transport: { ws: { _socket: NetSocket } } };
  return engine.transport.ws._socket;
}

/** The server's side of each TCP connection accepted from now on, found by the client's port. */
function acceptedConnections(t: TestApp) {
  const accepted: NetSocket[] = [];
  const server = t.app.getHttpServer();
  const onConnection = (connection: NetSocket) => accepted.push(connection);
  server.on('connection', onConnection);
  return {
    stop: () => server.off('connection', onConnection),
    peerOf(client: NetSocket): NetSocket {
      const peer = accepted.find((connection) => connection.remotePort === client.localPort);
      if (!peer) throw new Error(`no accepted connection from port ${client.localPort}`);
      return peer;
    },
  };
}

/** The Socket.IO server as the service runs it, taken from its next slow-consumer check. */
async function socketIoServer(t: TestApp): Promise<AppServer> {
  const check = jest.spyOn(t.app.get(SlowConsumerWatch), 'check');
  try {
    await eventually(() => check.mock.calls.length > 0, 5_000);
    return check.mock.calls[0][0];
  } finally {
    check.mockRestore();
  }
}

/** The packets Engine.IO queued for a connection and has not yet handed to its WebSocket. */
function engineWriteBufferBytes(engine: AppSocket['conn']): number {
  const { writeBuffer } = engine as unknown as { writeBuffer: Array<{ data?: unknown }> };
  return writeBuffer.reduce(
    (total, packet) => total + (typeof packet.data === 'string' ? packet.data.length : 0),
    0,
  );
}

/** Samples what the server holds for one client every 5 ms: the peak, and for how long it was over a limit. */
class HeldBytes {
  peak = 0;
  private readonly samples: Array<{ at: number; bytes: number }> = [];
  private readonly timer: NodeJS.Timeout;

  constructor(measure: () => number) {
    this.timer = setInterval(() => {
      const bytes = measure();
      this.peak = Math.max(this.peak, bytes);
      this.samples.push({ at: performance.now(), bytes });
    }, 5);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** From the first sample over the limit to the last one, if any was over. */
  overLimit(limit: number): { from: number; to: number } | undefined {
    const over = this.samples.filter((sample) => sample.bytes > limit);
    return over.length === 0 ? undefined : { from: over[0].at, to: over[over.length - 1].at };
  }
}

describe('slow consumers (in-process service)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp('sqlite', {
      RATE_LIMIT_CHAT_MESSAGE: '1000000/1s',
      SLOW_CONSUMER_LIMIT_BYTES: String(1024 * 1024),
    });
  });
  afterAll(() => t.close());

  it('drops a client that stops reading once its backlog passes 1 MiB, on /ws and Socket.IO, and keeps serving the others', async () => {
    const [sender, fast, slowWs, slowIo] = await Promise.all(
      [1, 2, 3, 4].map(() => registerUser(t.url)),
    );
    const room = await createRoom(t.url, sender);
    const accepted = acceptedConnections(t);
    const senderClient = await RawClient.connect(t.url, sender.token);
    const fastClient = await RawClient.connect(t.url, fast.token);
    const stuckWs = await RawClient.connect(t.url, slowWs.token);
    const stuckIo = await connectSocket(t.url, slowIo.token);
    const fastIo = await connectSocket(t.url, fast.token);
    for (const client of [senderClient, fastClient, stuckWs])
      await client.request({ type: 'join', room: room.id }, 'joined');
    for (const socket of [stuckIo, fastIo]) await emitOk(socket, 'chat:join', room.id);

    // When the server's Socket.IO checks ran, on the clock the samplers read.
    const checksAt: number[] = [];
    const check = SlowConsumerWatch.prototype.check;
    const watch = jest.spyOn(SlowConsumerWatch.prototype, 'check').mockImplementation(function (
      this: SlowConsumerWatch,
      ...args
    ) {
      checksAt.push(performance.now());
      return check.apply(this, args);
    });
    const samplers: HeldBytes[] = [];
    const sampled = (measure: () => number) => {
      const held = new HeldBytes(measure);
      samplers.push(held);
      return held;
    };
    try {
      tcpOfRaw(stuckWs).pause();
      tcpOfSocketIo(stuckIo).pause();
      const wsServerSide = accepted.peerOf(tcpOfRaw(stuckWs));
      const wsHeld = sampled(() => (wsServerSide.destroyed ? 0 : wsServerSide.writableLength));
      const ioServerSide = accepted.peerOf(tcpOfSocketIo(stuckIo));
      const ioEngine = (await socketIoServer(t)).sockets.sockets.get(stuckIo.id!)!.conn;
      const ioHeld = sampled(() =>
        ioServerSide.destroyed ? 0 : ioServerSide.writableLength + engineWriteBufferBytes(ioEngine),
      );
      const memoryBefore = liveMemoryBytes();
      let peakMemory = memoryBefore;
      let fastReceived = 0;
      fastClient.socket.on('message', () => (fastReceived += 1));
      let fastIoReceived = 0;
      fastIo.on('room:broadcast', () => (fastIoReceived += 1));

      const payload = 'p'.repeat(32 * 1024);
      let sent = 0;
      const dropped = () => ioServerSide.destroyed && wsServerSide.destroyed;
      while (sent < 3000 && !dropped()) {
        for (let i = 0; i < 10; i += 1)
          senderClient.send({ type: 'broadcast', room: room.id, payload });
        sent += 10;
        await sleep(5);
        fastClient.frames.length = 0;
        // A full collection every few rounds: each stalls the server and the fast readers too,
        // which share this process, and too many would leave them behind.
        if (sent % 50 === 0) peakMemory = Math.max(peakMemory, liveMemoryBytes());
      }
      for (const held of samplers) held.stop();
      watch.mockRestore();
      expect(dropped()).toBe(true);
      expect(
        await metricValue(t.url, 'realtime_slow_consumers_dropped_total{transport="ws"}'),
      ).toBe(1);
      expect(
        await metricValue(t.url, 'realtime_slow_consumers_dropped_total{transport="socket.io"}'),
      ).toBe(1);
      // What the server held for each stuck client, beside the kernel's buffers. /ws checks before
      // each frame, so it never holds more than the limit and one frame.
      expect(wsHeld.peak).toBeGreaterThan(MIB / 2);
      expect(wsHeld.peak).toBeLessThan(MIB + 64 * 1024);
      // Socket.IO checks four times a second: past the limit, it is cut within a check or two.
      // Counted in checks, not milliseconds: the send loop and the garbage collections stall
      // this process's event loop, which times both, for as long as they take.
      expect(ioHeld.peak).toBeGreaterThan(MIB / 2);
      const overLimit = ioHeld.overLimit(MIB);
      const checksWhileOver = overLimit
        ? checksAt.filter((at) => at >= overLimit.from && at <= overLimit.to).length
        : 0;
      expect(checksWhileOver).toBeLessThanOrEqual(3);
      // Two stuck clients holding a few MiB at most, beside what is in flight to the others
      // (measured: about 4 MiB in all).
      expect(peakMemory - memoryBefore).toBeLessThan(16 * MIB);

      for (let i = 0; i < 20; i += 1)
        senderClient.send({ type: 'broadcast', room: room.id, payload });
      sent += 20;
      await eventually(() => fastReceived === sent && fastIoReceived === sent, 20_000).catch(
        (error: Error) => {
          const refused = senderClient.frames.filter((frame) => frame.type === 'error');
          throw new Error(
            `${error.message}: sent ${sent}, /ws got ${fastReceived}, Socket.IO got ${fastIoReceived}, ` +
              `refused ${refused.length} ${JSON.stringify(refused.slice(0, 2))}`,
          );
        },
      );
      await eventually(
        async () =>
          (await metricValue(t.url, 'realtime_connections{transport="ws"}')) === 2 &&
          (await metricValue(t.url, 'realtime_connections{transport="socket.io"}')) === 1,
        10_000,
      );
      expect(fastIo.connected).toBe(true);
    } finally {
      watch.mockRestore();
      for (const held of samplers) held.stop();
      accepted.stop();
      for (const client of [senderClient, fastClient, stuckWs]) client.socket.terminate();
      for (const socket of [stuckIo, fastIo]) socket.close();
    }
  }, 60_000);

  it('drops an event stream that stops reading once its backlog passes 1 MiB, and keeps serving the others', async () => {
    const [sender, stuckUser, fastUser] = await Promise.all(
      [1, 2, 3].map(() => registerUser(t.url)),
    );
    const room = await createRoom(t.url, sender);
    await addMember(t.url, stuckUser, room.id, stuckUser.id);
    const stuck = await stalledStream(
      t.url,
      `/api/rooms/${room.id}/events?token=${stuckUser.token}`,
    );
    const stuckPersonal = await stalledStream(t.url, `/api/events?token=${stuckUser.token}`);
    const fast = await openSse(`${t.url}/api/rooms/${room.id}/events?token=${fastUser.token}`);
    const socket = await connectSocket(t.url, sender.token);
    await emitOk(socket, 'chat:join', room.id);
    const memoryBefore = liveMemoryBytes();

    // Mentions of the member fill their personal stream too; each message is near the longest allowed.
    const text = `@${stuckUser.username} ${'m'.repeat(3_900)}`;
    let sent = 0;
    // The fast member's events are counted as they come, not kept: memory then holds what the
    // service holds (the streams' backlogs are buffers outside the heap).
    const seqs: number[] = [];
    const takeFast = () => {
      for (const event of fast.received.splice(0))
        if (event.event === 'chat:message') seqs.push(Number(event.id));
    };
    let peakMemory = memoryBefore;
    const dropped = async () =>
      (await metricValue(t.url, 'realtime_slow_consumers_dropped_total{transport="sse"}')) >= 2;
    while (sent < 4_000 && !(await dropped())) {
      await Promise.all(
        Array.from({ length: 50 }, () => emitOk(socket, 'chat:message', { roomId: room.id, text })),
      );
      sent += 50;
      takeFast();
      peakMemory = Math.max(peakMemory, liveMemoryBytes());
    }

    expect(await dropped()).toBe(true);
    await eventually(() => {
      takeFast();
      return seqs.length === sent;
    }, 30_000);
    expect(seqs).toEqual(Array.from({ length: sent }, (_, index) => index + 1));
    // Two stuck streams holding at most a MiB each (and a replay page), beside what is in flight.
    expect(peakMemory - memoryBefore).toBeLessThan(16 * MIB);
    expect(liveMemoryBytes() - memoryBefore).toBeLessThan(8 * MIB);

    fast.close();
    for (const stalled of [stuck, stuckPersonal]) stalled.destroy();
    socket.close();
  }, 90_000);
});

describe('an event stream ended while its client has stopped reading', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp('sqlite', {
      RATE_LIMIT_CHAT_MESSAGE: '1000000/1s',
      SLOW_CONSUMER_LIMIT_BYTES: String(256 * 1024 * 1024),
    });
  });
  afterAll(() => t.close());

  it('is dropped a few seconds after it ends, rather than kept with its unread data', async () => {
    const [sender, reader] = await Promise.all([registerUser(t.url), registerUser(t.url)]);
    const room = await createRoom(t.url, sender, { isPrivate: true });
    await addMember(t.url, sender, room.id, reader.id);
    const server = t.app.getHttpServer();
    const accepted: NetSocket[] = [];
    server.on('connection', (connection: NetSocket) => accepted.push(connection));
    const stalled = await stalledStream(
      t.url,
      `/api/rooms/${room.id}/events?token=${reader.token}`,
    );
    const serverSide = accepted.find((connection) => connection.remotePort === stalled.localPort);
    expect(serverSide).toBeDefined();
    // More than the kernel's buffers take, so that some stays unread in the server.
    const text = 'm'.repeat(3_900);
    for (let sent = 0; sent < 4_000 && serverSide!.writableLength === 0; sent += 100) {
      await Promise.all(
        Array.from({ length: 100 }, () => postMessage(t.url, sender, room.id, text)),
      );
    }
    expect(serverSide!.writableLength).toBeGreaterThan(0);

    // The reader's access ends, and with it the stream; then the grace for the unread data passes.
    await removeMember(t.url, sender, room.id, reader.id);
    const endedAt = Date.now();
    await eventually(() => serverSide!.destroyed, 20_000);
    expect(Date.now() - endedAt).toBeGreaterThanOrEqual(4_000);
    stalled.destroy();
  }, 60_000);
});

/** An event stream over a bare TCP socket that reads the response head, then nothing more. */
async function stalledStream(base: string, path: string): Promise<NetSocket> {
  const { hostname, port } = new URL(base);
  const socket = connect(Number(port), hostname);
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\nAccept: text/event-stream\r\n\r\n`);
  const head = await new Promise<string>((resolve) =>
    socket.once('data', (chunk) => resolve(String(chunk))),
  );
  expect(head).toMatch(/^HTTP\/1\.1 200/);
  socket.pause();
  return socket;
}
