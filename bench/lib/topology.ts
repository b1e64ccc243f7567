import { randomUUID } from 'node:crypto';
import type { RoomPlan } from '../common/protocol';
import { baselineToken } from './baseline-tokens';
import { benchUsername, createRooms, registerUsers } from './service-api';

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

/** A user as a room member needs it. */
interface PoolUser {
  id: string;
  username: string;
  token: string;
}

/** How many users the senders and the receivers share: many connections share a user. */
function poolSizes(shape: RoomShape, users: number): { senders: number; receivers: number } {
  return {
    senders: Math.max(1, Math.min(users, shape.rooms * shape.sendersPerRoom)),
    receivers: Math.max(1, users),
  };
}

/** R rooms of M members drawn from the two pools, the first S of each room sending. */
function roomPlans(
  roomIds: string[],
  shape: RoomShape,
  placement: Placement,
  pools: { senders: PoolUser[]; receivers: PoolUser[] },
): RoomPlan[] {
  const pick = (pool: PoolUser[], index: number) => pool[index % pool.length];
  return roomIds.map((roomId, roomIndex) => ({
    roomId,
    members: Array.from({ length: shape.members }, (_, member) => {
      const sender = member < shape.sendersPerRoom;
      const user = sender
        ? pick(pools.senders, roomIndex * shape.sendersPerRoom + member)
        : pick(pools.receivers, roomIndex * shape.members + member);
      return {
        url: sender ? placement.senderUrl : placement.receiverUrl,
        token: user.token,
        sender,
      };
    }),
  }));
}

/** A bare server's user: an id and name shaped like the service's, and a token for them. */
export function baselineUser(username: string): PoolUser {
  const user = { id: randomUUID(), username };
  return { ...user, token: baselineToken(user) };
}

/**
 * The same rooms for a bare server: ids shaped like the service's (UUIDs,
 * names as `registerUser` makes them, signed tokens) and users shared the
 * same way, so that what the servers send differs by the service's `seq` alone.
 */
export function baselineRooms(url: string, shape: RoomShape, users: number): RoomPlan[] {
  const sizes = poolSizes(shape, users);
  const pool = (prefix: string, count: number) =>
    Array.from({ length: count }, (_, index) => baselineUser(benchUsername(`${prefix}${index}`)));
  const roomIds = Array.from({ length: shape.rooms }, () => randomUUID());
  return roomPlans(
    roomIds,
    shape,
    { senderUrl: url, receiverUrl: url },
    { senders: pool('snd', sizes.senders), receivers: pool('rcv', sizes.receivers) },
  );
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
  const sizes = poolSizes(shape, users);
  const senders = await registerUsers(api, 'snd', sizes.senders);
  const receivers = await registerUsers(api, 'rcv', sizes.receivers);
  const rooms = await createRooms(api, senders[0], shape.rooms);
  return roomPlans(
    rooms.map((room) => room.id),
    shape,
    placement,
    { senders, receivers },
  );
}
