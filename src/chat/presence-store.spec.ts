import { LocalPresenceStore } from './presence-store';

const ada = { id: 'u-ada', username: 'ada' };
const bob = { id: 'u-bob', username: 'bob' };

describe('LocalPresenceStore', () => {
  it('reports a user once per room, from the first connection in to the last one out', async () => {
    const store = new LocalPresenceStore();
    expect(await store.enter('r1', ada, 'c1')).toBe(true);
    expect(await store.enter('r1', ada, 'c2')).toBe(false);
    expect(await store.enter('r1', bob, 'c3')).toBe(true);
    expect(await store.users('r1')).toEqual([ada, bob]);

    expect(await store.leave('r1', ada, 'c1')).toBe(false);
    expect(await store.leave('r1', ada, 'c2')).toBe(true);
    expect(await store.leave('r1', ada, 'c2')).toBe(false);
    expect(await store.users('r1')).toEqual([bob]);
  });

  it('keeps nothing of users who left every room', async () => {
    const store = new LocalPresenceStore();
    for (let i = 0; i < 100; i += 1) {
      const user = { id: `u${i}`, username: `user${i}` };
      await store.enter(`room${i % 7}`, user, `c${i}`);
      await store.leave(`room${i % 7}`, user, `c${i}`);
    }
    // Everything the store holds, whatever its shape.
    const held = Object.values(store).filter((value) => value instanceof Map) as Array<
      Map<unknown, unknown>
    >;
    expect(held.map((map) => map.size)).toEqual(held.map(() => 0));
    expect(held.length).toBeGreaterThan(0);
  });
});
