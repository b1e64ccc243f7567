import fc from 'fast-check';
import { MAX_ISOLATED_ROOMS, RoomWriteQueue } from './room-write-queue';

interface Item {
  input: { roomId: string };
  n: number;
}

const item = (roomId: string, n: number): Item => ({ input: { roomId }, n });
const numbers = (items: Item[]) => items.map((i) => i.n);

type Step =
  | { kind: 'push'; room: number }
  | { kind: 'take'; max: number }
  | { kind: 'release'; which: number }
  | { kind: 'expire'; keep: number }
  | { kind: 'isolate'; room: number }
  | { kind: 'trust'; room: number };

const steps = fc.array(
  fc.oneof(
    fc.record({ kind: fc.constant('push' as const), room: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ kind: fc.constant('take' as const), max: fc.integer({ min: 1, max: 5 }) }),
    fc.record({ kind: fc.constant('release' as const), which: fc.nat() }),
    fc.record({ kind: fc.constant('expire' as const), keep: fc.nat({ max: 12 }) }),
    fc.record({
      kind: fc.constantFrom('isolate' as const, 'trust' as const),
      room: fc.integer({ min: 0, max: 3 }),
    }),
  ),
  { maxLength: 80 },
);

/**
 * What a plain scan in append order takes: the first `max` waiting messages
 * of free rooms, except that an isolated room goes alone, when it comes first.
 */
function plainTake(waiting: Item[], held: Set<string>, isolated: Set<string>, max: number) {
  const free = waiting.filter((w) => !held.has(w.input.roomId));
  const first = free[0];
  if (first && isolated.has(first.input.roomId))
    return free.filter((w) => w.input.roomId === first.input.roomId).slice(0, max);
  const taken: Item[] = [];
  for (const w of free) {
    if (taken.length === max) break;
    if (!isolated.has(w.input.roomId)) taken.push(w);
  }
  return taken;
}

describe('RoomWriteQueue', () => {
  it('writes an isolated room alone, when it comes first, until trusted again', () => {
    const queue = new RoomWriteQueue<Item>();
    ['a', 'b', 'a', 'c', 'b'].forEach((room, n) => queue.push(item(room, n)));
    queue.isolate([item('b', -1)]);

    const first = queue.take(10);
    expect(numbers(first)).toEqual([0, 2, 3]);
    expect(numbers(queue.take(10))).toEqual([1, 4]);
    queue.release(first);

    queue.trust([item('b', -1)]);
    ['b', 'a'].forEach((room, n) => queue.push(item(room, 5 + n)));
    expect(numbers(queue.take(10))).toEqual([6]);
  });

  it('lets the rooms isolated longest ago share writes again past the bound', () => {
    const queue = new RoomWriteQueue<Item>();
    const rooms = Array.from({ length: MAX_ISOLATED_ROOMS + 1 }, (_, n) => `r${n}`);
    queue.isolate(rooms.map((room) => item(room, -1)));
    // Isolated again: the newest now.
    queue.isolate([item('r0', -1)]);
    ['r1', 'r2', 'r0'].forEach((room, n) => queue.push(item(room, n)));

    expect(numbers(queue.take(10))).toEqual([0]);
    expect(numbers(queue.take(10))).toEqual([1]);
    expect(numbers(queue.take(10))).toEqual([2]);

    const fresh = new RoomWriteQueue<Item>();
    fresh.isolate(rooms.map((room) => item(room, -1)));
    ['r0', 'r1'].forEach((room, n) => fresh.push(item(room, n)));
    expect(numbers(fresh.take(10))).toEqual([0]);
  });

  it('takes in append order up to the limit, skipping rooms a write in flight holds', () => {
    const queue = new RoomWriteQueue<Item>();
    ['a', 'b', 'a', 'c', 'b', 'c'].forEach((room, n) => queue.push(item(room, n)));

    const first = queue.take(3);
    expect(numbers(first)).toEqual([0, 1, 2]);
    expect(queue.takeable).toBe(2);
    expect(numbers(queue.take(10))).toEqual([3, 5]);
    expect(queue.takeable).toBe(0);

    queue.release(first);
    expect(queue.takeable).toBe(1);
    expect(numbers(queue.take(10))).toEqual([4]);
  });

  it('takes, after some of a room’s messages expired, the rest in order, held room or not', () => {
    const queue = new RoomWriteQueue<Item>();
    ['a', 'a', 'a', 'b', 'b', 'b'].forEach((room, n) => queue.push(item(room, n)));
    const held = queue.take(1);
    expect(numbers(held)).toEqual([0]);

    expect(numbers(queue.expire((i) => i.n === 1 || i.n === 3))).toEqual([1, 3]);
    expect([queue.size, queue.takeable]).toEqual([3, 2]);
    expect(numbers(queue.take(10))).toEqual([4, 5]);
    queue.release(held);
    expect(numbers(queue.take(10))).toEqual([2]);
    expect([queue.size, queue.takeable]).toEqual([0, 0]);
  });

  it('takes what a plain scan in append order would, and never lets two writes share a room, messages expiring or not', () => {
    fc.assert(
      fc.property(steps, (script: Step[]) => {
        const queue = new RoomWriteQueue<Item>();
        const inFlight: Item[][] = [];
        const isolated = new Set<string>();
        const pushed = new Map<string, number[]>();
        const handedOut = new Map<string, number[]>();
        let waiting: Item[] = [];
        const expiredNumbers = new Set<number>();
        script.forEach((step, n) => {
          if (step.kind === 'push') {
            const roomId = `r${step.room}`;
            queue.push(item(roomId, n));
            waiting.push(item(roomId, n));
            pushed.set(roomId, [...(pushed.get(roomId) ?? []), n]);
          } else if (step.kind === 'take') {
            const batch = queue.take(step.max);
            const held = new Set(inFlight.flat().map((i) => i.input.roomId));
            // Exactly the first `max` waiting messages whose rooms are free, in append order.
            const expected = plainTake(waiting, held, isolated, step.max);
            expect(numbers(batch)).toEqual(numbers(expected));
            const rooms = new Set(batch.map((taken) => taken.input.roomId));
            if ([...rooms].some((roomId) => isolated.has(roomId))) expect(rooms.size).toBe(1);
            for (const taken of batch) {
              const roomId = taken.input.roomId;
              handedOut.set(roomId, [...(handedOut.get(roomId) ?? []), taken.n]);
            }
            waiting = waiting.filter((w) => !batch.some((b) => b.n === w.n));
            if (batch.length > 0) inFlight.push(batch);
          } else if (step.kind === 'expire') {
            // Messages expire in the order they were appended: those older than `keep` steps.
            const before = n - step.keep;
            const expired = queue.expire((i) => i.n < before);
            const sorted = (list: number[]) => [...list].sort((a, b) => a - b);
            expect(sorted(numbers(expired))).toEqual(numbers(waiting.filter((w) => w.n < before)));
            for (const w of waiting) if (w.n < before) expiredNumbers.add(w.n);
            waiting = waiting.filter((w) => w.n >= before);
          } else if (step.kind === 'isolate' || step.kind === 'trust') {
            const roomId = `r${step.room}`;
            if (step.kind === 'isolate') {
              queue.isolate([item(roomId, -1)]);
              isolated.add(roomId);
            } else {
              queue.trust([item(roomId, -1)]);
              isolated.delete(roomId);
            }
          } else if (inFlight.length > 0) {
            queue.release(inFlight.splice(step.which % inFlight.length, 1)[0]);
          }
          const held = new Set(inFlight.flat().map((i) => i.input.roomId));
          expect(queue.takeable).toBe(waiting.filter((w) => !held.has(w.input.roomId)).length);
          expect(queue.size).toBe(waiting.length);
        });
        for (const [roomId, order] of handedOut) {
          const kept = pushed.get(roomId)!.filter((n) => !expiredNumbers.has(n));
          expect(order).toEqual(kept.slice(0, order.length));
        }
      }),
      { numRuns: 300 },
    );
  });
});
