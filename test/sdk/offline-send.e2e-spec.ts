import { createRoom, registerUser, type TestUser } from '../support/api';
import { ChatClient } from '../../client/src';
import { fullHistory, RestartableService, waitForStatus } from './sdk-harness';

jest.setTimeout(180_000);

/** The outbox: what is sent while the server is unreachable is stored once it is back, once. */
describe('ChatClient outbox against a real server', () => {
  let service: RestartableService;
  let ada: TestUser;
  let client: ChatClient;

  beforeAll(async () => {
    service = await RestartableService.start();
    ada = await registerUser(service.url);
  });

  beforeEach(() => {
    client = new ChatClient({
      url: service.url,
      token: () => ada.token,
      backoff: { baseMs: 200, capMs: 1_500 },
      ackTimeoutMs: 5_000,
    });
  });

  afterEach(() => client.close());
  afterAll(() => service?.dispose());

  const countOf = async (roomId: string, clientMsgId: string) =>
    (await fullHistory(service.url, ada.token, roomId)).filter((m) => m.clientMsgId === clientMsgId)
      .length;

  it('queues messages sent while offline and stores each exactly once after reconnecting', async () => {
    const roomId = (await createRoom(service.url, ada, { name: 'offline' })).id;
    client.connect();
    await client.join(roomId);
    await service.kill();
    await waitForStatus(client, 'reconnecting');

    const ids = ['off-1', 'off-2', 'off-3'];
    const sends = ids.map((clientMsgId, i) =>
      client.send(roomId, `offline ${i + 1}`, { clientMsgId }),
    );
    expect(client.pendingMessages.map((p) => p.clientMsgId)).toEqual(ids);

    await service.start();
    const stored = await Promise.all(sends);
    expect(stored.map((m) => m.text)).toEqual(['offline 1', 'offline 2', 'offline 3']);
    expect(stored.map((m) => m.seq)).toEqual([1, 2, 3]);
    for (const id of ids) expect(await countOf(roomId, id)).toBe(1);
    expect(client.pendingMessages).toEqual([]);
  });

  it('refuses a message over the server’s size limit at once, keeping the connection', async () => {
    const roomId = (await createRoom(service.url, ada, { name: 'too-large' })).id;
    client.connect();
    await client.join(roomId);
    const states: string[] = [];
    client.on('state', (state) => states.push(state.status));

    await expect(client.send(roomId, 'x'.repeat(70_000))).rejects.toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
    });
    expect(client.pendingMessages).toEqual([]);
    expect((await client.send(roomId, 'still connected')).seq).toBe(1);
    expect(states).toEqual([]);
  });

  it('stores a message sent just before a crash exactly once, whether or not its ack was lost', async () => {
    const roomId = (await createRoom(service.url, ada, { name: 'crash-send' })).id;
    client.connect();
    await client.join(roomId);
    const sending = client.send(roomId, 'racing the crash', { clientMsgId: 'race-1' });
    await service.kill();
    await service.start();
    const message = await sending;
    expect(message.clientMsgId).toBe('race-1');
    expect(await countOf(roomId, 'race-1')).toBe(1);
  });

  it('rejects a message the server refuses for good, and goes on with the next', async () => {
    const roomId = (await createRoom(service.url, ada, { name: 'refusals' })).id;
    client.connect();
    await client.join(roomId);
    await expect(client.send(roomId, 'x'.repeat(4_001))).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    await expect(client.send(roomId, 'fine')).resolves.toMatchObject({ text: 'fine', seq: 1 });
  });
});
