import type { UserSummaryJson } from '@app/contract/models';

/** A user who left a room, or came back to it, because of their node's heartbeats. */
export interface RoomPresence {
  roomId: string;
  user: UserSummaryJson;
}

export interface PresenceSweep {
  gone: RoomPresence[];
  error?: Error;
}

export interface PresenceRefresh {
  back: RoomPresence[];
  /** Users present only through the entries the heartbeat had to add: the store did not know of them. */
  added?: RoomPresence[];
  error?: Error;
}

/**
 * Who is connected to which room, over all nodes. A user is present while
 * at least one of their connections, on any node, has joined the room.
 */
export abstract class PresenceStore {
  /** True when this is the user's first connection in the room. */
  abstract enter(roomId: string, user: UserSummaryJson, connectionId: string): Promise<boolean>;
  /**
   * True when this was the user's last connection in the room; undefined
   * when the store cannot tell (the entry vanished with the store's data):
   * the node's own connections then decide.
   */
  abstract leave(
    roomId: string,
    user: UserSummaryJson,
    connectionId: string,
  ): Promise<boolean | undefined>;
  abstract users(roomId: string): Promise<UserSummaryJson[]>;
  /**
   * Keeps this node's entries alive; entries of a dead node expire. `back`:
   * the users a sweep had taken out while this node missed its heartbeats,
   * who are thereby present again. `added`: users present only through
   * entries it had to add. `error`: some entries may not have been
   * refreshed; `back` still holds the users of those that were, whom no
   * later heartbeat would report again.
   */
  abstract refresh(
    entries: Array<{ roomId: string; user: UserSummaryJson; connectionId: string }>,
  ): Promise<PresenceRefresh>;
  /**
   * Removes expired entries. `gone`: the users that thereby left. `error`:
   * the sweep stopped partway; `gone` still holds the users it took out,
   * whom no later sweep would report again.
   */
  abstract sweep(): Promise<PresenceSweep>;
}

/** A user's connections in a room, with the name to report them by. */
interface LocalEntry {
  user: UserSummaryJson;
  connections: Set<string>;
}

/** One node alone: presence is this process's memory, and nothing expires. */
export class LocalPresenceStore extends PresenceStore {
  /** roomId → userId → the user's connections there; emptied as they leave. */
  private readonly rooms = new Map<string, Map<string, LocalEntry>>();

  enter(roomId: string, user: UserSummaryJson, connectionId: string): Promise<boolean> {
    const users = this.rooms.get(roomId) ?? new Map<string, LocalEntry>();
    this.rooms.set(roomId, users);
    const entry = users.get(user.id) ?? { user: summaryOf(user), connections: new Set<string>() };
    users.set(user.id, entry);
    const first = entry.connections.size === 0;
    entry.connections.add(connectionId);
    return Promise.resolve(first);
  }

  leave(roomId: string, user: UserSummaryJson, connectionId: string): Promise<boolean> {
    const users = this.rooms.get(roomId);
    const entry = users?.get(user.id);
    if (!users || !entry?.connections.delete(connectionId)) return Promise.resolve(false);
    if (entry.connections.size > 0) return Promise.resolve(false);
    users.delete(user.id);
    if (users.size === 0) this.rooms.delete(roomId);
    return Promise.resolve(true);
  }

  users(roomId: string): Promise<UserSummaryJson[]> {
    const entries = [...(this.rooms.get(roomId)?.values() ?? [])];
    return Promise.resolve(entries.map((entry) => entry.user));
  }

  refresh(): Promise<PresenceRefresh> {
    return Promise.resolve({ back: [] });
  }

  sweep(): Promise<PresenceSweep> {
    return Promise.resolve({ gone: [] });
  }
}

const summaryOf = ({ id, username }: UserSummaryJson): UserSummaryJson => ({ id, username });
