import request from 'supertest';
import { MessageStore } from '@app/messages/message-store.service';
import {
  addMember,
  createRoom,
  postMessage,
  registerUser,
  removeMember,
  type TestUser,
} from '../support/api';
import { databaseKinds, withPostgres } from '../support/databases';
import { holdNextCall } from '../support/hold';
import { rowLockWaiters } from '../support/row-locks';
import { eventually } from '../support/sockets';
import { startTestApp, type TestApp } from '../support/test-app';

const NOT_FOUND = { code: 'NOT_FOUND', message: 'Room not found', details: [] };

/**
 * A send is let in by a check of access, then written: a removal that
 * commits in between must not let the removed member's message into the
 * room, acknowledged and delivered as if nothing had happened.
 */
describe.each(databaseKinds())('a send let in before its sender was removed (%s)', (kind) => {
  let t: TestApp;
  let owner: TestUser;
  const auth = (user: TestUser) => ({ Authorization: `Bearer ${user.token}` });

  beforeAll(async () => {
    t = await startTestApp(kind);
    owner = await registerUser(t.url);
  });
  afterAll(() => t.close());

  /** A private room with one message of its owner and one of `member`. */
  async function privateRoomWith(member: TestUser) {
    const room = await createRoom(t.url, owner, { isPrivate: true });
    await addMember(t.url, owner, room.id, member.id);
    await postMessage(t.url, owner, room.id, 'welcome');
    await postMessage(t.url, member, room.id, 'thanks');
    return room;
  }

  async function storedTexts(roomId: string): Promise<string[]> {
    const page = await request(t.url)
      .get(`/api/rooms/${roomId}/messages?since=0`)
      .set(auth(owner))
      .expect(200);
    return page.body.items.map((message: { text: string }) => message.text);
  }

  /** The send got NOT_FOUND, and the room holds only what `privateRoomWith` put in it, gapless. */
  async function expectRefusedAndNothingStored(response: request.Response, roomId: string) {
    expect({ status: response.status, body: response.body }).toEqual({
      status: 404,
      body: NOT_FOUND,
    });
    expect(await storedTexts(roomId)).toEqual(['welcome', 'thanks']);
    expect((await postMessage(t.url, owner, roomId, 'next')).seq).toBe(3);
  }

  it('is refused with NOT_FOUND when the removal commits before its write, and takes no seq', async () => {
    const member = await registerUser(t.url);
    const room = await privateRoomWith(member);
    const writing = holdNextCall(t.app.get(MessageStore), 'append');

    const answer = request(t.url)
      .post(`/api/rooms/${room.id}/messages`)
      .set(auth(member))
      .send({ text: 'after my removal' })
      .then((response) => response);
    await writing.started;
    await removeMember(t.url, owner, room.id, member.id);
    writing.release();

    await expectRefusedAndNothingStored(await answer, room.id);
  });

  it('is stored when the removal comes after its write', async () => {
    const member = await registerUser(t.url);
    const room = await privateRoomWith(member);
    await postMessage(t.url, member, room.id, 'before my removal');
    await removeMember(t.url, owner, room.id, member.id);
    expect(await storedTexts(room.id)).toEqual(['welcome', 'thanks', 'before my removal']);
  });

  if (kind !== 'postgres') return;

  it('is refused when its write waited for the lock of a removal that then committed', async () => {
    const member = await registerUser(t.url);
    const room = await privateRoomWith(member);
    const schema = t.database.env.DATABASE_SCHEMA as string;

    await withPostgres(async (removal) => {
      await removal.query(`SET search_path TO "${schema}"`);
      await removal.query('BEGIN');
      // What a removal holds until it commits: the room's row, and the membership deleted.
      await removal.query('SELECT id FROM rooms WHERE id = $1 FOR NO KEY UPDATE', [room.id]);
      await removal.query('DELETE FROM room_members WHERE room_id = $1 AND user_id = $2', [
        room.id,
        member.id,
      ]);

      const answer = request(t.url)
        .post(`/api/rooms/${room.id}/messages`)
        .set(auth(member))
        .send({ text: 'written behind my removal' })
        .then((response) => response);
      // The write is under way once it waits for the removal's lock.
      await eventually(async () => (await rowLockWaiters(removal)) > 0);
      await removal.query('COMMIT');

      await expectRefusedAndNothingStored(await answer, room.id);
    });
  });
});
