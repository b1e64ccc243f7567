import type { MessageJson } from '@app/contract/models';
import { TransactionRunner } from '@app/database/transaction-runner';
import { createRoom, registerUser } from '../support/api';
import { databaseKinds } from '../support/databases';
import { connectSocket, emitAck, eventually, sleep } from '../support/sockets';
import { startTestApp } from '../support/test-app';

describe.each(databaseKinds())('Draining a node (%s)', (kind) => {
  /** The TransactionRunner method each write of messages goes through. */
  const writeMethod = kind === 'postgres' ? 'executePrepared' : 'sqliteTransaction';

  it('acknowledges the sends in flight before telling clients to go, and refuses new ones', async () => {
    const t = await startTestApp(kind);
    try {
      const ada = await registerUser(t.url);
      const room = await createRoom(t.url, ada);
      const socket = await connectSocket(t.url, ada.token);
      const seen: string[] = [];
      socket.on('disconnect', () => seen.push('disconnect'));

      const transactions = t.app.get(TransactionRunner);
      const write = transactions[writeMethod].bind(transactions) as (...args: never[]) => unknown;
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let writeStarted!: () => void;
      const started = new Promise<void>((resolve) => (writeStarted = resolve));
      jest.spyOn(transactions, writeMethod).mockImplementationOnce((async (...args: never[]) => {
        writeStarted();
        await released;
        return write(...args);
      }) as never);

      const inFlight = emitAck<MessageJson>(socket, 'chat:message', {
        roomId: room.id,
        text: 'in flight',
      }).then((answer) => {
        seen.push('ack');
        return answer;
      });
      await started;
      const closing = t.app.close();
      await sleep(100);

      const refused = await emitAck(socket, 'chat:message', { roomId: room.id, text: 'too late' });
      expect(refused).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE' } });
      expect(seen).toEqual([]);

      release();
      expect(await inFlight).toMatchObject({ ok: true, data: { seq: 1, text: 'in flight' } });
      await closing;
      await eventually(() => seen.includes('disconnect'));
      expect(seen).toEqual(['ack', 'disconnect']);
      socket.close();
    } finally {
      await t.database.drop();
    }
  });
});
