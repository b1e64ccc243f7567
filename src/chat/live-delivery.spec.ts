import { Logger } from '@nestjs/common';
import { ServerEvent } from '@app/contract/events';
import { storedMessage } from '@app/contract/message.fixture';
import type { MessageJson } from '@app/contract/models';
import { roomNames } from '@app/contract/room-names';
import { LocalDeliveryBus } from '@app/delivery/delivery-bus';
import { DeliveryService, type Delivery } from '@app/delivery/delivery.service';
import type { HistoryPage, MessagesService } from '@app/messages/messages.service';
import type { RoomsService } from '@app/rooms/rooms.service';
import { LiveDelivery, MAX_GAP_FILL } from './live-delivery';

const ROOM = '0190c0de-0000-7000-8000-000000000001';

const message = (seq: number) => storedMessage(ROOM, seq);

/** Storage whose page reads the test answers when it chooses. */
class HeldStorage {
  readonly reads: Array<{
    since?: number;
    limit?: number;
    answer: (seqs: number[]) => void;
    fail: () => void;
  }> = [];

  page(_roomId: string, { since, limit }: { since?: number; limit?: number }) {
    return new Promise<HistoryPage>((resolve, reject) =>
      this.reads.push({
        since,
        limit,
        answer: (seqs) => resolve({ items: seqs.map(message), nextCursor: null }),
        fail: () => reject(new Error('storage down')),
      }),
    );
  }
}

/** One node whose link to the others came back: the test says when. */
class ReconnectingBus extends LocalDeliveryBus {
  resync: () => void = () => undefined;

  override onResync(handler: () => void): void {
    this.resync = handler;
  }
}

describe('LiveDelivery', () => {
  let bus: ReconnectingBus;
  let delivery: DeliveryService;
  let storage: HeldStorage;
  let live: LiveDelivery;
  let delivered: number[];
  /** The last seq storage has of every room. */
  let storedLastSeq: number;

  beforeEach(() => {
    bus = new ReconnectingBus();
    delivery = new DeliveryService(bus);
    storage = new HeldStorage();
    storedLastSeq = 0;
    const rooms = {
      lastSeqsOf: (ids: string[]) => Promise.resolve(new Map(ids.map((id) => [id, storedLastSeq]))),
    };
    live = new LiveDelivery(
      delivery,
      storage as unknown as MessagesService,
      rooms as unknown as RoomsService,
    );
    live.onModuleInit();
    delivered = [];
    live.subscribe((d: Delivery) => delivered.push((d.payload as MessageJson).seq));
  });

  const flush = () => new Promise((resolve) => setImmediate(resolve));

  it('delivers in seq order: drops repeats and fills a gap from storage first', async () => {
    live.track(ROOM, 0);
    delivery.messageCreated(message(1));
    delivery.messageCreated(message(1));
    delivery.messageCreated(message(4));
    delivery.messageCreated(message(3));
    delivery.messageCreated(message(5));
    expect(delivered).toEqual([1]);
    expect(storage.reads).toMatchObject([{ since: 1, limit: 2 }]);

    storage.reads[0].answer([2, 3]);
    await flush();
    expect(delivered).toEqual([1, 2, 3, 4, 5]);
    expect(live.deliveredSeq(ROOM)).toBe(5);
  });

  it('logs a listener failing while a gap fill delivers, rather than leave it unhandled', async () => {
    const logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      live.subscribe((d: Delivery) => {
        if ((d.payload as MessageJson).seq === 2) throw new Error('listener broke');
      });
      live.track(ROOM, 0);
      delivery.messageCreated(message(1));
      delivery.messageCreated(message(3));
      storage.reads[0].answer([2]);
      await flush();
      await new Promise((resolve) => setTimeout(resolve, 20));

      expect(unhandled).toEqual([]);
      expect(String(logged.mock.calls[0]?.[0])).toContain('listener broke');
    } finally {
      process.off('unhandledRejection', onUnhandled);
      logged.mockRestore();
    }
  });

  it('passes events of untracked rooms and other events straight through', () => {
    delivery.messageCreated(message(7));
    delivery.publish({
      channel: roomNames.chat(ROOM),
      event: ServerEvent.Typing,
      payload: { seq: -1 },
    });
    expect(delivered).toEqual([7, -1]);
    expect(live.deliveredSeq(ROOM)).toBeUndefined();
  });

  it('lets a fill that outlived its room deliver nothing stale once the room is tracked anew', async () => {
    live.track(ROOM, 0);
    delivery.messageCreated(message(3));
    live.untrackUnlessJoining(ROOM);
    live.track(ROOM, 3);
    delivery.messageCreated(message(4));

    storage.reads[0].answer([1, 2]);
    await flush();
    expect(delivered).toEqual([4]);
    expect(live.deliveredSeq(ROOM)).toBe(4);
  });

  it('keeps ordering a room its last subscriber left while a join of it is under way', () => {
    live.track(ROOM, 0);
    delivery.messageCreated(message(1));
    const release = live.holdUntilTracked(ROOM);
    live.untrackUnlessJoining(ROOM);
    expect(live.deliveredSeq(ROOM)).toBe(1);
    release();
    live.untrackUnlessJoining(ROOM);
    expect(live.deliveredSeq(ROOM)).toBeUndefined();
  });

  it('moves on past a gap when storage fails, so that clients see the jump', async () => {
    live.track(ROOM, 0);
    delivery.messageCreated(message(3));
    storage.reads[0].fail();
    await flush();
    expect(delivered).toEqual([3]);
    expect(live.deliveredSeq(ROOM)).toBe(3);
  });

  it('moves on past a gap that storage does not have, reading it once', async () => {
    live.track(ROOM, 0);
    delivery.messageCreated(message(3));
    storage.reads[0].answer([]);
    await flush();
    delivery.messageCreated(message(4));
    await flush();
    expect(delivered).toEqual([3, 4]);
    expect(storage.reads).toHaveLength(1);
  });

  describe('while a join reads where an untracked room stands', () => {
    it('holds its messages, then takes them in order once the room is tracked', () => {
      const release = live.holdUntilTracked(ROOM);
      delivery.messageCreated(message(4));
      delivery.messageCreated(message(5));
      expect(delivered).toEqual([]);
      live.track(ROOM, 3);
      expect(delivered).toEqual([4, 5]);
      expect(live.deliveredSeq(ROOM)).toBe(5);
      release();
      delivery.messageCreated(message(6));
      expect(delivered).toEqual([4, 5, 6]);
    });

    it('hands them on as they came when the last join ends without tracking it', () => {
      const first = live.holdUntilTracked(ROOM);
      const second = live.holdUntilTracked(ROOM);
      delivery.messageCreated(message(2));
      first();
      first();
      expect(delivered).toEqual([]);
      second();
      expect(delivered).toEqual([2]);
      delivery.messageCreated(message(3));
      expect(delivered).toEqual([2, 3]);
      expect(live.deliveredSeq(ROOM)).toBeUndefined();
    });

    it('holds no more than a gap fill would bring back', () => {
      live.holdUntilTracked(ROOM);
      for (let seq = 1; seq <= MAX_GAP_FILL + 2; seq += 1) delivery.messageCreated(message(seq));
      expect(delivered).toEqual([MAX_GAP_FILL + 1, MAX_GAP_FILL + 2]);
    });
  });

  describe('after the node was out of touch with the others', () => {
    beforeEach(() => (storedLastSeq = 100));

    it('reads every room it follows back from storage, without waiting for its next message', async () => {
      storedLastSeq = 4;
      live.track(ROOM, 2);
      bus.resync();
      await flush();
      expect(storage.reads).toMatchObject([{ since: 2, limit: 2 }]);
      delivery.messageCreated(message(5));
      storage.reads[0].answer([3, 4]);
      await flush();
      expect(delivered).toEqual([3, 4, 5]);
      expect(live.deliveredSeq(ROOM)).toBe(5);
    });

    it('reads nothing back of a room that storage has no more of', async () => {
      storedLastSeq = 2;
      live.track(ROOM, 2);
      bus.resync();
      await flush();
      expect(storage.reads).toEqual([]);
    });

    it('leaves more than a gap fill to the clients: the last message alone shows them the jump', async () => {
      storedLastSeq = MAX_GAP_FILL + 10;
      live.track(ROOM, 5);
      bus.resync();
      await flush();
      expect(storage.reads).toMatchObject([{ since: MAX_GAP_FILL + 9, limit: 1 }]);
      storage.reads[0].answer([MAX_GAP_FILL + 10]);
      await flush();
      expect(delivered).toEqual([MAX_GAP_FILL + 10]);
    });

    it('reads back after a gap fill under way, from where that fill ended', async () => {
      storedLastSeq = 4;
      live.track(ROOM, 0);
      delivery.messageCreated(message(3));
      bus.resync();
      await flush();
      expect(storage.reads).toHaveLength(1);
      storage.reads[0].answer([1, 2]);
      await flush();
      expect(delivered).toEqual([1, 2, 3]);
      expect(storage.reads[1]).toMatchObject({ since: 3, limit: 1 });
      storage.reads[1].answer([4]);
      await flush();
      expect(delivered).toEqual([1, 2, 3, 4]);
    });

    it('moves on when storage fails: the next message still goes out', async () => {
      live.track(ROOM, 2);
      bus.resync();
      await flush();
      storage.reads[0].fail();
      await flush();
      delivery.messageCreated(message(3));
      expect(delivered).toEqual([3]);
    });

    it('shares one more round among the resyncs that come while rooms are read back', async () => {
      live.track(ROOM, 0);
      bus.resync();
      await flush();
      bus.resync();
      bus.resync();
      await flush();
      expect(storage.reads).toHaveLength(1);
      storage.reads[0].answer([]);
      await flush();
      expect(storage.reads).toHaveLength(2);
      storage.reads[1].answer([]);
      await flush();
      expect(storage.reads).toHaveLength(2);
    });
  });
});
