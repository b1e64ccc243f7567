import { createClient } from 'redis';
import { createRoom, registerUser } from '../support/api';
import { OwnRedis } from '../support/cluster';
import { emitAck, emitOk, socketPool } from '../support/sockets';
import { startTestApp, type TestApp } from '../support/test-app';

const PAUSE_MS = 4_000;

/** Redis that keeps its connections but stops answering: the node must not wait on it. */
describe('a Redis that stops answering', () => {
  let redis: OwnRedis;
  let t: TestApp;
  const sockets = socketPool(() => t.url);

  beforeAll(async () => {
    redis = await OwnRedis.start();
    t = await startTestApp('sqlite', {
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'stall:',
      REDIS_COMMAND_TIMEOUT_MS: '300',
    });
  });
  afterAll(async () => {
    sockets.closeAll();
    await t?.close();
    await redis?.halt();
  });

  it('answers live events from the node itself once a command has waited its timeout', async () => {
    const ada = await registerUser(t.url);
    const room = await createRoom(t.url, ada);
    const socket = await sockets.connect(ada);
    await emitOk(socket, 'chat:join', { roomId: room.id });
    const admin = createClient({ url: redis.url });
    await admin.connect();
    try {
      await admin.sendCommand(['CLIENT', 'PAUSE', String(PAUSE_MS), 'ALL']);
      const started = Date.now();
      const typing = await emitAck(socket, 'chat:typing', { roomId: room.id });
      const presence = await emitAck(socket, 'room:presence', { roomId: room.id });
      const waited = Date.now() - started;

      expect(typing).toEqual({ ok: true, data: {} });
      expect(presence).toEqual({
        ok: true,
        data: { users: [{ id: ada.id, username: ada.username }] },
      });
      // Loosely: two timeouts of 300 ms, far from the pause.
      expect(waited).toBeLessThan(PAUSE_MS / 2);
    } finally {
      await admin.sendCommand(['CLIENT', 'UNPAUSE']);
      await admin.close();
    }
  });
});
