import type { RoomJson } from '@app/contract/models';
import { roomNames } from '@app/contract/room-names';
import { LocalDeliveryBus } from '@app/delivery/delivery-bus';
import { DeliveryService } from '@app/delivery/delivery.service';
import { EventStreamSlots } from './event-stream-slots';
import { SseHub, type SseSubscriber, type StreamSlot } from './sse.hub';

const MAX_STREAMS_PER_USER = 3;

function room(id: string): RoomJson {
  return {
    id,
    name: id,
    isPrivate: true,
    ownerId: 'owner',
    createdAt: new Date(0).toISOString(),
    lastSeq: 0,
  };
}

/** An in-process bus whose link to other nodes comes back when the test says. */
class ReconnectingBus extends LocalDeliveryBus {
  resync: () => void = () => undefined;

  override onResync(handler: () => void): void {
    this.resync = handler;
  }
}

/** What storage holds of each room: its last seq, and the reads made of it. */
class StoredRooms {
  readonly lastSeqs = new Map<string, number>();
  readonly reads: Array<{ roomId: string; since: number; limit: number }> = [];

  lastSeqsOf(ids: string[]): Promise<Map<string, number>> {
    return Promise.resolve(new Map([...this.lastSeqs].filter(([id]) => ids.includes(id))));
  }

  page(roomId: string, { since, limit }: { since: number; limit: number }) {
    this.reads.push({ roomId, since, limit });
    const upTo = Math.min(this.lastSeqs.get(roomId) ?? 0, since + limit);
    const items = [];
    for (let seq = since + 1; seq <= upTo; seq += 1) items.push({ roomId, seq });
    return Promise.resolve({ items, nextCursor: null });
  }
}

/** A hub on an in-process bus, whose streams write what happens to them into one log. */
function setUp() {
  const bus = new ReconnectingBus();
  const stored = new StoredRooms();
  const delivery = new DeliveryService(bus);
  const shutdownSteps: (() => unknown)[] = [];
  const slots = new EventStreamSlots(
    { get: () => MAX_STREAMS_PER_USER } as never,
    { enabled: false } as never,
  );
  const hub = new SseHub(
    delivery,
    slots,
    { connections: { inc: () => undefined, dec: () => undefined } } as never,
    { register: (_phase: string, step: () => unknown) => shutdownSteps.push(step) } as never,
    stored as never,
    stored as never,
  );
  hub.onModuleInit();
  const log: string[] = [];
  const open = async (
    name: string,
    userId: string,
    channel: string,
    feed?: SseSubscriber['feed'],
    { membersOnly = true } = {},
  ): Promise<SseSubscriber> => {
    const slot = await hub.reserve(userId);
    let detach: () => void = () => undefined;
    const subscriber: SseSubscriber = {
      userId,
      channel,
      feed,
      membersOnly,
      receive: (d) => log.push(`${name} <- ${d.event}`),
      close: (reason) => {
        log.push(`${name} closed: ${reason.code} ${reason.message}`);
        detach();
      },
    };
    detach = hub.attach(subscriber, slot);
    return subscriber;
  };
  /** How many more slots the user may reserve now; the probes are released again. */
  const allowanceLeft = async (userId: string) => {
    const reserved: StreamSlot[] = [];
    try {
      for (;;) reserved.push(await hub.reserve(userId));
    } catch {
      for (const slot of reserved) slot.release();
      return reserved.length;
    }
  };
  const shutdown = () => shutdownSteps.forEach((step) => step());
  return { hub, bus, stored, delivery, log, open, allowanceLeft, shutdown };
}

/** A room feed at `position` (undefined: replaying) that records the pages handed to it. */
function recordingFeed(position: number, replaying = false) {
  const handed: number[][] = [];
  const readAgain: number[] = [];
  const feed = {
    position,
    catchUpWith: (stored: Array<{ seq: number }>) => handed.push(stored.map(({ seq }) => seq)),
    readAgainUpTo: (upTo: number) => replaying && readAgain.push(upTo) > 0,
  };
  return { feed: feed as unknown as SseSubscriber['feed'], handed, readAgain };
}

const settle = async () => {
  for (let i = 0; i < 5; i += 1) await new Promise((resolve) => setImmediate(resolve));
};

describe('SseHub', () => {
  const by = { id: 'owner', username: 'owner' };

  it("ends the user's streams of the room they left, after their personal stream got the notification", async () => {
    const { hub, delivery, log, open } = setUp();
    await open('bob', 'bob', roomNames.user('bob'));
    await open('bob/a', 'bob', roomNames.chat('a'));
    await open('bob/a again', 'bob', roomNames.chat('a'));
    await open('carol/a', 'carol', roomNames.chat('a'));

    delivery.membershipEnded('bob', room('a'), by);

    expect(log).toEqual([
      'bob <- notification',
      'bob/a closed: NOT_FOUND Room not found',
      'bob/a again closed: NOT_FOUND Room not found',
    ]);
    expect(hub.streamCount).toBe(2);
    delivery.messageCreated({ roomId: 'a' } as never);
    expect(log.slice(3)).toEqual(['carol/a <- chat:message']);
  });

  it("keeps the user's stream of a public room they left: anyone may read it", async () => {
    const { hub, delivery, log, open } = setUp();
    await open('bob/a', 'bob', roomNames.chat('a'), undefined, { membersOnly: false });

    delivery.membershipEnded('bob', room('a'), by);
    delivery.messageCreated({ roomId: 'a' } as never);

    expect(log).toEqual(['bob/a <- chat:message']);
    expect(hub.streamCount).toBe(1);
  });

  it("keeps the user's other rooms and other users' streams when a membership ends", async () => {
    const { hub, delivery, log, open } = setUp();
    await open('bob/b', 'bob', roomNames.chat('b'));
    await open('carol', 'carol', roomNames.user('carol'));

    delivery.membershipEnded('bob', room('a'), by);

    expect(log).toEqual([]);
    expect(hub.streamCount).toBe(2);
  });

  it("ends every stream of a closed account, personal and room, and no one else's", async () => {
    const { hub, delivery, log, open } = setUp();
    await open('bob', 'bob', roomNames.user('bob'));
    await open('bob/a', 'bob', roomNames.chat('a'));
    await open('bob/b', 'bob', roomNames.chat('b'));
    await open('carol/a', 'carol', roomNames.chat('a'));

    delivery.accountClosed('bob');

    expect(log).toEqual([
      'bob <- error',
      'bob closed: UNAUTHORIZED Account deleted',
      'bob/a closed: UNAUTHORIZED Account deleted',
      'bob/b closed: UNAUTHORIZED Account deleted',
    ]);
    expect(hub.streamCount).toBe(1);
    expect(hub.channelCount).toBe(1);
  });

  it("gives back the user's allowance for every stream it ends", async () => {
    const { hub, delivery, open, allowanceLeft } = setUp();
    for (let i = 0; i < MAX_STREAMS_PER_USER; i += 1)
      await open(`bob/${i}`, 'bob', roomNames.chat('a'));
    await expect(open('bob/over', 'bob', roomNames.chat('a'))).rejects.toMatchObject({
      code: 'RATE_LIMITED',
    });

    delivery.accountClosed('bob');

    expect(hub.streamCount).toBe(0);
    expect(await allowanceLeft('bob')).toBe(MAX_STREAMS_PER_USER);
  });

  it('gives a slot back once, however often it is released', async () => {
    const { hub, allowanceLeft } = setUp();
    const slot = await hub.reserve('bob');
    await hub.reserve('bob');

    slot.release();
    slot.release();

    expect(await allowanceLeft('bob')).toBe(MAX_STREAMS_PER_USER - 1);
  });

  it('closes nothing for a delivery without an effect', async () => {
    const { hub, delivery, log, open } = setUp();
    await open('bob', 'bob', roomNames.user('bob'));
    await open('bob/a', 'bob', roomNames.chat('a'));

    delivery.notify('bob', { type: 'room:invited', room: room('a'), by });

    expect(log).toEqual(['bob <- notification']);
    expect(hub.streamCount).toBe(2);
  });

  it("serializes a delivery's payload once for all the streams of its channel", async () => {
    const { delivery, open } = setUp();
    const received: string[] = [];
    for (const name of ['bob', 'carol', 'dave']) {
      const stream = await open(name, name, roomNames.chat('a'));
      stream.receive = (_delivery, payloadJson) => received.push(payloadJson());
    }
    const message = { roomId: 'a', seq: 1, text: 'hi' };
    const toJSON = jest.fn(() => message);

    delivery.messageCreated({ ...message, toJSON } as never);

    expect(received).toEqual(Array(3).fill(JSON.stringify(message)));
    expect(toJSON).toHaveBeenCalledTimes(1);
  });

  it('ends every stream on shutdown, telling its client to connect again', async () => {
    const { hub, log, open, shutdown } = setUp();
    await open('bob', 'bob', roomNames.user('bob'));
    await open('carol/a', 'carol', roomNames.chat('a'));

    shutdown();

    expect(log).toEqual([
      'bob closed: UNAVAILABLE The server is shutting down: connect again',
      'carol/a closed: UNAVAILABLE The server is shutting down: connect again',
    ]);
    expect(hub.streamCount).toBe(0);
    expect(hub.channelCount).toBe(0);
  });

  describe('after the node was out of touch with the others', () => {
    it('reads each room once, from the stream furthest behind, for every stream behind', async () => {
      const { bus, stored, open } = setUp();
      stored.lastSeqs.set('a', 5).set('b', 2);
      const [behind, ahead, current, replaying, other] = [
        recordingFeed(1),
        recordingFeed(3),
        recordingFeed(5),
        recordingFeed(0, true),
        recordingFeed(2),
      ];
      await open('bob/a', 'bob', roomNames.chat('a'), behind.feed);
      await open('carol/a', 'carol', roomNames.chat('a'), ahead.feed);
      await open('erin/a', 'erin', roomNames.chat('a'), current.feed);
      await open('fay/a', 'fay', roomNames.chat('a'), replaying.feed);
      await open('dan/b', 'dan', roomNames.chat('b'), other.feed);
      await open('bob', 'bob', roomNames.user('bob'));

      bus.resync();
      await settle();

      expect(stored.reads).toEqual([{ roomId: 'a', since: 1, limit: 4 }]);
      expect(behind.handed).toEqual([[2, 3, 4, 5]]);
      expect(ahead.handed).toEqual([[2, 3, 4, 5]]);
      expect(current.handed).toEqual([]);
      // Still in its first replay: it reads the rest itself once done, not from this page.
      expect(replaying.handed).toEqual([]);
      expect(replaying.readAgain).toEqual([5]);
      expect(other.handed).toEqual([]);
    });

    it('reads no more than a thousand messages back: a stream further behind reads the rest', async () => {
      const { bus, stored, open } = setUp();
      stored.lastSeqs.set('a', 1500);
      const behind = recordingFeed(10);
      await open('bob/a', 'bob', roomNames.chat('a'), behind.feed);

      bus.resync();
      await settle();

      expect(stored.reads).toEqual([{ roomId: 'a', since: 500, limit: 1000 }]);
      expect(behind.handed[0]).toHaveLength(1000);
    });
  });
});
