import { readEnvelope } from './envelope';

const ROOM = '0190c0de-0000-7000-8000-000000000001';
const USER = '0190c0de-0000-7000-8000-000000000002';

const message = { roomId: ROOM, seq: 3, text: 'hi' };
const room = { id: ROOM, name: 'r', isPrivate: true };
const invitation = { type: 'room:invited', room, by: { id: USER, username: 'u' } };
const valid = [
  { node: 'a', delivery: { channel: `chat:${ROOM}`, event: 'chat:message', payload: message } },
  {
    node: 'a',
    delivery: {
      channel: `user:${USER}`,
      event: 'notification',
      payload: { type: 'room:removed', room },
      effect: { kind: 'leave-room', userId: USER, roomId: ROOM },
    },
  },
  {
    node: 'a',
    delivery: {
      channel: `chat:${ROOM}`,
      event: 'chat:typing',
      payload: {},
      except: { connectionId: 'c' },
    },
  },
  {
    node: 'a',
    delivery: { channel: `user:${USER}`, event: 'notification', payload: invitation },
  },
  {
    node: 'a',
    delivery: {
      channel: `user:${USER}`,
      event: 'notification',
      payload: { type: 'mention', message },
    },
  },
  {
    node: 'a',
    delivery: { channel: 'resync', event: 'notification', payload: null },
    resync: true,
  },
];

const withDelivery = (fields: Record<string, unknown>) => ({
  node: 'a',
  delivery: { channel: `user:${USER}`, event: 'notification', payload: invitation, ...fields },
});

describe('readEnvelope', () => {
  it.each(valid)('reads %j', (envelope) => {
    expect(readEnvelope(JSON.stringify(envelope))).toEqual(envelope);
  });

  it.each([
    ['no JSON', '{"node":'],
    ['not an object', '[1]'],
    ['no node', JSON.stringify({ delivery: valid[0].delivery })],
    ['a resync flag that is not true', JSON.stringify({ ...valid[0], resync: 1 })],
    ['no delivery', JSON.stringify({ node: 'a' })],
    ['an unknown event', JSON.stringify(withDelivery({ event: 'shout' }))],
    ['a channel that is no string', JSON.stringify(withDelivery({ channel: 5 }))],
    ['a payload that is no object', JSON.stringify(withDelivery({ payload: null }))],
    ['a payload that is a list', JSON.stringify(withDelivery({ payload: [] }))],
    ['a bad except', JSON.stringify(withDelivery({ except: 'c' }))],
    [
      'an effect without a room',
      JSON.stringify(withDelivery({ effect: { kind: 'leave-room', userId: USER } })),
    ],
    [
      'an effect with a number for a room',
      JSON.stringify(withDelivery({ effect: { kind: 'leave-room', userId: USER, roomId: 123 } })),
    ],
    [
      'an unknown effect',
      JSON.stringify(withDelivery({ effect: { kind: 'explode', userId: USER } })),
    ],
    [
      'a message whose seq is text',
      JSON.stringify(withDelivery({ event: 'chat:message', payload: { ...message, seq: '3' } })),
    ],
    [
      'a message whose seq is past any integer',
      JSON.stringify(withDelivery({ event: 'chat:message', payload: { ...message, seq: 1e308 } })),
    ],
    [
      'a message without a room',
      JSON.stringify(withDelivery({ event: 'chat:message', payload: { seq: 3 } })),
    ],
    ['a notification of no known type', JSON.stringify(withDelivery({ payload: { type: 'x' } }))],
    [
      'a notification whose type is an inherited name',
      JSON.stringify(withDelivery({ payload: { type: 'toString' } })),
    ],
    [
      'an invitation without its room',
      JSON.stringify(withDelivery({ payload: { type: 'room:invited' } })),
    ],
    [
      'a removal whose room has no id',
      JSON.stringify(withDelivery({ payload: { type: 'room:removed', room: { name: 'r' } } })),
    ],
    [
      'a mention whose message has no seq',
      JSON.stringify(withDelivery({ payload: { type: 'mention', message: { roomId: ROOM } } })),
    ],
  ])('refuses %s', (_case, text) => {
    expect(readEnvelope(text)).toBeUndefined();
  });
});
