import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { nonOverlapping } from '@app/common/non-overlapping';
import type { AllConfig } from '@app/config/app-config';
import type { UserSummaryJson } from '@app/contract/models';
import { MetricsService } from '@app/metrics/metrics.service';
import { GracefulShutdown } from '@app/realtime/graceful-shutdown.service';
import { PresenceStore, type RoomPresence } from './presence-store';

export interface PresenceChange {
  roomId: string;
  user: UserSummaryJson;
  /** True on the user's first connection into the room / last one out of it, over all nodes. */
  changed: boolean;
}

/** A connection's leave: `wasHere` false when it had been taken out of the room already. */
export interface PresenceLeave extends PresenceChange {
  wasHere: boolean;
}

type PresenceHandler = (change: RoomPresence) => void;

/**
 * Presence of this node's connections, kept in the shared store. The local
 * index answers "which rooms did this connection join" without a round trip
 * and keeps the node's entries alive with heartbeats. Should the store fail,
 * the local index decides first-in/last-out, so joins never fail on it.
 */
@Injectable()
export class PresenceService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(PresenceService.name);
  /** connectionId → rooms it joined */
  private readonly roomsByConnection = new Map<string, Set<string>>();
  /** roomId → userId → this node's connections of the user in the room */
  private readonly local = new Map<
    string,
    Map<string, { user: UserSummaryJson; connections: Set<string> }>
  >();
  private readonly pending = new Set<Promise<unknown>>();
  /**
   * `roomId|userId` of joins announced from this node's count alone, the
   * store having failed: with Redis away, no other node heard of them.
   */
  private readonly joinsUnheard = new Set<string>();
  private entryCount = 0;
  private timer?: NodeJS.Timeout;
  private onExpiry: PresenceHandler = () => undefined;
  private onReturn: PresenceHandler = () => undefined;
  private onJoinUnheard: PresenceHandler = () => undefined;

  constructor(
    private readonly store: PresenceStore,
    private readonly metrics: MetricsService,
    private readonly config: ConfigService<AllConfig, true>,
    shutdown?: GracefulShutdown,
  ) {
    shutdown?.register('finish-writes', () => this.settled());
  }

  onModuleInit(): void {
    const interval = Math.floor(this.config.get('redis.presenceTtlMs', { infer: true }) / 3);
    this.timer = setInterval(
      nonOverlapping(() => this.maintain()),
      interval,
    );
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.settled();
  }

  /** Called for users whose node died: they left every room they were in. */
  whenExpired(handler: PresenceHandler): void {
    this.onExpiry = handler;
  }

  /** Called for users of this node whom a sweep took out while it missed heartbeats: they are back. */
  whenReturned(handler: PresenceHandler): void {
    this.onReturn = handler;
  }

  /**
   * Called for joins of this node that the store missed (Redis was away), and
   * the other nodes with it, once a heartbeat stores them: the others are to
   * hear of them now; this node's connections did then.
   */
  whenJoinUnheard(handler: PresenceHandler): void {
    this.onJoinUnheard = handler;
  }

  async enter(
    roomId: string,
    user: UserSummaryJson,
    connectionId: string,
  ): Promise<PresenceChange> {
    const firstHere = this.addLocal(roomId, user, connectionId);
    const changed = await this.track(
      this.store.enter(roomId, user, connectionId),
      firstHere,
      () => {
        if (firstHere) this.joinsUnheard.add(presenceKey(roomId, user.id));
      },
    );
    return { roomId, user, changed };
  }

  async leave(roomId: string, user: UserSummaryJson, connectionId: string): Promise<PresenceLeave> {
    const lastHere = this.removeLocal(roomId, user, connectionId);
    if (lastHere === undefined) return { roomId, user, changed: false, wasHere: false };
    const changed = await this.track(this.store.leave(roomId, user, connectionId), lastHere);
    return { roomId, user, changed, wasHere: true };
  }

  leaveAll(user: UserSummaryJson, connectionId: string): Promise<PresenceLeave[]> {
    const rooms = [...(this.roomsByConnection.get(connectionId) ?? [])];
    return Promise.all(rooms.map((roomId) => this.leave(roomId, user, connectionId)));
  }

  roomsOf(connectionId: string): ReadonlySet<string> {
    return this.roomsByConnection.get(connectionId) ?? new Set();
  }

  /** True while some connection of this node of the user has joined the room. */
  isHere(roomId: string, userId: string): boolean {
    return this.local.get(roomId)?.has(userId) ?? false;
  }

  /** True while some connection of this node has joined the room. */
  hasLocalMembers(roomId: string): boolean {
    return this.local.has(roomId);
  }

  async users(roomId: string): Promise<UserSummaryJson[]> {
    try {
      return await this.store.users(roomId);
    } catch (error) {
      this.logger.warn(
        `Presence store unavailable, answering for this node only: ${(error as Error).message}`,
      );
      return [...(this.local.get(roomId)?.values() ?? [])].map((entry) => entry.user);
    }
  }

  /** Resolves once every store update already started has finished. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  private async track(
    update: Promise<boolean | undefined>,
    localAnswer: boolean,
    failed: () => void = () => undefined,
  ): Promise<boolean> {
    this.pending.add(update);
    try {
      return (await update) ?? localAnswer;
    } catch {
      failed();
      return localAnswer;
    } finally {
      this.pending.delete(update);
    }
  }

  private addLocal(roomId: string, user: UserSummaryJson, connectionId: string): boolean {
    const users =
      this.local.get(roomId) ??
      new Map<string, { user: UserSummaryJson; connections: Set<string> }>();
    this.local.set(roomId, users);
    const entry = users.get(user.id) ?? { user, connections: new Set<string>() };
    users.set(user.id, entry);
    const first = entry.connections.size === 0;
    if (!entry.connections.has(connectionId)) this.entryCount += 1;
    entry.connections.add(connectionId);
    let rooms = this.roomsByConnection.get(connectionId);
    if (!rooms) {
      rooms = new Set();
      this.roomsByConnection.set(connectionId, rooms);
    }
    rooms.add(roomId);
    this.updateGauges();
    return first;
  }

  /** undefined when the connection was not in the room; else whether it was the user's last one here. */
  private removeLocal(
    roomId: string,
    user: UserSummaryJson,
    connectionId: string,
  ): boolean | undefined {
    const rooms = this.roomsByConnection.get(connectionId);
    rooms?.delete(roomId);
    if (rooms?.size === 0) this.roomsByConnection.delete(connectionId);
    const users = this.local.get(roomId);
    const entry = users?.get(user.id);
    if (!users || !entry?.connections.delete(connectionId)) return undefined;
    this.entryCount -= 1;
    const last = entry.connections.size === 0;
    if (last) {
      users.delete(user.id);
      this.joinsUnheard.delete(presenceKey(roomId, user.id));
    }
    if (users.size === 0) this.local.delete(roomId);
    this.updateGauges();
    return last;
  }

  /**
   * Heartbeat of this node's entries, then the sweep of dead nodes' entries,
   * skipped when part of the heartbeat failed: those entries may look dead.
   */
  private async maintain(): Promise<void> {
    try {
      const { back, added = [], error } = await this.store.refresh(this.localEntries());
      for (const returned of back) this.onReturn(returned);
      this.announceUnheardJoins(added, !error);
      if (error) throw error;
      const swept = await this.store.sweep();
      for (const expired of swept.gone) this.onExpiry(expired);
      if (swept.error) throw swept.error;
    } catch (error) {
      this.logger.warn(`Presence heartbeat failed: ${(error as Error).message}`);
    }
  }

  /**
   * Joins the store missed, and the other nodes with it, are announced once
   * the heartbeat has added their user's first entry; those it found stored
   * were heard. Only a heartbeat that went through everywhere settles them all.
   */
  private announceUnheardJoins(added: RoomPresence[], complete: boolean): void {
    for (const joined of added)
      if (this.joinsUnheard.delete(presenceKey(joined.roomId, joined.user.id)))
        this.onJoinUnheard(joined);
    if (complete) this.joinsUnheard.clear();
  }

  private localEntries() {
    const entries: Array<{ roomId: string; user: UserSummaryJson; connectionId: string }> = [];
    for (const [roomId, users] of this.local) {
      for (const { user, connections } of users.values()) {
        for (const connectionId of connections) entries.push({ roomId, user, connectionId });
      }
    }
    return entries;
  }

  private updateGauges(): void {
    this.metrics.roomsWithMembers.set(this.local.size);
    this.metrics.presenceEntries.set(this.entryCount);
  }
}

function presenceKey(roomId: string, userId: string): string {
  return `${roomId}|${userId}`;
}
