import { EventSource } from 'eventsource';
import {
  createRoom,
  forgeToken,
  nowSeconds,
  postMessage,
  registerUser,
  type TestUser,
} from '../support/api';
import { startTestApp, type TestApp } from '../support/test-app';
import {
  subscribePersonalEvents,
  subscribeRoomEvents,
  type ErrorBody,
  type MessageJson,
  type NotificationJson,
  type SseSubscription,
} from '../../client/src';
import { waitFor } from './sdk-harness';

jest.setTimeout(60_000);

const OPEN = 1;

describe('SSE helpers against the real event streams', () => {
  let app: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  let roomId: string;
  const subscriptions: SseSubscription[] = [];

  beforeAll(async () => {
    app = await startTestApp('sqlite');
    ada = await registerUser(app.url);
    bob = await registerUser(app.url);
    roomId = (await createRoom(app.url, ada, { name: 'sse' })).id;
  });
  afterEach(() => subscriptions.splice(0).forEach((subscription) => subscription.close()));
  afterAll(() => app?.close());

  it('follows a room feed, replaying from `since` first', async () => {
    const first = await postMessage(app.url, ada, roomId, 'stored 1');
    await postMessage(app.url, ada, roomId, 'stored 2');
    const seen: MessageJson[] = [];
    subscriptions.push(
      subscribeRoomEvents({
        url: app.url,
        token: () => ada.token,
        EventSource,
        roomId,
        since: first.seq,
        onMessage: (message) => seen.push(message),
      }),
    );
    await waitFor('the replay', () => seen.length === 1);
    await postMessage(app.url, bob, roomId, 'live');
    await waitFor('the live message', () => seen.length === 2);
    expect(seen.map((m) => m.text)).toEqual(['stored 2', 'live']);
  });

  it('follows a room whose end is behind `since` (a restored database) from that end', async () => {
    const room = await createRoom(app.url, ada, { name: 'restored' });
    await postMessage(app.url, ada, room.id, 'before the restore');
    const seen: MessageJson[] = [];
    let opened = false;
    subscriptions.push(
      subscribeRoomEvents({
        url: app.url,
        token: () => ada.token,
        EventSource: class extends EventSource {
          constructor(url: string) {
            super(url);
            this.addEventListener('open', () => (opened = true));
          }
        },
        roomId: room.id,
        since: 50,
        onMessage: (message) => seen.push(message),
      }),
    );
    await waitFor('the stream', () => opened);
    await postMessage(app.url, bob, room.id, 'after the restore');
    await postMessage(app.url, bob, room.id, 'and again');
    await waitFor('the new messages', () => seen.length === 2);
    expect(seen.map((m) => m.seq)).toEqual([2, 3]);
  });

  it('resumes from the room’s position when the stream is re-opened before any message arrived', async () => {
    const quietRoom = (await createRoom(app.url, ada, { name: 'sse-quiet' })).id;
    const sources: EventSource[] = [];
    class RecordingEventSource extends EventSource {
      constructor(url: string) {
        super(url);
        sources.push(this);
      }
    }
    // The server ends the stream when its token expires; EventSource retries with that token
    // after 3 s, is refused, and the helper opens a new stream with a fresh token.
    const tokens = [
      forgeToken({
        sub: ada.id,
        username: ada.username,
        iat: nowSeconds(),
        exp: nowSeconds() + 2,
      }),
    ];
    const seen: MessageJson[] = [];
    subscriptions.push(
      subscribeRoomEvents({
        url: app.url,
        token: () => tokens.shift() ?? ada.token,
        EventSource: RecordingEventSource,
        roomId: quietRoom,
        onMessage: (message) => seen.push(message),
      }),
    );
    await waitFor('the stream', () => sources[0]?.readyState === OPEN, 10_000);
    await waitFor('the stream to end', () => sources[0].readyState !== OPEN, 10_000);
    await postMessage(app.url, ada, quietRoom, 'while no stream was open');
    await waitFor('the message', () => seen.length === 1, 15_000);
    expect(sources.length).toBeGreaterThanOrEqual(2);
    expect(seen[0]).toMatchObject({ text: 'while no stream was open' });
  });

  it('delivers personal notifications (a mention) after `connected`', async () => {
    const notifications: NotificationJson[] = [];
    let connectedAs: string | undefined;
    subscriptions.push(
      subscribePersonalEvents({
        url: app.url,
        token: () => bob.token,
        EventSource,
        onConnected: ({ userId }) => (connectedAs = userId),
        onNotification: (notification) => notifications.push(notification),
      }),
    );
    await waitFor('connected', () => connectedAs !== undefined);
    // Mentions reach members only: bob adds himself to the public room.
    const joined = await fetch(`${app.url}/api/rooms/${roomId}/members`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${bob.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ userId: bob.id }),
    });
    expect(joined.status).toBe(201);
    expect(connectedAs).toBe(bob.id);
    await postMessage(app.url, ada, roomId, `hello @${bob.username}`);
    await waitFor('the mention', () => notifications.length === 1);
    expect(notifications[0]).toMatchObject({
      type: 'mention',
      message: { text: `hello @${bob.username}` },
    });
  });

  it('carries on with a fresh token when the server ends the stream at its expiry, missing nothing', async () => {
    const room = await createRoom(app.url, ada, { name: 'renewed' });
    const shortLived = forgeToken({
      sub: ada.id,
      username: ada.username,
      iat: nowSeconds(),
      exp: nowSeconds() + 2,
    });
    // The fresh token is handed over only once a message was posted while no stream was open.
    let asked = 0;
    let handFresh!: (token: string) => void;
    const fresh = new Promise<string>((resolve) => (handFresh = resolve));
    const urls: string[] = [];
    const failedStatuses: (number | undefined)[] = [];
    const seen: string[] = [];
    subscriptions.push(
      subscribeRoomEvents({
        url: app.url,
        token: () => (++asked === 1 ? shortLived : fresh),
        EventSource: class extends EventSource {
          constructor(url: string) {
            super(url);
            urls.push(url);
            this.addEventListener('error', (event) => failedStatuses.push(event.code));
          }
        },
        roomId: room.id,
        onMessage: (message) => seen.push(message.text),
      }),
    );
    await waitFor('the first stream', () => urls.length === 1);
    const before = await postMessage(app.url, ada, room.id, 'before');
    await waitFor('the message before the expiry', () => seen.length === 1);
    await waitFor('the end of the first stream', () => asked === 2, 10_000);
    await postMessage(app.url, ada, room.id, 'between');
    handFresh(ada.token);
    await waitFor('the stream with the fresh token', () => urls.length === 2);
    await postMessage(app.url, ada, room.id, 'after');
    await waitFor('the messages after it', () => seen.length === 3);

    expect(seen).toEqual(['before', 'between', 'after']);
    expect(new URL(urls[1]).searchParams.get('token')).toBe(ada.token);
    expect(new URL(urls[1]).searchParams.get('since')).toBe(String(before.seq));
    // Told why, the helper did not go back with the expired token to be refused first.
    expect(failedStatuses).toEqual([]);
  });

  it('stops and says so when the token is refused twice', async () => {
    const bad = forgeToken(
      { sub: ada.id, username: ada.username, iat: nowSeconds(), exp: nowSeconds() + 600 },
      { secret: 'not-the-server-secret-0123456789abcdef' },
    );
    let asked = 0;
    let fatal: ErrorBody | undefined;
    subscriptions.push(
      subscribeRoomEvents({
        url: app.url,
        token: () => {
          asked += 1;
          return bad;
        },
        EventSource,
        roomId,
        onMessage: () => undefined,
        onFatal: (error) => (fatal = error),
      }),
    );
    await waitFor('the fatal error', () => fatal !== undefined);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(asked).toBe(2);
    expect(fatal).toMatchObject({ code: 'UNAUTHORIZED' });
  });
  /** The browser's EventSource: its error events do not tell the HTTP status. */
  class StatuslessEventSource extends EventSource {
    constructor(url: string) {
      super(url);
      let handler: ((event: unknown) => void) | null = null;
      Object.defineProperty(this, 'onerror', {
        get: () => handler,
        set: (next: ((event: unknown) => void) | null) => {
          handler = next;
          super.onerror = next ? () => next({}) : null;
        },
      });
    }
  }

  it.each([
    ['with the HTTP status', EventSource],
    ['from a browser, which does not say it', StatuslessEventSource],
  ])('gives up for good on a private room it may not see, %s', async (_how, Source) => {
    const hidden = (await createRoom(app.url, ada, { name: 'hidden', isPrivate: true })).id;
    const fatal: ErrorBody[] = [];
    subscriptions.push(
      subscribeRoomEvents({
        url: app.url,
        token: () => bob.token,
        EventSource: Source,
        roomId: hidden,
        since: 0,
        backoff: { baseMs: 10, capMs: 50 },
        onMessage: () => undefined,
        onFatal: (error) => fatal.push(error),
      }),
    );
    await waitFor('the refusal to end it', () => fatal.length === 1);
    expect(fatal[0]).toMatchObject({ code: 'NOT_FOUND' });
  });
});
