import request from 'supertest';
import type { RoomJson } from '@app/contract/models';
import { createRoom, registerUser, type TestUser } from '../support/api';
import { databaseKinds } from '../support/databases';
import { openSse } from '../support/sse';
import { startTestApp, type TestApp } from '../support/test-app';

/** The documented defaults, on an app that leaves the settings alone (the test env sets neither). */
describe.each(databaseKinds())('defaults of the README and the contract (%s)', (kind) => {
  let t: TestApp;
  let ada: TestUser;

  beforeAll(async () => {
    t = await startTestApp(kind);
    ada = await registerUser(t.url);
  });
  afterEach(() => jest.restoreAllMocks());
  afterAll(() => t.close());

  it('lists 50 rooms per page when no limit is given, with a cursor to the rest', async () => {
    const bob = await registerUser(t.url);
    const created = await Promise.all([
      ...Array.from({ length: 50 }, (_, i) => createRoom(t.url, ada, { name: `public ${i}` })),
      ...Array.from({ length: 3 }, (_, i) =>
        createRoom(t.url, ada, { name: `private ${i}`, isPrivate: true }),
      ),
      // Visible to ada as public rooms of someone else; bob's private one is not.
      createRoom(t.url, bob, { name: 'bob public' }),
      createRoom(t.url, bob, { name: 'bob private', isPrivate: true }),
    ]);
    const visible = created.filter((room) => !(room.ownerId === bob.id && room.isPrivate));
    expect(visible).toHaveLength(54);

    const list = async (query: string) =>
      (
        await request(t.url)
          .get(`/api/rooms${query}`)
          .set('Authorization', `Bearer ${ada.token}`)
          .expect(200)
      ).body as { items: RoomJson[]; nextCursor: string | null };

    const first = await list('');
    expect(first.items).toHaveLength(50);
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = await list(`?cursor=${first.nextCursor}`);
    expect(second.items).toHaveLength(4);
    expect(second.nextCursor).toBeNull();
    const ids = [...first.items, ...second.items].map((room) => room.id);
    expect(new Set(ids).size).toBe(54);
    expect([...ids].sort()).toEqual(visible.map((room) => room.id).sort());

    const all = await list('?limit=200');
    expect(all.items.map((room) => room.id)).toEqual(ids);
    expect(all.nextCursor).toBeNull();
  });

  it('schedules SSE heartbeats every 30 s by default, each a :heartbeat comment', async () => {
    // Waiting 30 s is too dear: catch the stream's timer, check its period, and fire it.
    const intervals = jest.spyOn(globalThis, 'setInterval');
    const connection = await openSse(`${t.url}/api/events?token=${ada.token}`);
    try {
      expect(connection.status).toBe(200);
      expect((await connection.next(() => true)).event).toBe('connected');
      const heartbeats = intervals.mock.calls.filter(([, ms]) => ms === 30_000);
      expect(heartbeats).toHaveLength(1);
      expect(connection.received).toEqual([]);
      heartbeats[0][0]();
      expect(await connection.next(() => true)).toEqual({ event: ':comment', data: 'heartbeat' });
    } finally {
      connection.close();
    }
  });
});
