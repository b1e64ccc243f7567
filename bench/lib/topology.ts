import type { RoomPlan } from '../common/protocol';
import { createRooms, registerUsers, type ServiceUser } from './service-api';

/** R rooms of M members, the first S of which send. */
export interface RoomShape {
  rooms: number;
  members: number;
  sendersPerRoom: number;
}

/** Where each kind of member connects (two nodes: senders on one, receivers on the other). */
export interface Placement {
  senderUrl: string;
  receiverUrl: string;
}

export function baselineRooms(url: string, shape: RoomShape): RoomPlan[] {
  return Array.from({ length: shape.rooms }, (_, room) => ({
    roomId: `room-${room}`,
    members: Array.from({ length: shape.members }, (_, member) => ({
      url,
      userId: `u${room}_${member}`,
      sender: member < shape.sendersPerRoom,
    })),
  }));
}

/**
 * Registers users and creates public rooms on the service. Senders and
 * receivers are different users, and many connections share a user.
 */
export async function serviceRooms(
  placement: Placement,
  shape: RoomShape,
  users: number,
): Promise<RoomPlan[]> {
  const api = placement.senderUrl;
  const senderCount = Math.max(1, Math.min(users, shape.rooms * shape.sendersPerRoom));
  const senders = await registerUsers(api, 'snd', senderCount);
  const receivers = await registerUsers(api, 'rcv', Math.max(1, users));
  const rooms = await createRooms(api, senders[0], shape.rooms);
  const pick = (pool: ServiceUser[], index: number) => pool[index % pool.length];
  return rooms.map((room, roomIndex) => ({
    roomId: room.id,
    members: Array.from({ length: shape.members }, (_, member) => {
      const sender = member < shape.sendersPerRoom;
      const user = sender
        ? pick(senders, roomIndex * shape.sendersPerRoom + member)
        : pick(receivers, roomIndex * shape.members + member);
      return {
        url: sender ? placement.senderUrl : placement.receiverUrl,
        token: user.token,
        userId: user.id,
        sender,
      };
    }),
  }));
}
