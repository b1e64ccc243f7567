import { registerUser } from '../support/api';
import { RawClient } from '../support/raw-ws';
import { connectSocket, nextEvent } from '../support/sockets';
import { startTestApp, type TestApp } from '../support/test-app';

describe('packet floods on one connection', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp('sqlite', { MAX_PACKETS_PER_SECOND: '20' });
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

  it('closes a raw WebSocket client doing the same with 4029', async () => {
    const user = await registerUser(t.url);
    const client = await RawClient.connect(t.url, user.token);
    for (let i = 0; i < 100; i += 1) client.send({ type: 'leave', room: 'x' });
    expect(await client.closed).toEqual({ code: 4029, reason: 'Rate limited' });
  });
});
