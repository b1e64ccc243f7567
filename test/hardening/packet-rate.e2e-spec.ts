import { WebSocket } from 'ws';
import { registerUser } from '../support/api';
import { RawClient } from '../support/raw-ws';
import { collect, connectSocket, emitAck, eventually, nextEvent, sleep } from '../support/sockets';
import { startTestApp, type TestApp } from '../support/test-app';

const MAX_ROOMS = 10;
/** What a client coming back sends at once: a join per room it may hold, and as much again queued. */
const COMING_BACK = 2 * 20 + MAX_ROOMS;

describe('packet floods on one connection', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp('sqlite', {
      MAX_PACKETS_PER_SECOND: '20',
      MAX_ROOMS_PER_CONNECTION: String(MAX_ROOMS),
    });
  });
  afterAll(() => t.close());

  it('cuts off a Socket.IO client sending far more packets than any budget allows', async () => {
    const user = await registerUser(t.url);
    const socket = await connectSocket(t.url, user.token);
    const error = nextEvent<{ code: string }>(socket, 'error', (e) => e.code === 'RATE_LIMITED');
    const gone = new Promise<string>((resolve) => socket.once('disconnect', resolve));
    for (let i = 0; i < 100; i += 1) socket.emit('room:presence', { roomId: 'x' });
    expect((await error).code).toBe('RATE_LIMITED');
    expect(await gone).toBe('io server disconnect');
  });

  it('keeps one budget per session when its client connects to the namespace again and again', async () => {
    const user = await registerUser(t.url);
    const session = await rawEngineSession(t.url);
    for (let i = 0; i < 12; i += 1) {
      session.send(`40${JSON.stringify({ token: user.token })}`);
      await session.next((frame) => frame.startsWith('40'));
      session.send('41');
      // Socket.IO handles the leave on its next turn, and a connect before that as a protocol error.
      await sleep(50);
    }
    session.send(`40${JSON.stringify({ token: user.token })}`);
    await session.next((frame) => frame.startsWith('40'));
    await sleep(2_100); // the bucket is full again

    for (let i = 0; i < 10; i += 1) session.send('42["room:presence",{"roomId":"x"}]');
    await sleep(300);

    expect(session.frames.filter((frame) => frame.includes('Too many packets'))).toEqual([]);
    expect(session.socket.readyState).toBe(WebSocket.OPEN);
    session.socket.close();
  });

  it('closes a session that floods namespace connects, each refused, before any is accepted', async () => {
    const session = await rawEngineSession(t.url);
    const closed = new Promise<void>((resolve) => session.socket.once('close', () => resolve()));
    for (let i = 0; i < 200; i += 1) session.send(`40${JSON.stringify({ token: 'not-a-token' })}`);

    await closed;
    expect(session.frames.filter((frame) => frame.startsWith('44')).length).toBeLessThan(200);
  });

  it('lets a Socket.IO client coming back send a packet per room and its burst at once', async () => {
    const user = await registerUser(t.url);
    const socket = await connectSocket(t.url, user.token);
    const errors = collect(socket, 'error');
    const answers = Array.from({ length: COMING_BACK }, () =>
      emitAck(socket, 'room:presence', { roomId: 'x' }),
    );
    const invalidRoom = {
      ok: false,
      error: expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    };
    expect(await Promise.all(answers)).toEqual(Array(COMING_BACK).fill(invalidRoom));
    // One more round trip, once the bucket holds a packet again: a cut-off sent after the
    // answers would have arrived by then.
    await sleep(200);
    expect(await emitAck(socket, 'room:presence', { roomId: 'x' })).toEqual(invalidRoom);
    expect({ errors, connected: socket.connected }).toEqual({ errors: [], connected: true });
    socket.close();
  });

  it('lets a raw WebSocket client coming back do the same', async () => {
    const user = await registerUser(t.url);
    const client = await RawClient.connect(t.url, user.token);
    for (let i = 0; i < COMING_BACK; i += 1) client.send({ type: 'ping' });
    await eventually(() => client.frames.filter((f) => f.type === 'pong').length === COMING_BACK);
    // One more round trip, once the bucket holds a frame again: a refusal or a close sent after
    // the pongs would have arrived by then.
    await sleep(200);
    client.send({ type: 'ping' });
    await eventually(
      () => client.frames.filter((f) => f.type === 'pong').length === COMING_BACK + 1,
    );
    expect(client.frames.filter((f) => f.type !== 'pong')).toEqual([]);
    expect(client.socket.readyState).toBe(WebSocket.OPEN);
    client.close();
  });

  it('closes a raw WebSocket client flooding ping frames with 4029', async () => {
    const user = await registerUser(t.url);
    const client = await RawClient.connect(t.url, user.token);
    for (let i = 0; i < 100; i += 1) client.socket.ping();
    expect(await client.closed).toEqual({ code: 4029, reason: 'Rate limited' });
  });

  it('closes a raw WebSocket client doing the same with 4029', async () => {
    const user = await registerUser(t.url);
    const client = await RawClient.connect(t.url, user.token);
    for (let i = 0; i < 100; i += 1) client.send({ type: 'leave', room: 'x' });
    expect(await client.closed).toEqual({ code: 4029, reason: 'Rate limited' });
    const refusals = client.frames.filter((frame) => frame.code === 'RATE_LIMITED');
    expect(refusals).toEqual([
      {
        type: 'error',
        code: 'RATE_LIMITED',
        message: 'Too many packets: connection closed',
        details: [],
      },
    ]);
  });
});

/** A Socket.IO client written by hand: an Engine.IO v4 session over WebSocket, answering pings. */
async function rawEngineSession(url: string) {
  const socket = new WebSocket(
    `${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`,
  );
  socket.on('error', () => undefined);
  const frames: string[] = [];
  socket.on('message', (data: Buffer) => {
    const frame = data.toString('utf8');
    if (frame === '2') socket.send('3');
    else frames.push(frame);
  });
  await new Promise((resolve) => socket.once('open', resolve));
  const next = async (matches: (frame: string) => boolean) => {
    await eventually(() => frames.some(matches));
    return frames.splice(frames.findIndex(matches), 1)[0];
  };
  return { socket, frames, next, send: (frame: string) => socket.send(frame) };
}
