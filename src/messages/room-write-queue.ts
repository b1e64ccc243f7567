/** A message waiting to be written, known by its room. */
export interface RoomBound {
  readonly input: { readonly roomId: string };
}

/**
 * Messages waiting to be written, in append order, and the rooms that writes
 * in flight hold. A write takes only messages of rooms no other write holds,
 * so two writes in flight never share a room: the database cannot commit a
 * room's later message before its earlier one, whichever statement reaches it
 * first.
 */
export class RoomWriteQueue<T extends RoomBound> {
  private queue: T[] = [];
  /** Rooms of the writes in flight; no two writes hold the same room. */
  private readonly held = new Set<string>();
  private free = 0;

  /** Messages waiting whose room no write holds. */
  get takeable(): number {
    return this.free;
  }

  push(item: T): void {
    this.queue.push(item);
    if (!this.held.has(item.input.roomId)) this.free += 1;
  }

  /**
   * Takes, in append order, up to `max` waiting messages of rooms no write
   * holds, and holds their rooms until `release`. A room's messages left
   * behind stay in order behind the taken ones.
   */
  take(max: number): T[] {
    const taken: T[] = [];
    const rest: T[] = [];
    for (const item of this.queue) {
      if (taken.length < max && !this.held.has(item.input.roomId)) taken.push(item);
      else rest.push(item);
    }
    this.queue = rest;
    for (const item of taken) this.held.add(item.input.roomId);
    this.countFree();
    return taken;
  }

  /** Lets other writes take the rooms of a batch `take` returned. */
  release(batch: T[]): void {
    for (const item of batch) this.held.delete(item.input.roomId);
    this.countFree();
  }

  private countFree(): void {
    this.free = this.queue.filter((item) => !this.held.has(item.input.roomId)).length;
  }
}
