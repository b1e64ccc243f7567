import { Logger } from '@nestjs/common';
import type { ConfigService } from '@nestjs/config';
import type { AllConfig } from '@app/config/app-config';
import { MetricsService } from '@app/metrics/metrics.service';
import { LocalPresenceStore, type PresenceStore } from './presence-store';
import { PresenceService } from './presence.service';

const config = { get: () => 30_000 } as unknown as ConfigService<AllConfig, true>;

describe('PresenceService', () => {
  const ada = { id: 'a', username: 'ada' };
  let presence: PresenceService;
  let metrics: MetricsService;

  const create = (store: PresenceStore) => {
    metrics = new MetricsService();
    presence = new PresenceService(store, metrics, config);
  };

  beforeEach(() => create(new LocalPresenceStore()));

  it('changes only on the first connection in and the last one out', async () => {
    expect((await presence.enter('r', ada, 'c1')).changed).toBe(true);
    expect((await presence.enter('r', ada, 'c2')).changed).toBe(false);
    expect((await presence.enter('r', ada, 'c2')).changed).toBe(false);
    expect(await presence.users('r')).toEqual([ada]);
    expect((await presence.leave('r', ada, 'c1')).changed).toBe(false);
    expect((await presence.leave('r', ada, 'c1')).changed).toBe(false);
    expect((await presence.leave('r', ada, 'c2')).changed).toBe(true);
    expect(await presence.users('r')).toEqual([]);
  });

  it('removes a closed connection from every room, leaving nothing behind', async () => {
    await presence.enter('r1', ada, 'c1');
    await presence.enter('r2', ada, 'c1');
    await presence.enter('r2', ada, 'c2');
    const changes = await presence.leaveAll(ada, 'c1');
    expect(changes.map((c) => [c.roomId, c.changed])).toEqual([
      ['r1', true],
      ['r2', false],
    ]);
    expect(presence.roomsOf('c1').size).toBe(0);
    expect(presence.hasLocalMembers('r2')).toBe(true);
    await presence.leaveAll(ada, 'c2');
    expect(presence.hasLocalMembers('r2')).toBe(false);
    const text = await metrics.render();
    expect(text).toMatch(/^realtime_rooms_with_members 0$/m);
    expect(text).toMatch(/^realtime_presence_entries 0$/m);
  });

  it('falls back to its own connections when the shared store fails', async () => {
    const failing = new LocalPresenceStore();
    const down = () => Promise.reject(new Error('Redis is down'));
    Object.assign(failing, { enter: down, leave: down, users: down });
    create(failing);
    expect((await presence.enter('r', ada, 'c1')).changed).toBe(true);
    expect((await presence.enter('r', ada, 'c2')).changed).toBe(false);
    expect(await presence.users('r')).toEqual([ada]);
    expect((await presence.leave('r', ada, 'c1')).changed).toBe(false);
    expect((await presence.leave('r', ada, 'c2')).changed).toBe(true);
  });

  it('lets its own connections decide a leave the shared store cannot tell', async () => {
    const forgetful = new LocalPresenceStore();
    Object.assign(forgetful, { leave: () => Promise.resolve(undefined) });
    create(forgetful);
    await presence.enter('r', ada, 'c1');
    await presence.enter('r', ada, 'c2');
    expect((await presence.leave('r', ada, 'c1')).changed).toBe(false);
    expect((await presence.leave('r', ada, 'c2')).changed).toBe(true);
  });

  it('announces the users a partly failed heartbeat brought back, and sweeps nothing that time', async () => {
    jest.useFakeTimers();
    try {
      const store = new LocalPresenceStore();
      const bob = { id: 'b', username: 'bob' };
      const sweep = jest.fn(() => Promise.resolve({ gone: [{ roomId: 'r', user: bob }] }));
      Object.assign(store, {
        refresh: () =>
          Promise.resolve({ back: [{ roomId: 'r', user: ada }], error: new Error('BUSY') }),
        sweep,
      });
      create(store);
      const returned: unknown[] = [];
      const expired: unknown[] = [];
      presence.whenReturned((event) => returned.push(event));
      presence.whenExpired((event) => expired.push(event));
      presence.onModuleInit();

      await jest.advanceTimersByTimeAsync(10_000);

      expect(returned).toEqual([{ roomId: 'r', user: ada }]);
      expect(sweep).not.toHaveBeenCalled();
      expect(expired).toEqual([]);
      await presence.onApplicationShutdown();
    } finally {
      jest.useRealTimers();
    }
  });

  it('announces the users a partly failed sweep took out, and reports the failure', async () => {
    jest.useFakeTimers();
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const store = new LocalPresenceStore();
      const bob = { id: 'b', username: 'bob' };
      Object.assign(store, {
        sweep: () =>
          Promise.resolve({ gone: [{ roomId: 'r', user: bob }], error: new Error('READONLY') }),
      });
      create(store);
      const expired: unknown[] = [];
      presence.whenExpired((event) => expired.push(event));
      presence.onModuleInit();

      await jest.advanceTimersByTimeAsync(10_000);

      expect(expired).toEqual([{ roomId: 'r', user: bob }]);
      expect(warn).toHaveBeenCalledWith('Presence heartbeat failed: READONLY');
      await presence.onApplicationShutdown();
    } finally {
      warn.mockRestore();
      jest.useRealTimers();
    }
  });

  describe('a join the shared store missed', () => {
    const bob = { id: 'b', username: 'bob' };
    const heartbeat = () => jest.advanceTimersByTimeAsync(10_000);
    let refreshes: Array<{ back: []; added: Array<{ roomId: string; user: typeof ada }> }>;
    let unheard: unknown[];

    /** A store that fails `failingEnters` enters, and answers heartbeats as scripted. */
    const withStore = (failingEnters: number) => {
      const store = new LocalPresenceStore();
      const enter = store.enter.bind(store);
      let failures = failingEnters;
      Object.assign(store, {
        enter: (...args: Parameters<typeof enter>) =>
          failures-- > 0 ? Promise.reject(new Error('Redis is down')) : enter(...args),
        refresh: () => Promise.resolve(refreshes.shift() ?? { back: [], added: [] }),
      });
      create(store);
      unheard = [];
      presence.whenJoinUnheard((event) => unheard.push(event));
      presence.onModuleInit();
    };

    beforeEach(() => jest.useFakeTimers());
    afterEach(async () => {
      await presence.onApplicationShutdown();
      jest.useRealTimers();
    });

    it('is announced to the other nodes once a heartbeat stores it, and once only', async () => {
      withStore(1);
      refreshes = [
        { back: [], added: [{ roomId: 'r', user: ada }] },
        { back: [], added: [{ roomId: 'r', user: ada }] },
      ];
      expect((await presence.enter('r', ada, 'c1')).changed).toBe(true);

      await heartbeat();
      await heartbeat();
      expect(unheard).toEqual([{ roomId: 'r', user: ada }]);
    });

    it('is not announced again when the store had it, nor is a user it added for another reason', async () => {
      withStore(0);
      // Redis lost its data: the heartbeat adds everyone, who were all announced in their time.
      refreshes = [
        {
          back: [],
          added: [
            { roomId: 'r', user: ada },
            { roomId: 'r', user: bob },
          ],
        },
      ];
      await presence.enter('r', ada, 'c1');
      await presence.enter('r', bob, 'c1');

      await heartbeat();
      expect(unheard).toEqual([]);
    });

    it('is forgotten once its user left the room', async () => {
      withStore(1);
      refreshes = [{ back: [], added: [{ roomId: 'r', user: ada }] }];
      await presence.enter('r', ada, 'c1');
      await presence.leave('r', ada, 'c1');

      await heartbeat();
      expect(unheard).toEqual([]);
    });
  });
});
