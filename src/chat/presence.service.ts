import { Injectable } from '@nestjs/common';
import type { UserSummaryJson } from '@app/contract/models';
import { MetricsService } from '@app/metrics/metrics.service';

export interface PresenceChange {
  roomId: string;
  user: UserSummaryJson;
  /** True on the user's first connection into the room / last one out of it. */
  changed: boolean;
}

interface RoomPresence {
  /** userId → the user's connections in the room */
  connections: Map<string, Set<string>>;
  users: Map<string, UserSummaryJson>;
}

/**
 * Who is connected to which room, on any transport: a user is present while
 * at least one of their connections has joined the room.
 */
@Injectable()
export class PresenceService {
  private readonly rooms = new Map<string, RoomPresence>();
  /** connectionId → rooms it joined, for clean-up on disconnect */
  private readonly roomsByConnection = new Map<string, Set<string>>();
  private entries = 0;

  constructor(private readonly metrics: MetricsService) {}

  enter(roomId: string, user: UserSummaryJson, connectionId: string): PresenceChange {
    const room = this.rooms.get(roomId) ?? this.createRoom(roomId);
    const connections = room.connections.get(user.id) ?? new Set<string>();
    const changed = connections.size === 0;
    if (!connections.has(connectionId)) {
      connections.add(connectionId);
      this.entries += 1;
    }
    room.connections.set(user.id, connections);
    room.users.set(user.id, { id: user.id, username: user.username });
    this.joinedRooms(connectionId).add(roomId);
    this.updateGauges();
    return { roomId, user, changed };
  }

  leave(roomId: string, user: UserSummaryJson, connectionId: string): PresenceChange {
    const room = this.rooms.get(roomId);
    const connections = room?.connections.get(user.id);
    this.roomsByConnection.get(connectionId)?.delete(roomId);
    if (!room || !connections?.delete(connectionId)) return { roomId, user, changed: false };
    this.entries -= 1;
    const changed = connections.size === 0;
    if (changed) {
      room.connections.delete(user.id);
      room.users.delete(user.id);
      if (room.connections.size === 0) this.rooms.delete(roomId);
    }
    this.updateGauges();
    return { roomId, user, changed };
  }

  /** Removes a closed connection from every room it had joined. */
  leaveAll(user: UserSummaryJson, connectionId: string): PresenceChange[] {
    const rooms = [...(this.roomsByConnection.get(connectionId) ?? [])];
    this.roomsByConnection.delete(connectionId);
    return rooms.map((roomId) => this.leave(roomId, user, connectionId));
  }

  roomsOf(connectionId: string): ReadonlySet<string> {
    return this.roomsByConnection.get(connectionId) ?? new Set();
  }

  users(roomId: string): UserSummaryJson[] {
    return [...(this.rooms.get(roomId)?.users.values() ?? [])];
  }

  private createRoom(roomId: string): RoomPresence {
    const room: RoomPresence = { connections: new Map(), users: new Map() };
    this.rooms.set(roomId, room);
    return room;
  }

  private joinedRooms(connectionId: string): Set<string> {
    let rooms = this.roomsByConnection.get(connectionId);
    if (!rooms) {
      rooms = new Set();
      this.roomsByConnection.set(connectionId, rooms);
    }
    return rooms;
  }

  private updateGauges(): void {
    this.metrics.roomsWithMembers.set(this.rooms.size);
    this.metrics.presenceEntries.set(this.entries);
  }
}
