import { registerUser, createRoom, postMessage, type TestUser } from '../support/api';
import { ChatClient, type MessageJson } from '../../client/src';
import {
  fullHistory,
  recordMessages,
  RestartableService,
  waitFor,
  waitForStatus,
} from './sdk-harness';

jest.setTimeout(180_000);

const FAST_BACKOFF = { baseMs: 200, capMs: 2_000 };

const seqsOf = (messages: MessageJson[]) => messages.map((m) => m.seq);

/**
 * The SDK against a real service that crashes (SIGKILL) and comes back on the
 * same port and database: resume, gap fill and the outbox make every client
 * end with the server's history, complete, in order, with nothing twice.
 */
describe('ChatClient across a server crash and restart', () => {
  let service: RestartableService;
  let ada: TestUser;
  let bob: TestUser;
  let roomId: string;
  const clients: ChatClient[] = [];

  const client = (user: TestUser) => {
    const instance = new ChatClient({
      url: service.url,
      token: () => user.token,
      backoff: FAST_BACKOFF,
      ackTimeoutMs: 5_000,
    });
    clients.push(instance);
    return instance;
  };

  beforeAll(async () => {
    service = await RestartableService.start();
    ada = await registerUser(service.url);
    bob = await registerUser(service.url);
    roomId = (await createRoom(service.url, ada, { name: 'crash-test' })).id;
  });

  afterEach(() => {
    for (const instance of clients.splice(0)) instance.close();
  });

  afterAll(async () => {
    await service?.dispose();
  });

  it('two clients chatting through a restart end with the same complete, ordered history', async () => {
    const [alice, bobby] = [client(ada), client(bob)];
    const [seenByAda, seenByBob] = [recordMessages(alice), recordMessages(bobby)];
    alice.connect();
    bobby.connect();
    await Promise.all([alice.join(roomId), bobby.join(roomId)]);

    const before = [];
    for (let i = 1; i <= 5; i += 1) {
      before.push(alice.send(roomId, `ada ${i}`), bobby.send(roomId, `bob ${i}`));
    }
    await Promise.all(before);

    // Sends in flight when the server dies, and more while it is down.
    const during = [alice.send(roomId, 'ada 6'), bobby.send(roomId, 'bob 6')];
    await service.kill();
    await Promise.all([waitForStatus(alice, 'reconnecting'), waitForStatus(bobby, 'reconnecting')]);
    for (let i = 7; i <= 9; i += 1) {
      during.push(alice.send(roomId, `ada ${i}`), bobby.send(roomId, `bob ${i}`));
    }

    await service.start();
    // Posted by someone else as soon as the server is back, maybe before the clients are.
    const carol = await registerUser(service.url);
    await postMessage(service.url, carol, roomId, 'carol was here');
    await Promise.all(during);
    await Promise.all([waitForStatus(alice, 'connected'), waitForStatus(bobby, 'connected')]);
    await Promise.all([alice.send(roomId, 'ada after'), bobby.send(roomId, 'bob after')]);

    const history = await fullHistory(service.url, ada.token, roomId);
    expect(history).toHaveLength(21);
    expect(seqsOf(history)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    const texts = history.map((m) => m.text);
    for (const text of ['ada 6', 'bob 6', 'ada 9', 'bob 9', 'carol was here', 'bob after']) {
      expect(texts.filter((t) => t === text)).toHaveLength(1);
    }
    await waitFor('both clients to catch up', () =>
      [seenByAda, seenByBob].every((seen) => seen.length >= history.length),
    );
    expect(seenByAda).toEqual(history);
    expect(seenByBob).toEqual(history);
  });

  it('a client that joins with since gets exactly what it missed, then live messages', async () => {
    // Its own messages: run alone, the room may be empty.
    for (let i = 1; i <= 4; i += 1) await postMessage(service.url, ada, roomId, `own ${i}`);
    const history = await fullHistory(service.url, ada.token, roomId);
    const last = history[history.length - 1].seq;
    await postMessage(service.url, bob, roomId, 'one more');
    const late = client(ada);
    const seen = recordMessages(late);
    late.connect();
    await late.join(roomId, { since: last - 3 });
    await postMessage(service.url, bob, roomId, 'and live');
    await waitFor('the live message', () => seen.some((m) => m.text === 'and live'));
    expect(seqsOf(seen)).toEqual([last - 2, last - 1, last, last + 1, last + 2]);
  });
});
