import { Logger } from '@nestjs/common';
import request from 'supertest';
import type { MessageJson } from '@app/contract/models';
import { UsersService } from '@app/users/users.service';
import { createRoom, postMessage, registerUser, type TestUser } from '../support/api';
import { databaseKinds } from '../support/databases';
import { eventually } from '../support/sockets';
import { startTestApp, type TestApp } from '../support/test-app';

describe.each(databaseKinds())('messages REST (%s)', (kind) => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  const auth = (user: TestUser) => ({ Authorization: `Bearer ${user.token}` });

  beforeAll(async () => {
    t = await startTestApp(kind);
    ada = await registerUser(t.url);
    bob = await registerUser(t.url);
  });
  afterAll(() => t.close());

  it('stores a message with the first seq and returns it in the contract shape', async () => {
    const room = await createRoom(t.url, ada);
    const message = await postMessage(t.url, ada, room.id, '  hello  ', 'c-1');
    expect(message).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      roomId: room.id,
      seq: 1,
      userId: ada.id,
      username: ada.username,
      text: 'hello',
      clientMsgId: 'c-1',
      createdAt: expect.any(String),
    });
    const fetched = await request(t.url).get(`/api/rooms/${room.id}`).set(auth(ada)).expect(200);
    expect(fetched.body.lastSeq).toBe(1);
  });

  it.each([
    ['no text', {}],
    ['blank text', { text: '   \n ' }],
    ['text of zero-width characters and fillers only', { text: '\u200b\u2060\u3164' }],
    ['text over 4000 characters', { text: 'x'.repeat(4001) }],
    ['a number for text', { text: 42 }],
    ['an array for text', { text: ['hi'] }],
    ['a number for clientMsgId', { text: 'hi', clientMsgId: 7 }],
    ['a clientMsgId over 64 characters', { text: 'hi', clientMsgId: 'c'.repeat(65) }],
    [
      'a clientMsgId PostgreSQL counts as 128 characters',
      { text: 'hi', clientMsgId: 'c\uFE0F'.repeat(64) },
    ],
    ['text PostgreSQL counts as 4002 characters', { text: 'x\uFE0F'.repeat(2001) }],
    ['an unknown field', { text: 'hi', roomId: 'x' }],
    ['a NUL character in text', { text: 'a\u0000b' }],
    ['a lone surrogate in text', { text: 'broken \ud83d emoji' }],
    ['a NUL character in clientMsgId', { text: 'hi', clientMsgId: 'c\u0000' }],
  ])('refuses %s and takes no seq', async (_case, body) => {
    const room = await createRoom(t.url, ada);
    const response = await request(t.url)
      .post(`/api/rooms/${room.id}/messages`)
      .set(auth(ada))
      .send(body)
      .expect(400);
    expect(response.body).toEqual({
      code: 'VALIDATION_FAILED',
      message: expect.any(String),
      details: expect.any(Array),
    });
    const next = await postMessage(t.url, ada, room.id, 'after');
    expect(next.seq).toBe(1);
  });

  it('accepts exactly 4000 characters after trimming', async () => {
    const room = await createRoom(t.url, ada);
    const message = await postMessage(t.url, ada, room.id, ` ${'y'.repeat(4000)} `);
    expect(message.text).toHaveLength(4000);
  });

  it('says the limit in the message, as the contract example does', async () => {
    const room = await createRoom(t.url, ada);
    const response = await request(t.url)
      .post(`/api/rooms/${room.id}/messages`)
      .set(auth(ada))
      .send({ text: 'x'.repeat(4001) })
      .expect(400);
    expect(response.body.message).toBe('text must be shorter than or equal to 4000 characters');
    expect(response.body.details).toEqual([
      { field: 'text', constraints: [response.body.message] },
    ]);
  });

  it('stores a clientMsgId of exactly 64 characters with variation selectors, as sent', async () => {
    const room = await createRoom(t.url, ada);
    const clientMsgId = 'c\uFE0F'.repeat(32);
    const message = await postMessage(t.url, ada, room.id, 'selected', clientMsgId);
    expect(message).toMatchObject({ seq: 1, clientMsgId });
    const retry = await postMessage(t.url, ada, room.id, 'selected', clientMsgId);
    expect(retry).toEqual(message);
  });

  it('takes an empty clientMsgId for none: two messages sent with it are both stored', async () => {
    const room = await createRoom(t.url, ada);
    const send = (text: string) =>
      request(t.url)
        .post(`/api/rooms/${room.id}/messages`)
        .set(auth(ada))
        .send({ text, clientMsgId: '' })
        .expect(201);
    const first = (await send('one')).body as MessageJson;
    const second = (await send('two')).body as MessageJson;
    expect([first, second]).toMatchObject([
      { seq: 1, text: 'one', clientMsgId: null },
      { seq: 2, text: 'two', clientMsgId: null },
    ]);
  });

  it('names the clientMsgId limit in characters as PostgreSQL counts them', async () => {
    const room = await createRoom(t.url, ada);
    const response = await request(t.url)
      .post(`/api/rooms/${room.id}/messages`)
      .set(auth(ada))
      .send({ text: 'hi', clientMsgId: '\u2764\uFE0F'.repeat(64) })
      .expect(400);
    expect(response.body.message).toBe(
      'clientMsgId must be shorter than or equal to 64 characters',
    );
  });

  describe('history', () => {
    let roomId: string;

    beforeAll(async () => {
      roomId = (await createRoom(t.url, ada)).id;
      for (let i = 1; i <= 7; i += 1) await postMessage(t.url, i % 2 ? ada : bob, roomId, `m${i}`);
    });

    const page = async (query: string) =>
      (
        await request(t.url)
          .get(`/api/rooms/${roomId}/messages?${query}`)
          .set(auth(bob))
          .expect(200)
      ).body as {
        items: MessageJson[];
        nextCursor: number | null;
      };

    it('pages forward with since, ascending', async () => {
      const first = await page('since=0&limit=3');
      expect(first.items.map((m) => m.seq)).toEqual([1, 2, 3]);
      expect(first.nextCursor).toBe(3);
      const second = await page(`since=${first.nextCursor}&limit=4`);
      expect(second.items.map((m) => m.seq)).toEqual([4, 5, 6, 7]);
      expect(second.nextCursor).toBeNull();
      expect((await page('since=7')).items).toEqual([]);
    });

    it('pages backward with before, descending, starting from the newest', async () => {
      const newest = await page('limit=3');
      expect(newest.items.map((m) => m.seq)).toEqual([7, 6, 5]);
      expect(newest.nextCursor).toBe(5);
      const older = await page(`before=${newest.nextCursor}&limit=10`);
      expect(older.items.map((m) => m.seq)).toEqual([4, 3, 2, 1]);
      expect(older.nextCursor).toBeNull();
    });

    it('defaults to 50 and accepts 200', async () => {
      const busy = (await createRoom(t.url, ada)).id;
      await Promise.all(
        Array.from({ length: 60 }, (_, i) => postMessage(t.url, ada, busy, `b${i + 1}`)),
      );
      const busyPage = async (query: string) =>
        (
          await request(t.url)
            .get(`/api/rooms/${busy}/messages?${query}`)
            .set(auth(bob))
            .expect(200)
        ).body as { items: MessageJson[]; nextCursor: number | null };
      const seqsFrom = (from: number, to: number, step: 1 | -1) =>
        Array.from({ length: Math.abs(to - from) + 1 }, (_, i) => from + i * step);

      const newest = await busyPage('');
      expect(newest.items.map((m) => m.seq)).toEqual(seqsFrom(60, 11, -1));
      expect(newest.nextCursor).toBe(11);
      const forward = await busyPage('since=0');
      expect(forward.items.map((m) => m.seq)).toEqual(seqsFrom(1, 50, 1));
      expect(forward.nextCursor).toBe(50);

      const all = await busyPage('limit=200');
      expect(all.items.map((m) => m.seq)).toEqual(seqsFrom(60, 1, -1));
      expect(all.nextCursor).toBeNull();
      expect((await busyPage('since=0&limit=200')).items).toHaveLength(60);
    });

    it.each([
      'limit=201',
      'limit=0',
      'since=-1',
      'since=abc',
      'before=0',
      'since=1&before=5',
      'limit=1e2',
    ])('refuses ?%s with 400', async (query) => {
      const response = await request(t.url)
        .get(`/api/rooms/${roomId}/messages?${query}`)
        .set(auth(bob))
        .expect(400);
      expect(response.body.code).toBe('VALIDATION_FAILED');
    });
  });

  describe('after the commit', () => {
    it('answers 201 with the stored message when mention notifications fail, and logs it', async () => {
      const room = await createRoom(t.url, ada);
      const users = jest
        .spyOn(t.app.get(UsersService), 'findActiveByUsernames')
        .mockRejectedValueOnce(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
      const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      try {
        const response = await request(t.url)
          .post(`/api/rooms/${room.id}/messages`)
          .set(auth(ada))
          .send({ text: `hi @${bob.username}` })
          .expect(201);
        expect(response.body).toMatchObject({ seq: 1, text: `hi @${bob.username}` });
        await eventually(() =>
          warn.mock.calls.some(([message]) => String(message).includes('read ECONNRESET')),
        );
        const history = await request(t.url)
          .get(`/api/rooms/${room.id}/messages`)
          .set(auth(ada))
          .expect(200);
        expect(history.body.items).toEqual([response.body]);
      } finally {
        users.mockRestore();
        warn.mockRestore();
      }
    });
  });

  describe('ordering and idempotency under concurrency', () => {
    it('gives 100 concurrent posts the seqs 1..100 exactly', async () => {
      const room = await createRoom(t.url, ada);
      const senders = [ada, bob];
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) => postMessage(t.url, senders[i % 2], room.id, `n${i}`)),
      );
      expect(results.map((m) => m.seq).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 100 }, (_, i) => i + 1),
      );
      const history = await request(t.url)
        .get(`/api/rooms/${room.id}/messages?since=0&limit=200`)
        .set(auth(ada))
        .expect(200);
      expect(history.body.items.map((m: MessageJson) => m.seq)).toEqual(
        Array.from({ length: 100 }, (_, i) => i + 1),
      );
    });

    it('stores 10 concurrent posts with one clientMsgId once, and answers all 10 with it', async () => {
      const room = await createRoom(t.url, ada);
      const responses = await Promise.all(
        Array.from({ length: 10 }, () => postMessage(t.url, ada, room.id, 'once', 'same-id')),
      );
      for (const response of responses) expect(response).toEqual(responses[0]);
      const history = await request(t.url)
        .get(`/api/rooms/${room.id}/messages`)
        .set(auth(ada))
        .expect(200);
      expect(history.body.items).toHaveLength(1);
      expect(history.body.items[0]).toEqual(responses[0]);
    });

    it('keeps clientMsgIds apart per sender and per room', async () => {
      const room = await createRoom(t.url, ada);
      const other = await createRoom(t.url, ada);
      const a = await postMessage(t.url, ada, room.id, 'a', 'k');
      const b = await postMessage(t.url, bob, room.id, 'b', 'k');
      const c = await postMessage(t.url, ada, other.id, 'c', 'k');
      expect([a.seq, b.seq, c.seq]).toEqual([1, 2, 1]);
      const retry = await postMessage(t.url, ada, room.id, 'different text, same id', 'k');
      expect(retry).toEqual(a);
    });
  });
});
