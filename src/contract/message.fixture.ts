import type { MessageJson } from './models';

/** A stored message of the room, numbered `seq`: for the specs of server and SDK. */
export function storedMessage(roomId: string, seq: number): MessageJson {
  return {
    id: `m${seq}`,
    roomId,
    seq,
    userId: 'u1',
    username: 'ada',
    text: `message ${seq}`,
    clientMsgId: null,
    createdAt: new Date(0).toISOString(),
  };
}
