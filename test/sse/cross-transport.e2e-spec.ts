import type { MessageJson } from '@app/contract/models';
import { createRoom, postMessage, registerUser } from '../support/api';
import { databaseKinds } from '../support/databases';
import { RawClient } from '../support/raw-ws';
import { connectSocket, emitOk, nextEvent } from '../support/sockets';
import { openSse } from '../support/sse';
import { startTestApp, type TestApp } from '../support/test-app';

describe.each(databaseKinds())('one room across Socket.IO, raw WebSocket and SSE (%s)', (kind) => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp(kind);
  });
  afterAll(() => t.close());

  it('delivers every message, whichever transport sent it, to members on all three', async () => {
    const [ada, bob, carol, dan] = await Promise.all([1, 2, 3, 4].map(() => registerUser(t.url)));
    const room = await createRoom(t.url, ada);
    const ioClient = await connectSocket(t.url, bob.token);
    const wsClient = await RawClient.connect(t.url, carol.token);
    const sseClient = await openSse(`${t.url}/api/rooms/${room.id}/events?token=${dan.token}`);
    try {
      await emitOk(ioClient, 'chat:join', room.id);
      await wsClient.request({ type: 'join', room: room.id }, 'joined');

      const viaSocket = await emitOk<MessageJson>(ioClient, 'chat:message', {
        roomId: room.id,
        text: 'from Socket.IO',
      });
      const ioGetsRest = nextEvent<MessageJson>(ioClient, 'chat:message', (m) => m.seq === 2);
      const viaRest = await postMessage(t.url, ada, room.id, 'from REST');

      for (const message of [viaSocket, viaRest]) {
        expect(
          await wsClient.next(
            (f) => f.type === 'chat:message' && (f.message as MessageJson).seq === message.seq,
          ),
        ).toEqual({
          type: 'chat:message',
          room: room.id,
          message,
        });
        const event = await sseClient.next((e) => e.id === String(message.seq));
        expect(JSON.parse(event.data)).toEqual(message);
      }
      expect(await ioGetsRest).toEqual(viaRest);

      const broadcastOnSocket = nextEvent(ioClient, 'room:broadcast');
      wsClient.send({ type: 'broadcast', room: room.id, payload: { hello: 'everyone' } });
      expect(await broadcastOnSocket).toEqual({
        roomId: room.id,
        payload: { hello: 'everyone' },
        from: { id: carol.id, username: carol.username },
      });
    } finally {
      ioClient.close();
      wsClient.close();
      sseClient.close();
    }
  });
});
