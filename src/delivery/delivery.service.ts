import { Injectable } from '@nestjs/common';
import { NotificationType, ServerEvent } from '@app/contract/events';
import { AppException } from '@app/common/errors/app.exception';
import type {
  MessageJson,
  NotificationJson,
  RoomJson,
  UserSummaryJson,
} from '@app/contract/models';
import { roomNames } from '@app/contract/room-names';
import type { UserJoinedEvent } from '@app/contract/socket-events';
import { DeliveryBus } from './delivery-bus';

/** What a delivery does to the connections it reaches, besides telling them. */
export const DeliveryEffectKind = {
  /** They stop receiving the room and leave its presence. */
  LeaveRoom: 'leave-room',
  /** They are closed as unauthorized. */
  Disconnect: 'disconnect',
} as const;

/** Always published on the user's own channel, `user:<userId>`. */
export type DeliveryEffect =
  | { kind: typeof DeliveryEffectKind.LeaveRoom; userId: string; roomId: string }
  | { kind: typeof DeliveryEffectKind.Disconnect; userId: string };

/** One event for one channel (`chat:<roomId>` or `user:<userId>`). */
export interface Delivery {
  channel: string;
  event: ServerEvent;
  payload: unknown;
  /** Not to this connection (the one the event came from). */
  except?: { connectionId: string };
  /** Applied by every transport to its local subscribers of the channel, after the event. */
  effect?: DeliveryEffect;
  /** To the other nodes only: this node's subscribers have had it. */
  elsewhereOnly?: true;
}

export type DeliveryListener = (delivery: Delivery) => void;

/** Runs when this node may have missed other nodes' deliveries; resolves once it has caught up. */
export type ResyncListener = () => Promise<unknown> | void;

/**
 * The longest deliveries wait for a resync, from its start, however many
 * more come meanwhile: long enough for an audit's few queries, short enough
 * that a database that does not answer cannot stop them.
 */
export const RESYNC_HOLD_MS = 10_000;
/** Past this many held deliveries, they go out at once: the hold must not grow without end. */
export const MAX_HELD = 50_000;

/** One user receiving one channel on this node, over any transport. */
export interface Listening {
  userId: string;
  channel: string;
}

/** What one transport's connections on this node receive, read when asked. */
export type AudienceSource = () => Iterable<Listening>;

/**
 * The user is no longer a member of the room: they are told, and every
 * connection of theirs leaves the room. `by` is who removed them, when known.
 */
export function membershipEndedDelivery(
  userId: string,
  room: RoomJson,
  by?: UserSummaryJson,
): Delivery {
  return {
    channel: roomNames.user(userId),
    event: ServerEvent.Notification,
    payload: { type: NotificationType.RoomRemoved, room, ...(by ? { by } : {}) },
    effect: { kind: DeliveryEffectKind.LeaveRoom, userId, roomId: room.id },
  };
}

/** The account is gone: every connection of the user is told so and closed. */
export function accountClosedDelivery(userId: string): Delivery {
  return {
    channel: roomNames.user(userId),
    event: ServerEvent.Error,
    payload: AppException.accountDeleted().toBody(),
    effect: { kind: DeliveryEffectKind.Disconnect, userId },
  };
}

/**
 * The one path by which the domain tells clients something. Each transport
 * subscribes and hands a delivery to its own local subscribers of the channel;
 * the bus carries it to the other nodes.
 */
@Injectable()
export class DeliveryService {
  private readonly listeners = new Set<DeliveryListener>();
  private readonly arrivalWatchers = new Set<DeliveryListener>();
  private readonly arrivalFilters = new Set<(delivery: Delivery) => boolean>();
  private readonly resyncListeners = new Set<ResyncListener>();
  private readonly caughtUpListeners = new Set<() => void>();
  private readonly audiences = new Set<AudienceSource>();
  /** What the bus brought while resyncs run, handed out once they are done. */
  private held?: Delivery[];
  private holdTimer?: NodeJS.Timeout;
  private resyncsRunning = 0;

  constructor(private readonly bus: DeliveryBus) {
    bus.onReceive((delivery) => this.received(delivery));
    bus.onResync(() => this.resync());
    // A resync under way tells the listeners when it is done.
    bus.onCatchUp(() => {
      if (this.resyncsRunning === 0) this.caughtUp();
    });
  }

  subscribe(listener: DeliveryListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * `watcher` sees every delivery as it reaches this node (from the bus, or
   * found out here), before a resync may hold it: for bookkeeping the resync
   * itself must see (a removal, a closed account).
   */
  watchArrivals(watcher: DeliveryListener): () => void {
    this.arrivalWatchers.add(watcher);
    return () => this.arrivalWatchers.delete(watcher);
  }

  /** To every subscriber of the channel, on every transport and every node. */
  publish(delivery: Delivery): void {
    this.bus.publish(delivery);
  }

  /** To this node's subscribers only: for what this node found out by itself. */
  deliverLocally(delivery: Delivery): void {
    for (const watcher of this.arrivalWatchers) watcher(delivery);
    this.handOut(delivery);
  }

  /** `listener` runs whenever this node may have missed other nodes' deliveries, once they reach it again. */
  onResync(listener: ResyncListener): () => void {
    this.resyncListeners.add(listener);
    return () => this.resyncListeners.delete(listener);
  }

  /**
   * `listener` runs once the resync listeners are done and what they held
   * has been handed out, and when another node shed messages: for what the
   * node missed and storage has, to be read back now rather than when the
   * room's next message shows the gap.
   */
  onResynced(listener: () => void): () => void {
    this.caughtUpListeners.add(listener);
    return () => this.caughtUpListeners.delete(listener);
  }

  /** Each transport tells what its connections on this node receive. */
  addAudience(source: AudienceSource): () => void {
    this.audiences.add(source);
    return () => this.audiences.delete(source);
  }

  /** Who receives what on this node now, over every transport. */
  *audience(): Iterable<Listening> {
    for (const source of this.audiences) yield* source();
  }

  /** Deliveries from other nodes for which `news` is false are not handed out here. */
  filterArrivals(news: (delivery: Delivery) => boolean): () => void {
    this.arrivalFilters.add(news);
    return () => this.arrivalFilters.delete(news);
  }

  private received(delivery: Delivery): void {
    for (const news of this.arrivalFilters) if (!news(delivery)) return;
    for (const watcher of this.arrivalWatchers) watcher(delivery);
    // A closed account's connections end at once: held, they could go on sending meanwhile.
    if (delivery.effect?.kind === DeliveryEffectKind.Disconnect) return this.handOut(delivery);
    if (this.held && this.held.length >= MAX_HELD) this.releaseHeld();
    if (this.held) this.held.push(delivery);
    else this.handOut(delivery);
  }

  private handOut(delivery: Delivery): void {
    for (const listener of this.listeners) listener(delivery);
  }

  /**
   * Runs the resync listeners and holds what the bus brings meanwhile, so
   * that no connection gets a room's messages, or a gap filled from storage,
   * before the access audit has ended what it may no longer receive. The
   * audit's own deliveries, and closures of accounts, go out at once.
   */
  private resync(): void {
    if (!this.held) this.hold();
    this.resyncsRunning += 1;
    void Promise.allSettled([...this.resyncListeners].map(async (listener) => listener())).finally(
      () => {
        this.resyncsRunning -= 1;
        if (this.resyncsRunning > 0) return;
        this.releaseHeld();
        this.caughtUp();
      },
    );
  }

  private caughtUp(): void {
    for (const listener of this.caughtUpListeners) listener();
  }

  /**
   * Until the resyncs are done, or RESYNC_HOLD_MS after the first of them:
   * those that come meanwhile do not extend it, one that comes after it ran
   * out starts a hold of its own.
   */
  private hold(): void {
    this.held = [];
    this.holdTimer = setTimeout(() => this.releaseHeld(), RESYNC_HOLD_MS);
    this.holdTimer.unref();
  }

  private releaseHeld(): void {
    clearTimeout(this.holdTimer);
    const held = this.held ?? [];
    this.held = undefined;
    for (const delivery of held) this.handOut(delivery);
  }

  messageCreated(message: MessageJson): void {
    this.publish({
      channel: roomNames.chat(message.roomId),
      event: ServerEvent.Message,
      payload: message,
    });
  }

  notify(userId: string, notification: NotificationJson): void {
    this.publish({
      channel: roomNames.user(userId),
      event: ServerEvent.Notification,
      payload: notification,
    });
  }

  /**
   * The user is no longer a member of the room: they are told, and every
   * connection of theirs, on every transport and node, leaves the room.
   */
  membershipEnded(userId: string, room: RoomJson, by: UserSummaryJson): void {
    this.publish(membershipEndedDelivery(userId, room, by));
  }

  /** On every transport and node: see `accountClosedDelivery`. */
  accountClosed(userId: string): void {
    this.publish(accountClosedDelivery(userId));
  }

  mentioned(userId: string, message: MessageJson): void {
    this.notify(userId, { type: NotificationType.Mention, message });
  }

  /** To everyone in the room but the connection that joined, when there is one. */
  userJoined(roomId: string, user: UserSummaryJson, connectionId?: string): void {
    const payload: UserJoinedEvent = { roomId, user, id: user.id, username: user.username };
    this.publish({
      channel: roomNames.chat(roomId),
      event: ServerEvent.UserJoined,
      payload,
      ...(connectionId === undefined ? {} : { except: { connectionId } }),
    });
  }

  /**
   * A join announced here alone while Redis was away: the other nodes hear
   * of it once it is back.
   */
  userJoinedElsewhere(roomId: string, user: UserSummaryJson): void {
    const payload: UserJoinedEvent = { roomId, user, id: user.id, username: user.username };
    this.publish({
      channel: roomNames.chat(roomId),
      event: ServerEvent.UserJoined,
      payload,
      elsewhereOnly: true,
    });
  }

  userLeft(roomId: string, user: UserSummaryJson): void {
    this.publish({
      channel: roomNames.chat(roomId),
      event: ServerEvent.UserLeft,
      payload: { roomId, user },
    });
  }

  broadcast(roomId: string, payload: unknown, from: UserSummaryJson, connectionId: string): void {
    this.publish({
      channel: roomNames.chat(roomId),
      event: ServerEvent.RoomBroadcast,
      payload: { roomId, payload, from },
      except: { connectionId },
    });
  }
}
