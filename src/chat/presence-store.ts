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
  error?: Error;
}

/**
 * Who is connected to which room, over all nodes. A user is present while
 * at least one of their connections, on any node, has joined the room.
 */
export abstract class PresenceStore {
  /** True when this is the user's first connection in the room. */
  abstract enter(roomId: string, user: UserSummaryJson, connectionId: string): Promise<boolean>;
  /** True when this was the user's last connection in the room. */
  abstract leave(roomId: string, user: UserSummaryJson, connectionId: string): Promise<boolean>;
  abstract users(roomId: string): Promise<UserSummaryJson[]>;
  /**
   * Keeps this node's entries alive; entries of a dead node expire. `back`:
   * the users a sweep had taken out while this node missed its heartbeats,
   * who are thereby present again. `error`: some entries may not have been
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

/** One node alone: presence is this process's memory, and nothing expires. */
export class LocalPresenceStore extends PresenceStore {
  /** roomId → userId → connection ids */
  private readonly rooms = new Map<string, Map<string, Set<string>>>();
  private readonly names = new Map<string, UserSummaryJson>();

  enter(roomId: string, user: UserSummaryJson, connectionId: string): Promise<boolean> {
    const users = this.rooms.get(roomId) ?? new Map<string, Set<string>>();
    this.rooms.set(roomId, users);
    const connections = users.get(user.id) ?? new Set<string>();
    users.set(user.id, connections);
    const first = connections.size === 0;
    connections.add(connectionId);
    this.names.set(user.id, { id: user.id, username: user.username });
    return Promise.resolve(first);
  }

  leave(roomId: string, user: UserSummaryJson, connectionId: string): Promise<boolean> {
    const users = this.rooms.get(roomId);
    const connections = users?.get(user.id);
    if (!users || !connections?.delete(connectionId)) return Promise.resolve(false);
    if (connections.size > 0) return Promise.resolve(false);
    users.delete(user.id);
    if (users.size === 0) this.rooms.delete(roomId);
    return Promise.resolve(true);
  }

  users(roomId: string): Promise<UserSummaryJson[]> {
    const ids = [...(this.rooms.get(roomId)?.keys() ?? [])];
    return Promise.resolve(ids.map((id) => this.names.get(id)!));
  }

  refresh(): Promise<PresenceRefresh> {
    return Promise.resolve({ back: [] });
  }

  sweep(): Promise<PresenceSweep> {
    return Promise.resolve({ gone: [] });
  }
}
