import { ServerEvent } from '@app/contract/events';
import type { MessageJson } from '@app/contract/models';
import { roomNames } from '@app/contract/room-names';
import { LocalDeliveryBus } from '@app/delivery/delivery-bus';
import { DeliveryService, type Delivery } from '@app/delivery/delivery.service';
import type { HistoryPage, MessagesService } from '@app/messages/messages.service';
import { LiveDelivery, MAX_GAP_FILL } from './live-delivery';

const ROOM = '0190c0de-0000-7000-8000-000000000001';

const message = (seq: number): MessageJson => ({
  id: `m${seq}`,
  roomId: ROOM,
  seq,
  userId: 'u',
  username: 'ada',
  text: `m${seq}`,
  clientMsgId: null,
  createdAt: new Date(0).toISOString(),
});

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

describe('LiveDelivery', () => {
  let delivery: DeliveryService;
  let storage: HeldStorage;
  let live: LiveDelivery;
  let delivered: number[];

  beforeEach(() => {
    delivery = new DeliveryService(new LocalDeliveryBus());
    storage = new HeldStorage();
    live = new LiveDelivery(delivery, storage as unknown as MessagesService);
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
    live.untrack(ROOM);
    live.track(ROOM, 3);
    delivery.messageCreated(message(4));

    storage.reads[0].answer([1, 2]);
    await flush();
    expect(delivered).toEqual([4]);
    expect(live.deliveredSeq(ROOM)).toBe(4);
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
});
