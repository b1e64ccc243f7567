import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { roomNames } from '@app/contract/room-names';
import {
  accountClosedDelivery,
  DeliveryService,
  membershipEndedDelivery,
  type Listening,
} from '@app/delivery/delivery.service';
import { UsersService } from '@app/users/users.service';
import { RoomView } from './dto/room.view';
import { RoomsService } from './rooms.service';

const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 30_000;

interface Holding {
  userId: string;
  roomId: string;
}

/**
 * Removals and account deletions reach the connections of other nodes as
 * deliveries; a node out of touch with Redis meanwhile never got them, and
 * its connections would keep receiving rooms their users may no longer see.
 * Once deliveries reach the node again, this checks every user and private
 * room its connections hold against the database, and ends locally what is
 * no longer allowed, as those deliveries would have (only `by` is unknown).
 */
@Injectable()
export class AccessAudit implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(AccessAudit.name);
  private running?: Promise<void>;
  /** The run after the current one, shared by every request made meanwhile. */
  private next?: Promise<void>;
  private removalsBefore = 0;
  private readonly stopping = new AbortController();
  private detach?: () => void;

  constructor(
    private readonly delivery: DeliveryService,
    private readonly rooms: RoomsService,
    private readonly users: UsersService,
  ) {}

  onModuleInit(): void {
    this.detach = this.delivery.onResync(() => this.request());
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping.abort();
    this.detach?.();
    await this.running;
  }

  /**
   * Resolves once an audit that started after this request has finished:
   * requests made while one runs share the next.
   */
  request(): Promise<void> {
    if (!this.running) {
      this.removalsBefore = this.rooms.removalMark();
      return this.startRun();
    }
    if (this.stopping.signal.aborted) return Promise.resolve();
    this.next ??= this.running.then(() => {
      this.next = undefined;
      return this.startRun();
    });
    return this.next;
  }

  private startRun(): Promise<void> {
    this.running = this.runUntilDone().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** A database that does not answer yet is tried again, for as long as the node runs. */
  private async runUntilDone(): Promise<void> {
    const { signal } = this.stopping;
    for (let attempt = 0; !signal.aborted; attempt += 1) {
      try {
        return await this.run(this.removalsBefore);
      } catch (error) {
        this.logger.warn(`Access audit failed, trying again: ${(error as Error).message}`);
        const delay = Math.min(RETRY_FIRST_MS * 2 ** attempt, RETRY_MAX_MS);
        await sleep(delay, undefined, { signal }).catch(() => undefined);
      }
    }
  }

  /**
   * `removalsBefore`: the removals this node had seen when the first of the
   * audits running back to back was asked for. A removal seen since arrived
   * while deliveries were held, and its own delivery will end the pair, with
   * who removed the user; one seen before has been handed out already.
   */
  private async run(removalsBefore: number): Promise<void> {
    const { users, holdings } = collect(this.delivery.audience());
    const gone = new Set(await this.users.goneAmong([...users]));
    const lost = await this.rooms.privateAccessLostAmong(
      holdings.filter((holding) => !gone.has(holding.userId)),
    );
    // What changed during the reads: users who left, removals that arrived meanwhile.
    const { users: stillHere, holdings: stillHeld } = collect(this.delivery.audience());
    const held = new Set(stillHeld.map(key));
    const goneNow = [...gone].filter((userId) => stillHere.has(userId));
    const lostNow = lost.filter(
      ({ userId, room }) =>
        held.has(key({ userId, roomId: room.id })) &&
        !this.rooms.removedSince(removalsBefore, room.id, userId),
    );
    for (const userId of goneNow) this.delivery.deliverLocally(accountClosedDelivery(userId));
    for (const { userId, room } of lostNow) {
      this.delivery.deliverLocally(membershipEndedDelivery(userId, RoomView.from(room)));
    }
    if (goneNow.length + lostNow.length > 0) {
      this.logger.log(
        `Ended what other nodes had ended while out of touch: ${goneNow.length} account(s), ${lostNow.length} membership(s)`,
      );
    }
  }
}

const key = ({ userId, roomId }: Holding) => `${roomId}:${userId}`;

/** The users listening on this node, and each (user, room) pair once. */
function collect(audience: Iterable<Listening>): { users: Set<string>; holdings: Holding[] } {
  const users = new Set<string>();
  const pairs = new Map<string, Holding>();
  for (const { userId, channel } of audience) {
    users.add(userId);
    const roomId = roomNames.roomIdOf(channel);
    if (roomId !== undefined) pairs.set(key({ userId, roomId }), { userId, roomId });
  }
  return { users, holdings: [...pairs.values()] };
}
