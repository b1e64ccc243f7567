import { MinHeap } from '@app/common/min-heap';

/** A message waiting to be written, known by its room. */
export interface RoomBound {
  readonly input: { readonly roomId: string };
}

interface Waiting<T> {
  item: T;
  /** Its place in the order of appends. */
  order: number;
}

/** One room's waiting messages, oldest first; taking from the front is O(1). */
class RoomLine<T> {
  /** Taken entries are cleared, so that their messages can be collected before a compaction. */
  private entries: Array<Waiting<T> | undefined> = [];
  private head = 0;

  get length(): number {
    return this.entries.length - this.head;
  }

  get first(): Waiting<T> | undefined {
    return this.entries[this.head];
  }

  push(entry: Waiting<T>): void {
    this.entries.push(entry);
  }

  shift(): Waiting<T> {
    const entry = this.entries[this.head]!;
    this.entries[this.head] = undefined;
    this.head += 1;
    if (this.head > 64 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return entry;
  }
}

/** How many rooms are written alone at most. */
export const MAX_ISOLATED_ROOMS = 1_000;

/** A room ready to give its first waiting message, as of when it was listed. */
interface ReadyRoom {
  roomId: string;
  order: number;
}

/**
 * Messages waiting to be written, in append order, and the rooms that writes
 * in flight hold. A write takes only messages of rooms no other write holds,
 * so two writes in flight never share a room: the database cannot commit a
 * room's later message before its earlier one, whichever statement reaches it
 * first. Each room keeps its own line, and the rooms free to write wait in a
 * heap by their oldest message, so a take costs what it takes, not what waits.
 * A room under suspicion (`isolate`) is written alone until `trust`: a room
 * whose row another session holds stalls every write it is in, not only its own.
 */
export class RoomWriteQueue<T extends RoomBound> {
  private readonly lines = new Map<string, RoomLine<T>>();
  /** May list a room more than once or out of date; `isCurrent` tells. */
  private readonly ready = new MinHeap<ReadyRoom>((a, b) => a.order < b.order);
  /** Rooms of the writes in flight; no two writes hold the same room. */
  private readonly held = new Set<string>();
  /** Rooms written in writes of their own, whose messages join no other room's. */
  private readonly isolated = new Set<string>();
  private appended = 0;
  private free = 0;
  private waiting = 0;

  /** Messages waiting whose room no write holds. */
  get takeable(): number {
    return this.free;
  }

  /** Messages waiting, whether their room is held or not. */
  get size(): number {
    return this.waiting;
  }

  push(item: T): void {
    const roomId = item.input.roomId;
    const line = this.lines.get(roomId) ?? new RoomLine<T>();
    this.lines.set(roomId, line);
    const entry = { item, order: this.appended++ };
    line.push(entry);
    this.waiting += 1;
    if (this.held.has(roomId)) return;
    this.free += 1;
    if (line.length === 1) this.ready.push({ roomId, order: entry.order });
  }

  /**
   * Takes, in append order, up to `max` waiting messages of rooms no write
   * holds, and holds their rooms until `release`. A room's messages left
   * behind stay in order behind the taken ones. An isolated room's messages
   * are taken only alone, when it is the first room free.
   */
  take(max: number): T[] {
    const taken: T[] = [];
    const rooms = new Set<string>();
    const passedOver: ReadyRoom[] = [];
    while (taken.length < max) {
      const next = this.ready.pop();
      if (!next) break;
      if (!this.isCurrent(next)) continue;
      if (this.isolated.has(next.roomId)) {
        if (taken.length > 0) {
          passedOver.push(next);
          continue;
        }
        this.shiftFrom(next.roomId, max, taken);
        rooms.add(next.roomId);
        break;
      }
      this.shiftFrom(next.roomId, 1, taken);
      rooms.add(next.roomId);
    }
    for (const room of passedOver) this.ready.push(room);
    this.free -= taken.length;
    this.waiting -= taken.length;
    for (const roomId of rooms) this.hold(roomId);
    return taken;
  }

  /**
   * The rooms of a write that stalled: each is written alone from now on.
   * The oldest go back to sharing writes past MAX_ISOLATED_ROOMS (rooms
   * deleted, or gone quiet, before a write of theirs committed).
   */
  isolate(batch: T[]): void {
    for (const item of batch) {
      this.isolated.delete(item.input.roomId);
      this.isolated.add(item.input.roomId);
    }
    for (const roomId of this.isolated) {
      if (this.isolated.size <= MAX_ISOLATED_ROOMS) break;
      this.isolated.delete(roomId);
    }
  }

  /** The rooms of a write that committed: they join others' writes again. */
  trust(batch: T[]): void {
    for (const item of batch) this.isolated.delete(item.input.roomId);
  }

  private shiftFrom(roomId: string, count: number, taken: T[]): void {
    const line = this.lines.get(roomId)!;
    for (let shifted = 0; shifted < count && line.length > 0; shifted += 1)
      taken.push(line.shift().item);
    if (line.length > 0) this.ready.push({ roomId, order: line.first!.order });
    else this.lines.delete(roomId);
  }

  /**
   * Removes and returns the waiting messages that `isExpired` picks, which
   * must be the first ones of their rooms (as when they expire in the order
   * they were appended): the rest stay in order.
   */
  expire(isExpired: (item: T) => boolean): T[] {
    const expired: T[] = [];
    for (const [roomId, line] of this.lines) {
      const before = expired.length;
      while (line.length > 0 && isExpired(line.first!.item)) expired.push(line.shift().item);
      const removed = expired.length - before;
      if (removed === 0) continue;
      if (line.length === 0) this.lines.delete(roomId);
      if (this.held.has(roomId)) continue;
      this.free -= removed;
      if (line.length > 0) this.ready.push({ roomId, order: line.first!.order });
    }
    this.waiting -= expired.length;
    return expired;
  }

  /** Lets other writes take the rooms of a batch `take` returned. */
  release(batch: T[]): void {
    for (const roomId of new Set(batch.map((item) => item.input.roomId))) {
      if (!this.held.delete(roomId)) continue;
      const line = this.lines.get(roomId);
      if (!line) continue;
      this.free += line.length;
      this.ready.push({ roomId, order: line.first!.order });
    }
  }

  private hold(roomId: string): void {
    this.held.add(roomId);
    this.free -= this.lines.get(roomId)?.length ?? 0;
  }

  /** Whether a listed room is still free and its first message still the one listed. */
  private isCurrent({ roomId, order }: ReadyRoom): boolean {
    return !this.held.has(roomId) && this.lines.get(roomId)?.first?.order === order;
  }
}
