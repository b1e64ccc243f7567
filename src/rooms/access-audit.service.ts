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
  private runAgain = false;
  private detach?: () => void;

  constructor(
    private readonly delivery: DeliveryService,
    private readonly rooms: RoomsService,
    private readonly users: UsersService,
  ) {}

  onModuleInit(): void {
    this.detach = this.delivery.onResync(() => void this.request());
  }

  async onApplicationShutdown(): Promise<void> {
    this.detach?.();
    await this.running;
  }

  /** Runs an audit; one asked for while another runs follows it, once, with what holds then. */
  request(): Promise<void> {
    if (this.running) {
      this.runAgain = true;
      return this.running;
    }
    this.running = this.run()
      .catch((error: unknown) =>
        this.logger.warn(`Access audit failed: ${(error as Error).message}`),
      )
      .finally(() => {
        this.running = undefined;
        if (this.runAgain) {
          this.runAgain = false;
          void this.request();
        }
      });
    return this.running;
  }

  private async run(): Promise<void> {
    const { users, holdings } = collect(this.delivery.audience());
    const gone = new Set(await this.users.goneAmong([...users]));
    for (const userId of gone) this.delivery.deliverLocally(accountClosedDelivery(userId));
    const held = holdings.filter((holding) => !gone.has(holding.userId));
    const lost = await this.rooms.privateAccessLostAmong(held);
    for (const { userId, room } of lost) {
      this.delivery.deliverLocally(membershipEndedDelivery(userId, RoomView.from(room)));
    }
    if (gone.size + lost.length > 0) {
      this.logger.log(
        `Ended what other nodes had ended while out of touch: ${gone.size} account(s), ${lost.length} membership(s)`,
      );
    }
  }
}

/** The users listening on this node, and each (user, room) pair once. */
function collect(audience: Iterable<Listening>): { users: Set<string>; holdings: Holding[] } {
  const users = new Set<string>();
  const pairs = new Map<string, Holding>();
  for (const { userId, channel } of audience) {
    users.add(userId);
    const roomId = roomNames.roomIdOf(channel);
    if (roomId !== undefined) pairs.set(`${roomId}:${userId}`, { userId, roomId });
  }
  return { users, holdings: [...pairs.values()] };
}
