import { NotificationType, ServerEvent } from '@app/contract/events';
import { DeliveryEffectKind, type Delivery } from './delivery.service';

/**
 * A delivery of one node, or its request that the others resync (they may
 * have missed anything of it), or only catch up from storage (they missed
 * messages it shed).
 */
export type Envelope = { node: string; delivery: Delivery; resync?: true; catchUp?: true };

const SERVER_EVENTS = new Set<unknown>(Object.values(ServerEvent));

type Fields = Record<string, unknown>;

const isObject = (value: unknown): value is Fields =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const isEffect = (effect: unknown): boolean =>
  effect === undefined ||
  (isObject(effect) &&
    typeof effect.userId === 'string' &&
    (effect.kind === DeliveryEffectKind.Disconnect ||
      (effect.kind === DeliveryEffectKind.LeaveRoom && typeof effect.roomId === 'string')));

/** What live ordering reads of a message: its room, and a seq it can count on. */
const isMessage = (payload: unknown): boolean =>
  isObject(payload) &&
  typeof payload.roomId === 'string' &&
  Number.isSafeInteger(payload.seq) &&
  (payload.seq as number) > 0;

const isRoom = (room: unknown): boolean =>
  isObject(room) && typeof room.id === 'string' && typeof room.name === 'string';

/** What each kind of notification carries, which clients read without looking first. */
const NOTIFICATION_SHAPES: Readonly<Record<string, (payload: Fields) => boolean>> = {
  [NotificationType.Mention]: (payload) => isMessage(payload.message),
  [NotificationType.RoomInvited]: (payload) => isRoom(payload.room),
  [NotificationType.RoomRemoved]: (payload) => isRoom(payload.room),
};

const isNotification = (payload: unknown): boolean =>
  isObject(payload) &&
  typeof payload.type === 'string' &&
  Object.hasOwn(NOTIFICATION_SHAPES, payload.type) &&
  NOTIFICATION_SHAPES[payload.type](payload);

/** Every event's payload is an object; a request's delivery goes to no one with none. */
function isDelivery(delivery: unknown, request: boolean): delivery is Delivery {
  return (
    isObject(delivery) &&
    typeof delivery.channel === 'string' &&
    SERVER_EVENTS.has(delivery.event) &&
    (request || isObject(delivery.payload)) &&
    (delivery.except === undefined ||
      (isObject(delivery.except) && typeof delivery.except.connectionId === 'string')) &&
    isEffect(delivery.effect) &&
    (delivery.event !== ServerEvent.Message || isMessage(delivery.payload)) &&
    (request || delivery.event !== ServerEvent.Notification || isNotification(delivery.payload))
  );
}

/**
 * The envelope a message on the delivery channel holds, or undefined for
 * anything else (another program's message, a node of a version that
 * speaks differently): what the transports act on must have the shape they
 * count on, or a bad room id or seq would throw in them, or spin.
 */
export function readEnvelope(message: string): Envelope | undefined {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (!isObject(value) || typeof value.node !== 'string') return undefined;
  if (value.resync !== undefined && value.resync !== true) return undefined;
  if (value.catchUp !== undefined && value.catchUp !== true) return undefined;
  const request = value.resync === true || value.catchUp === true;
  return isDelivery(value.delivery, request) ? (value as Envelope) : undefined;
}
