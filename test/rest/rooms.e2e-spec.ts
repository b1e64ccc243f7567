import { Logger } from '@nestjs/common';
import request from 'supertest';
import { DataSource, SelectQueryBuilder, type ObjectLiteral } from 'typeorm';
import { DEFAULT_JOIN_MEMBERS_LIMIT } from '@app/config/env.validation';
import { AppException } from '@app/common/errors/app.exception';
import { uuidv7 } from '@app/common/ids/uuid-v7';
import type { NotificationJson } from '@app/contract/models';
import type { JoinResult } from '@app/contract/socket-events';
import { RoomMember } from '@app/rooms/room-member.entity';
import { Room } from '@app/rooms/room.entity';
import { RoomsService } from '@app/rooms/rooms.service';
import { TransactionRunner } from '@app/database/transaction-runner';
import { DeliveryService } from '@app/delivery/delivery.service';
import { User } from '@app/users/user.entity';
import { addMember, createRoom, registerUser, uniqueUsername, type TestUser } from '../support/api';
import { databaseKinds, withPostgres } from '../support/databases';
import { holdNextCall } from '../support/hold';
import { rowLockWaiters } from '../support/row-locks';
import { RestClient } from '../../client/src';
import { collect, connectSocket, emitOk, eventually, socketPool } from '../support/sockets';
import { startTestApp, type TestApp } from '../support/test-app';

describe.each(databaseKinds())('rooms REST (%s)', (kind) => {
  let t: TestApp;
  let owner: TestUser;
  let other: TestUser;
  const auth = (user: TestUser) => ({ Authorization: `Bearer ${user.token}` });

  const sockets = socketPool(() => t.url);

  /** The SQL and parameters of each `method` call on a query of `alias` made during `work`. */
  async function queriesOf(
    alias: string,
    method: 'getMany' | 'getRawMany' | 'getRawOne',
    work: () => Promise<void>,
  ): Promise<Array<[string, unknown[]]>> {
    const queries: Array<[string, unknown[]]> = [];
    const original = SelectQueryBuilder.prototype[method] as (this: unknown) => Promise<unknown>;
    const spy = jest.spyOn(SelectQueryBuilder.prototype, method).mockImplementation(function (
      this: SelectQueryBuilder<ObjectLiteral>,
    ) {
      if (this.expressionMap.mainAlias?.name === alias) queries.push(this.getQueryAndParameters());
      return original.call(this) as never;
    });
    try {
      await work();
    } finally {
      spy.mockRestore();
    }
    return queries;
  }

  /** SQLite reads each query from indexes: neither a scan of a table nor a sort. */
  async function expectReadFromIndexes(queries: Array<[string, unknown[]]>): Promise<void> {
    for (const [sql, parameters] of queries) {
      const plan: Array<{ detail: string }> = await t.app
        .get(DataSource)
        .query(`EXPLAIN QUERY PLAN ${sql}`, parameters);
      const steps = plan.map((step) => step.detail);
      expect(steps.filter((step) => /^SCAN|TEMP B-TREE/.test(step))).toEqual([]);
    }
  }

  beforeAll(async () => {
    t = await startTestApp(kind);
    owner = await registerUser(t.url);
    other = await registerUser(t.url);
  });
  afterEach(() => sockets.closeAll());
  afterAll(() => t.close());

  it('creates a room whose creator is its owner and first member', async () => {
    const room = await createRoom(t.url, owner, { name: '  general  ' });
    expect(room).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      name: 'general',
      isPrivate: false,
      ownerId: owner.id,
      createdAt: expect.any(String),
      lastSeq: 0,
    });
    const fetched = await request(t.url).get(`/api/rooms/${room.id}`).set(auth(other)).expect(200);
    expect(fetched.body).toEqual(room);
    const members = await request(t.url)
      .get(`/api/rooms/${room.id}/members`)
      .set(auth(other))
      .expect(200);
    expect(members.body).toEqual({
      items: [
        { roomId: room.id, id: owner.id, username: owner.username, joinedAt: room.createdAt },
      ],
      nextCursor: null,
    });
  });

  it.each([
    ['no name', {}],
    ['an empty name', { name: '   ' }],
    ['a too long name', { name: 'n'.repeat(101) }],
    ['a number for a name', { name: 5 }],
    ['a string for isPrivate', { name: 'x', isPrivate: 'true' }],
    ['null for isPrivate, which would have made it public', { name: 'x', isPrivate: null }],
    ['a name of zero-width characters only', { name: '\u200b\u2060' }],
    ['a line break in the name', { name: 'lob\nby' }],
    ['an unknown field', { name: 'x', topic: 'y' }],
    ['a NUL character in the name', { name: 'lob\u0000by' }],
    ['a lone surrogate in the name', { name: 'lobby \ud800' }],
  ])('refuses %s', async (_case, body) => {
    const response = await request(t.url)
      .post('/api/rooms')
      .set(auth(owner))
      .send(body)
      .expect(400);
    expect(response.body.code).toBe('VALIDATION_FAILED');
    expect(response.body.details.length).toBeGreaterThan(0);
  });

  describe('name length, counted as PostgreSQL counts varchar(100)', () => {
    const storedRooms = (name: string) =>
      t.app.get(DataSource).getRepository(Room).countBy({ name });

    it('refuses 100 letters each with a variation selector: 200 characters', async () => {
      const name = 'a\uFE0F'.repeat(100);
      const response = await request(t.url)
        .post('/api/rooms')
        .set(auth(owner))
        .send({ name })
        .expect(400);
      expect(response.body).toEqual({
        code: 'VALIDATION_FAILED',
        message: 'name must be shorter than or equal to 100 characters',
        details: [{ field: 'name', constraints: [response.body.message] }],
      });
      expect(await storedRooms(name)).toBe(0);
    });

    it('stores exactly 100 of them, as sent', async () => {
      const name = 'b\uFE0F'.repeat(50);
      const room = await createRoom(t.url, owner, { name });
      expect(room.name).toBe(name);
      expect(await storedRooms(name)).toBe(1);
    });
  });

  it('requires a token', async () => {
    const response = await request(t.url).post('/api/rooms').send({ name: 'x' }).expect(401);
    expect(response.body.code).toBe('UNAUTHORIZED');
  });

  it('hides private rooms from non-members with 404, never 403', async () => {
    const room = await createRoom(t.url, owner, { name: 'secret', isPrivate: true });
    const hidden = await request(t.url).get(`/api/rooms/${room.id}`).set(auth(other)).expect(404);
    const absent = await request(t.url)
      .get('/api/rooms/01a21548-0000-7000-8000-000000000000')
      .set(auth(other))
      .expect(404);
    expect(hidden.body).toEqual(absent.body);
    await request(t.url).get(`/api/rooms/${room.id}/messages`).set(auth(other)).expect(404);
    await request(t.url)
      .post(`/api/rooms/${room.id}/messages`)
      .set(auth(other))
      .send({ text: 'hi' })
      .expect(404);
    await request(t.url)
      .post(`/api/rooms/${room.id}/members`)
      .set(auth(other))
      .send({ userId: other.id })
      .expect(404);
  });

  it('answers 404 for a malformed room id', async () => {
    const response = await request(t.url).get('/api/rooms/not-a-uuid').set(auth(owner)).expect(404);
    expect(response.body.code).toBe('NOT_FOUND');
  });

  describe('listing', () => {
    let lister: TestUser;
    let visible: string[];

    beforeAll(async () => {
      lister = await registerUser(t.url);
    });

    it("pages through public rooms and the caller's private rooms, and nothing else", async () => {
      const before = await listAll(lister);
      const mine = await createRoom(t.url, lister, { name: 'mine', isPrivate: true });
      const theirs = await createRoom(t.url, other, { name: 'theirs', isPrivate: true });
      const open = await createRoom(t.url, other, { name: 'open' });
      visible = await listAll(lister);
      expect(visible).toEqual([...before, mine.id, open.id]);
      expect(visible).not.toContain(theirs.id);
    });

    it('has nextCursor null exactly on the last page', async () => {
      const total = (await listAll(lister, 200)).length;
      const full = await request(t.url)
        .get(`/api/rooms?limit=${total}`)
        .set(auth(lister))
        .expect(200);
      expect(full.body.items).toHaveLength(total);
      expect(full.body.nextCursor).toBeNull();
      const short = await request(t.url)
        .get(`/api/rooms?limit=${total - 1}`)
        .set(auth(lister))
        .expect(200);
      expect(short.body.nextCursor).toBe(short.body.items[total - 2].id);
      const rest = await request(t.url)
        .get(`/api/rooms?limit=${total - 1}&cursor=${short.body.nextCursor}`)
        .set(auth(lister))
        .expect(200);
      expect(rest.body.items).toHaveLength(1);
      expect(rest.body.nextCursor).toBeNull();
    });

    it.each([
      'limit=0',
      'limit=201',
      'limit=abc',
      'limit=1.5',
      'limit=-1',
      'cursor=nope',
      'extra=1',
    ])('refuses ?%s with 400', async (query) => {
      const response = await request(t.url)
        .get(`/api/rooms?${query}`)
        .set(auth(lister))
        .expect(400);
      expect(response.body.code).toBe('VALIDATION_FAILED');
    });

    if (kind === 'sqlite')
      it('reads each page from indexes, neither scanning every room nor sorting', async () => {
        const first = await createRoom(t.url, lister, { isPrivate: true });
        await createRoom(t.url, lister);
        const pages = await queriesOf('room', 'getMany', async () => {
          await request(t.url).get('/api/rooms').set(auth(lister)).expect(200);
          await request(t.url).get(`/api/rooms?cursor=${first.id}`).set(auth(lister)).expect(200);
        });

        expect(pages).toHaveLength(4);
        await expectReadFromIndexes(pages);
      });

    async function listAll(user: TestUser, limit = 2): Promise<string[]> {
      const ids: string[] = [];
      let cursor: string | null = null;
      do {
        const query: string = cursor ? `limit=${limit}&cursor=${cursor}` : `limit=${limit}`;
        const page = await request(t.url).get(`/api/rooms?${query}`).set(auth(user)).expect(200);
        ids.push(...page.body.items.map((room: { id: string }) => room.id));
        cursor = page.body.nextCursor;
      } while (cursor);
      return ids;
    }
  });

  describe('membership', () => {
    /** A public room its owner left while alone in it: still its owner, no longer a member. */
    async function roomItsOwnerLeft() {
      const room = await createRoom(t.url, owner);
      await request(t.url)
        .delete(`/api/rooms/${room.id}/members/${owner.id}`)
        .set(auth(owner))
        .expect(204);
      return room;
    }

    /** `count` accounts made straight in the database (registering each would hash a password), made members. */
    async function addManyMembers(roomId: string, count: number): Promise<string[]> {
      const data = t.app.get(DataSource);
      const users = Array.from({ length: count }, () => {
        const username = uniqueUsername('crowd');
        return {
          id: uuidv7(),
          username,
          usernameKey: username.toLowerCase(),
          passwordHash: 'not-a-hash',
          createdAt: new Date(),
          deletedAt: null,
        };
      });
      for (let start = 0; start < count; start += 100) {
        const chunk = users.slice(start, start + 100);
        await data.getRepository(User).insert(chunk);
        await data
          .getRepository(RoomMember)
          .insert(chunk.map((user) => ({ roomId, userId: user.id, joinedAt: new Date() })));
      }
      return users.map((user) => user.id);
    }

    async function memberPages(roomId: string, reader: TestUser, cursor?: string, limit = 200) {
      const listed: Array<{ id: string }> = [];
      let next = cursor;
      do {
        const query = next === undefined ? { limit } : { limit, cursor: next };
        const page = await request(t.url)
          .get(`/api/rooms/${roomId}/members`)
          .query(query)
          .set(auth(reader))
          .expect(200);
        listed.push(...page.body.items);
        next = page.body.nextCursor ?? undefined;
      } while (next !== undefined);
      return listed;
    }

    it('answers a join of a crowded room with its first members by id, the rest paged over REST', async () => {
      const room = await createRoom(t.url, owner);
      const crowd = await addManyMembers(room.id, DEFAULT_JOIN_MEMBERS_LIMIT + 49);
      const everyone = [owner.id, ...crowd].sort();
      const socket = await sockets.connect(other);

      const joined = await emitOk<JoinResult>(socket, 'chat:join', room.id);
      const members = [...everyone, other.id].sort();
      expect(joined.members.map((member) => member.id)).toEqual(
        members.slice(0, DEFAULT_JOIN_MEMBERS_LIMIT),
      );
      expect(joined.membersTruncated).toBe(true);

      const rest = await memberPages(room.id, other, joined.members.at(-1)!.id);
      expect(rest.map((member) => member.id)).toEqual(members.slice(DEFAULT_JOIN_MEMBERS_LIMIT));
      const all = await memberPages(room.id, other, undefined, 137);
      expect(all.map((member) => member.id)).toEqual(members);
      expect(all.find((member) => member.id === owner.id)).toEqual({
        roomId: room.id,
        id: owner.id,
        username: owner.username,
        joinedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      });
    });

    if (kind === 'sqlite')
      it('reads a page of members from the primary key, neither scanning the room nor sorting', async () => {
        const room = await createRoom(t.url, owner);
        const pages = await queriesOf('member', 'getRawMany', async () => {
          await request(t.url).get(`/api/rooms/${room.id}/members`).set(auth(owner)).expect(200);
          await request(t.url)
            .get(`/api/rooms/${room.id}/members?cursor=${owner.id}`)
            .set(auth(owner))
            .expect(200);
        });

        expect(pages).toHaveLength(2);
        await expectReadFromIndexes(pages);
      });

    it('lists the members of a small room in one page, and says a join has them all', async () => {
      const room = await createRoom(t.url, owner, { isPrivate: true });
      await addMember(t.url, owner, room.id, other.id);
      const page = await request(t.url)
        .get(`/api/rooms/${room.id}/members`)
        .set(auth(other))
        .expect(200);
      expect(page.body).toEqual({
        items: expect.arrayContaining([
          expect.objectContaining({ id: owner.id }),
          expect.objectContaining({ id: other.id }),
        ]),
        nextCursor: null,
      });
      expect(page.body.items).toHaveLength(2);
      const joined = await emitOk<JoinResult>(await sockets.connect(other), 'chat:join', room.id);
      expect(joined.membersTruncated).toBe(false);
      // The SDK reads the same pages.
      const rest = new RestClient({ baseUrl: t.url, token: () => other.token });
      const first = await rest.listMembers(room.id, { limit: 1 });
      const second = await rest.listMembers(room.id, { limit: 1, cursor: first.nextCursor! });
      expect([...first.items, ...second.items]).toEqual(page.body.items);
      expect(second.nextCursor).toBeNull();
    });

    it('answers a join with as many members as JOIN_MEMBERS_LIMIT allows', async () => {
      const small = await startTestApp(kind, { JOIN_MEMBERS_LIMIT: '2' });
      const client = socketPool(() => small.url);
      try {
        const [first, second, third] = await Promise.all(
          [1, 2, 3].map(() => registerUser(small.url)),
        );
        const room = await createRoom(small.url, first, { isPrivate: true });
        await addMember(small.url, first, room.id, second.id);
        const byId = [first.id, second.id, third.id].sort();
        const socket = await client.connect(second);

        const exact = await emitOk<JoinResult>(socket, 'chat:join', room.id);
        expect(exact.members.map((member) => member.id)).toEqual(
          byId.filter((id) => id !== third.id),
        );
        expect(exact.membersTruncated).toBe(false);

        await addMember(small.url, first, room.id, third.id);
        const crowded = await emitOk<JoinResult>(socket, 'chat:join', room.id);
        expect(crowded.members.map((member) => member.id)).toEqual(byId.slice(0, 2));
        expect(crowded.membersTruncated).toBe(true);
      } finally {
        client.closeAll();
        await small.close();
      }
    });

    it('leaves deleted accounts out of the list', async () => {
      const room = await createRoom(t.url, owner);
      const leaving = await registerUser(t.url);
      await addMember(t.url, leaving, room.id, leaving.id);
      await request(t.url).delete('/api/auth/me').set(auth(leaving)).expect(204);
      const listed = await memberPages(room.id, owner);
      expect(listed.map((member) => member.id)).toEqual([owner.id]);
    });

    it.each([
      ['a cursor that is not an id', { cursor: 'abc' }],
      ['a limit over 200', { limit: '201' }],
      ['a limit of 0', { limit: '0' }],
    ])('refuses %s with VALIDATION_FAILED', async (_case, query) => {
      const room = await createRoom(t.url, owner);
      const response = await request(t.url)
        .get(`/api/rooms/${room.id}/members`)
        .query(query)
        .set(auth(owner))
        .expect(400);
      expect(response.body).toEqual({
        code: 'VALIDATION_FAILED',
        message: expect.any(String),
        details: expect.any(Array),
      });
    });

    it('answers NOT_FOUND for the members of a private room to anyone not in it', async () => {
      const room = await createRoom(t.url, owner, { isPrivate: true });
      const response = await request(t.url)
        .get(`/api/rooms/${room.id}/members`)
        .set(auth(other))
        .expect(404);
      expect(response.body).toEqual({ code: 'NOT_FOUND', message: 'Room not found', details: [] });
    });

    it('lists members in the order of their ids on every database, also those who joined in one instant', async () => {
      const room = await createRoom(t.url, owner, { isPrivate: true });
      const joiners = await Promise.all([1, 2, 3].map(() => registerUser(t.url)));
      // Added newest account first, so that insertion order is not the answer.
      for (const joiner of joiners.reverse()) await addMember(t.url, owner, room.id, joiner.id);
      await t.app
        .get(DataSource)
        .getRepository(RoomMember)
        .update({ roomId: room.id }, { joinedAt: new Date('2026-01-01T00:00:00Z') });

      const members = await t.app.get(RoomsService).listMembers(room.id, 10);
      const ids = [owner, ...joiners].map((user) => user.id).sort();
      expect(members.items.map((member) => member.id)).toEqual(ids);
    });

    it('lets the owner invite to a private room, notifying the invitee once and nobody else', async () => {
      const third = await registerUser(t.url);
      const [ownerSocket, otherSocket, thirdSocket] = await Promise.all(
        [owner, other, third].map((user) => sockets.connect(user)),
      );
      const heard = [ownerSocket, otherSocket, thirdSocket].map((socket) =>
        collect<{ type: string; room: { id: string } }>(socket, 'notification'),
      );
      const room = await createRoom(t.url, owner, { isPrivate: true });
      const invite = () =>
        request(t.url)
          .post(`/api/rooms/${room.id}/members`)
          .set(auth(owner))
          .send({ userId: other.id })
          .expect(201);

      const response = await invite();
      expect(response.body).toEqual({
        roomId: room.id,
        id: other.id,
        username: other.username,
        joinedAt: expect.any(String),
      });
      await request(t.url).get(`/api/rooms/${room.id}`).set(auth(other)).expect(200);
      // Again: the membership as it is, and no second invitation.
      expect((await invite()).body).toEqual(response.body);
      const control = await createRoom(t.url, owner, { isPrivate: true });
      await addMember(t.url, owner, control.id, other.id);
      await eventually(() => heard[1].length >= 2);

      expect(heard[1].map(({ type, room: { id } }) => ({ type, id }))).toEqual([
        { type: 'room:invited', id: room.id },
        { type: 'room:invited', id: control.id },
      ]);
      expect([heard[0], heard[2]]).toEqual([[], []]);
    });

    it('answers and invites for an add whose commit’s answer was lost, and not for one that failed', async () => {
      const [added, notAdded] = await Promise.all([1, 2].map(() => registerUser(t.url)));
      const heard = await Promise.all(
        [added, notAdded].map(async (user) =>
          collect<NotificationJson>(await sockets.connect(user), 'notification'),
        ),
      );
      const room = await createRoom(t.url, owner, { isPrivate: true });
      const transactions = t.app.get(TransactionRunner);
      const run = transactions.run.bind(transactions);
      const lost = () => new Error('Connection terminated unexpectedly');
      const add = (user: TestUser) =>
        request(t.url)
          .post(`/api/rooms/${room.id}/members`)
          .set(auth(owner))
          .send({ userId: user.id });

      // Committed, its answer lost on the way back.
      const committed = jest.spyOn(transactions, 'run').mockImplementationOnce(async (work) => {
        await run(work);
        throw lost();
      });
      const answer = await add(added);
      committed.mockRestore();
      expect(answer.status).toBe(201);
      expect(answer.body).toMatchObject({ roomId: room.id, id: added.id });

      // Lost before it reached the database.
      const failed = jest.spyOn(transactions, 'run').mockRejectedValueOnce(lost());
      expect((await add(notAdded)).status).toBe(503);
      failed.mockRestore();

      await eventually(() => heard[0].length > 0);
      expect(heard[0]).toEqual([
        {
          type: 'room:invited',
          room: expect.objectContaining({ id: room.id }),
          by: { id: owner.id, username: owner.username },
        },
      ]);
      // Done again: the first finds the membership and invites no one twice; the second adds.
      expect((await add(added)).status).toBe(201);
      expect((await add(notAdded)).status).toBe(201);
      await eventually(() => heard[1].length > 0);
      expect(heard.map((notifications) => notifications.length)).toEqual([1, 1]);
    });

    it('forbids a member who is not the owner to add others to a private room', async () => {
      const room = await createRoom(t.url, owner, { isPrivate: true });
      const third = await registerUser(t.url);
      await request(t.url)
        .post(`/api/rooms/${room.id}/members`)
        .set(auth(owner))
        .send({ userId: other.id })
        .expect(201);
      const response = await request(t.url)
        .post(`/api/rooms/${room.id}/members`)
        .set(auth(other))
        .send({ userId: third.id })
        .expect(403);
      expect(response.body.code).toBe('FORBIDDEN');
    });

    it('lets anyone add themself to a public room, and then others', async () => {
      const room = await createRoom(t.url, owner);
      const [third, fourth] = await Promise.all([registerUser(t.url), registerUser(t.url)]);
      const refused = await request(t.url)
        .post(`/api/rooms/${room.id}/members`)
        .set(auth(other))
        .send({ userId: third.id })
        .expect(403);
      expect(refused.body).toEqual({
        code: 'FORBIDDEN',
        message: 'Only members of the room can add others',
        details: [],
      });
      await request(t.url)
        .post(`/api/rooms/${room.id}/members`)
        .set(auth(other))
        .send({ userId: other.id })
        .expect(201);
      const invited = await request(t.url)
        .post(`/api/rooms/${room.id}/members`)
        .set(auth(other))
        .send({ userId: third.id })
        .expect(201);
      expect(invited.body).toMatchObject({ roomId: room.id, id: third.id });
      // Not a member's right once they left.
      await request(t.url)
        .delete(`/api/rooms/${room.id}/members/${other.id}`)
        .set(auth(other))
        .expect(204);
      await request(t.url)
        .post(`/api/rooms/${room.id}/members`)
        .set(auth(other))
        .send({ userId: fourth.id })
        .expect(403);
    });

    it('reads back no removal a conflict rolled back, announcing none', async () => {
      const room = await createRoom(t.url, owner, { isPrivate: true });
      const third = await registerUser(t.url);
      await addMember(t.url, owner, room.id, third.id);
      const rooms = t.app.get(RoomsService);
      const remove = rooms.removeMember.bind(rooms);
      const deadlock = Object.assign(new Error('deadlock detected'), { code: '40P01' });
      // The membership ended another way meanwhile (the member left); this removal deadlocked.
      const removing = jest.spyOn(rooms, 'removeMember').mockImplementationOnce(async (...args) => {
        await remove(...args);
        throw deadlock;
      });
      const announcing = jest.spyOn(t.app.get(DeliveryService), 'membershipEnded');
      try {
        await request(t.url)
          .delete(`/api/rooms/${room.id}/members/${third.id}`)
          .set(auth(owner))
          .expect(503);
        expect(announcing).not.toHaveBeenCalled();
      } finally {
        removing.mockRestore();
        announcing.mockRestore();
      }
    });

    it('answers 404, not 403, to an add by one whose membership of the private room ended before the lock', async () => {
      const room = await createRoom(t.url, owner, { isPrivate: true });
      const third = await registerUser(t.url);
      // What an add meets under the room's lock after a removal committed since it read the room:
      // the owner's rule, which would say FORBIDDEN, is not even asked.
      const ownerRule = jest.fn(() =>
        Promise.reject(AppException.forbidden('Only the room owner can add other members')),
      );
      const add = t.app.get(RoomsService).addMemberAs(other.id, room.id, third.id, ownerRule);
      await expect(add).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect(ownerRule).not.toHaveBeenCalled();
      expect(await t.app.get(RoomsService).isMember(room.id, third.id)).toBe(false);
    });

    it('answers 404, not the membership, to an add of a member by one removed before the lock', async () => {
      const room = await createRoom(t.url, owner, { isPrivate: true });
      const third = await registerUser(t.url);
      await addMember(t.url, owner, room.id, third.id);
      const ownerRule = jest.fn(() => Promise.resolve());
      const add = t.app.get(RoomsService).addMemberAs(other.id, room.id, third.id, ownerRule);
      await expect(add).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect(ownerRule).not.toHaveBeenCalled();
    });

    it('invites with the room as the add leaves it: adopted by the invitee when its owner had left', async () => {
      const room = await roomItsOwnerLeft();
      const invitee = await registerUser(t.url);
      const heard = collect<NotificationJson>(await sockets.connect(invitee), 'notification');

      await addMember(t.url, owner, room.id, invitee.id);
      await eventually(() => heard.length > 0);
      expect(heard[0]).toMatchObject({
        type: 'room:invited',
        room: { id: room.id, ownerId: invitee.id },
      });
      const adopted = await request(t.url).get(`/api/rooms/${room.id}`).set(auth(invitee));
      expect(adopted.body.ownerId).toBe(invitee.id);
    });

    it('answers 404 for an unknown user and 400 for a malformed one', async () => {
      const room = await createRoom(t.url, owner);
      await request(t.url)
        .post(`/api/rooms/${room.id}/members`)
        .set(auth(owner))
        .send({ userId: '01a21548-0000-7000-8000-000000000000' })
        .expect(404);
      const malformed = await request(t.url)
        .post(`/api/rooms/${room.id}/members`)
        .set(auth(owner))
        .send({ userId: 'x' })
        .expect(400);
      expect(malformed.body.details[0].field).toBe('userId');
      await request(t.url)
        .post(`/api/rooms/${room.id}/members`)
        .set(auth(owner))
        .send({ userId: 7 })
        .expect(400);
    });

    it('removes members: the owner anyone, a member only themself', async () => {
      const room = await createRoom(t.url, owner, { isPrivate: true });
      const third = await registerUser(t.url);
      for (const user of [other, third]) await addMember(t.url, owner, room.id, user.id);
      await request(t.url)
        .delete(`/api/rooms/${room.id}/members/${third.id}`)
        .set(auth(other))
        .expect(403);
      await request(t.url)
        .delete(`/api/rooms/${room.id}/members/${other.id}`)
        .set(auth(other))
        .expect(204);
      // Gone from the room for every route a member had, its history and members included.
      for (const route of ['', '/messages', '/members']) {
        const response = await request(t.url)
          .get(`/api/rooms/${room.id}${route}`)
          .set(auth(other))
          .expect(404);
        expect(response.body).toEqual({
          code: 'NOT_FOUND',
          message: 'Room not found',
          details: [],
        });
      }
      await request(t.url)
        .post(`/api/rooms/${room.id}/messages`)
        .set(auth(other))
        .send({ text: 'still here?' })
        .expect(404);
      await request(t.url)
        .delete(`/api/rooms/${room.id}/members/${third.id}`)
        .set(auth(owner))
        .expect(204);
      await request(t.url)
        .delete(`/api/rooms/${room.id}/members/${third.id}`)
        .set(auth(owner))
        .expect(404);
      await request(t.url)
        .delete(`/api/rooms/${room.id}/members/not-a-uuid`)
        .set(auth(owner))
        .expect(404);
    });

    it('lets the owner leave, handing the room to its longest-standing member', async () => {
      const room = await createRoom(t.url, owner, { isPrivate: true });
      const third = await registerUser(t.url);
      for (const user of [other, third]) await addMember(t.url, owner, room.id, user.id);
      const ownerSocket = await sockets.connect(owner);
      const notified = collect<NotificationJson>(ownerSocket, 'notification');

      await request(t.url)
        .delete(`/api/rooms/${room.id}/members/${owner.id}`)
        .set(auth(owner))
        .expect(204);
      // The notice of leaving describes the room as it is now: handed over.
      await eventually(() => notified.length === 1);
      expect(notified[0]).toMatchObject({
        type: 'room:removed',
        room: { id: room.id, ownerId: other.id },
      });

      await request(t.url).get(`/api/rooms/${room.id}`).set(auth(owner)).expect(404);
      const handedOver = await request(t.url)
        .get(`/api/rooms/${room.id}`)
        .set(auth(third))
        .expect(200);
      expect(handedOver.body.ownerId).toBe(other.id);
      // The new owner manages the room: they may bring the old one back.
      await addMember(t.url, other, room.id, owner.id);
      await request(t.url)
        .delete(`/api/rooms/${room.id}/members/${third.id}`)
        .set(auth(other))
        .expect(204);
    });

    if (kind === 'sqlite')
      it('finds the longest-standing member from an index, not by sorting the room', async () => {
        const room = await createRoom(t.url, owner);
        await addMember(t.url, owner, room.id, other.id);
        const reads = await queriesOf('member', 'getRawOne', async () => {
          await request(t.url)
            .delete(`/api/rooms/${room.id}/members/${owner.id}`)
            .set(auth(owner))
            .expect(204);
        });

        expect(reads.filter(([sql]) => /ORDER BY/.test(sql))).toHaveLength(1);
        await expectReadFromIndexes(reads);
        const handedOver = await request(t.url)
          .get(`/api/rooms/${room.id}`)
          .set(auth(other))
          .expect(200);
        expect(handedOver.body.ownerId).toBe(other.id);
      });

    /** `send`'s request, its room access read and held while `meanwhile` runs. */
    async function addWhileAccessHeld(
      send: () => Promise<request.Response>,
      meanwhile: () => Promise<unknown>,
    ): Promise<request.Response> {
      const access = holdNextCall(t.app.get(RoomsService), 'findAccessible', { after: true });
      const answer = send();
      await access.started;
      await meanwhile();
      access.release();
      return answer;
    }

    it('does not let a member removed while their add was under way back in', async () => {
      const room = await createRoom(t.url, owner, { isPrivate: true });
      const removed = await registerUser(t.url);
      await addMember(t.url, owner, room.id, removed.id);

      const readdsThemself = () =>
        request(t.url)
          .post(`/api/rooms/${room.id}/members`)
          .set(auth(removed))
          .send({ userId: removed.id })
          .then((response) => response);
      const answer = await addWhileAccessHeld(readdsThemself, () =>
        request(t.url)
          .delete(`/api/rooms/${room.id}/members/${removed.id}`)
          .set(auth(owner))
          .expect(204),
      );

      expect({ status: answer.status, code: answer.body.code }).toEqual({
        status: 404,
        code: 'NOT_FOUND',
      });
      await request(t.url).get(`/api/rooms/${room.id}`).set(auth(removed)).expect(404);
    });

    it('does not let an owner who handed the room over while inviting add anyone', async () => {
      const [leaving, successor, invitee] = await Promise.all(
        [1, 2, 3].map(() => registerUser(t.url)),
      );
      const leavingRoom = await createRoom(t.url, leaving, { isPrivate: true });
      await addMember(t.url, leaving, leavingRoom.id, successor.id);

      const invites = () =>
        request(t.url)
          .post(`/api/rooms/${leavingRoom.id}/members`)
          .set(auth(leaving))
          .send({ userId: invitee.id })
          .then((response) => response);
      const answer = await addWhileAccessHeld(invites, () =>
        request(t.url)
          .delete(`/api/rooms/${leavingRoom.id}/members/${leaving.id}`)
          .set(auth(leaving))
          .expect(204),
      );

      // No longer a member, they no longer see the private room at all.
      expect(answer.status).toBe(404);
      expect(answer.body).toMatchObject({ code: 'NOT_FOUND' });
      await request(t.url).get(`/api/rooms/${leavingRoom.id}`).set(auth(invitee)).expect(404);
    });

    it('refuses a room whose creation reaches the database after its owner deleted the account', async () => {
      const leaving = await registerUser(t.url);
      const creation = holdNextCall(t.app.get(TransactionRunner), 'run');
      const creating = request(t.url)
        .post('/api/rooms')
        .set(auth(leaving))
        .send({ name: 'late' })
        .then((response) => response);
      await creation.started;
      await request(t.url).delete('/api/auth/me').set(auth(leaving)).expect(204);
      creation.release();

      const answer = await creating;
      expect({ status: answer.status, body: answer.body }).toEqual({
        status: 401,
        body: { code: 'UNAUTHORIZED', message: 'Account deleted', details: [] },
      });
      const owned = await t.app
        .get(DataSource)
        .getRepository(Room)
        .countBy({ ownerId: leaving.id });
      expect(owned).toBe(0);
    });

    it("hands a deleted account's rooms to their longest-standing members", async () => {
      const leaving = await registerUser(t.url);
      const [bob, carol, dave] = await Promise.all([1, 2, 3].map(() => registerUser(t.url)));
      const room = await createRoom(t.url, leaving, { isPrivate: true });
      const lobby = await createRoom(t.url, leaving);
      for (const user of [bob, carol]) await addMember(t.url, leaving, room.id, user.id);
      await addMember(t.url, carol, lobby.id, carol.id);

      await request(t.url).delete('/api/auth/me').set(auth(leaving)).expect(204);

      const ownerOf = async (roomId: string, reader: TestUser) =>
        (await request(t.url).get(`/api/rooms/${roomId}`).set(auth(reader)).expect(200)).body
          .ownerId as string;
      expect(await ownerOf(room.id, carol)).toBe(bob.id);
      expect(await ownerOf(lobby.id, carol)).toBe(carol.id);
      // The new owner manages the private room: before, no one could add anyone.
      await addMember(t.url, bob, room.id, dave.id);
      await request(t.url)
        .delete(`/api/rooms/${room.id}/members/${carol.id}`)
        .set(auth(bob))
        .expect(204);
    });

    /** Deletes the account while the second call of `method` fails; expects `status`. */
    async function deleteFailingOnSecondCall(
      user: TestUser,
      method: 'removeMember' | 'ownedBy',
      status: number,
    ): Promise<void> {
      const service = t.app.get(RoomsService);
      const original = service[method].bind(service);
      const spy = jest.spyOn(service, method as never) as jest.SpyInstance;
      spy
        .mockImplementationOnce(original)
        .mockImplementationOnce(() => Promise.reject(new Error('the database failed')));
      try {
        await request(t.url).delete('/api/auth/me').set(auth(user)).expect(status);
      } finally {
        spy.mockRestore();
      }
    }

    it('leaves a deletion that failed halfway with the account active, out of the rooms it left', async () => {
      const leaving = await registerUser(t.url);
      const bob = await registerUser(t.url);
      const rooms = [];
      for (let i = 0; i < 2; i += 1) {
        const room = await createRoom(t.url, leaving, { isPrivate: true });
        await addMember(t.url, leaving, room.id, bob.id);
        rooms.push(room);
      }
      const socket = await sockets.connect(leaving);
      for (const room of rooms) await emitOk(socket, 'chat:join', room.id);
      const notified = collect<NotificationJson>(socket, 'notification');
      await deleteFailingOnSecondCall(leaving, 'removeMember', 500);

      await request(t.url).get('/api/auth/me').set(auth(leaving)).expect(200);
      await eventually(() => notified.length === 1);
      const [removal] = notified;
      expect(removal).toMatchObject({
        type: 'room:removed',
        by: { id: leaving.id, username: leaving.username },
      });
      const left = rooms.find((room) => room.id === (removal as { room: { id: string } }).room.id)!;
      const handedOver = await request(t.url)
        .get(`/api/rooms/${left.id}`)
        .set(auth(bob))
        .expect(200);
      expect(handedOver.body.ownerId).toBe(bob.id);
      expect(socket.connected).toBe(true);
    });

    it('closes the connections of a deleted account even when its pass after the deletion fails', async () => {
      const leaving = await registerUser(t.url);
      const socket = await sockets.connect(leaving);
      const gone = new Promise<string>((resolve) => socket.once('disconnect', resolve));
      await deleteFailingOnSecondCall(leaving, 'ownedBy', 204);

      expect(await gone).toBe('io server disconnect');
      await request(t.url).get('/api/auth/me').set(auth(leaving)).expect(401);
    });

    // SQLite runs one transaction at a time: no removal can run meanwhile.
    const itOnPostgres = kind === 'postgres' ? it : it.skip;

    /**
     * The HTTP status of `removal` (actor removes target) made while another
     * node's removal holds the room, as the service does: it has locked the
     * room's row and run `statements`, and commits once the removal waits for it.
     */
    async function removalWhileAnotherHolds(
      roomId: string,
      statements: Array<[string, unknown[]]>,
      removal: { actor: TestUser; target: TestUser },
    ): Promise<number> {
      return withPostgres(async (client) => {
        await client.query(`SET search_path TO "${t.database.env.DATABASE_SCHEMA}"`);
        await client.query('BEGIN');
        await client.query('SELECT owner_id FROM rooms WHERE id = $1 FOR NO KEY UPDATE', [roomId]);
        for (const [sql, values] of statements) await client.query(sql, values);
        const status = request(t.url)
          .delete(`/api/rooms/${roomId}/members/${removal.target.id}`)
          .set(auth(removal.actor))
          .then((response) => response.status);
        // Judged again under the room's lock: the service's removal waits for this one.
        await eventually(async () => (await rowLockWaiters(client)) > 0, 10_000);
        await client.query('COMMIT');
        return status;
      });
    }

    const DELETE_MEMBER = 'DELETE FROM room_members WHERE room_id = $1 AND user_id = $2';

    itOnPostgres(
      'hands the room over to a member still there when another removal runs meanwhile',
      async () => {
        const room = await createRoom(t.url, owner, { isPrivate: true });
        const [leaving, staying] = [other, await registerUser(t.url)];
        for (const user of [leaving, staying]) await addMember(t.url, owner, room.id, user.id);

        const status = await removalWhileAnotherHolds(
          room.id,
          [[DELETE_MEMBER, [room.id, leaving.id]]],
          { actor: owner, target: owner },
        );

        expect(status).toBe(204);
        const handedOver = await request(t.url)
          .get(`/api/rooms/${room.id}`)
          .set(auth(staying))
          .expect(200);
        expect(handedOver.body.ownerId).toBe(staying.id);
      },
    );

    itOnPostgres('refuses a removal by an owner whose hand-over commits meanwhile', async () => {
      const room = await createRoom(t.url, owner, { isPrivate: true });
      const [heir, kept] = [other, await registerUser(t.url)];
      for (const user of [heir, kept]) await addMember(t.url, owner, room.id, user.id);

      // The owner's own leave, on another node, hands the room over.
      const status = await removalWhileAnotherHolds(
        room.id,
        [
          [DELETE_MEMBER, [room.id, owner.id]],
          ['UPDATE rooms SET owner_id = $2 WHERE id = $1', [room.id, heir.id]],
        ],
        { actor: owner, target: kept },
      );

      expect(status).toBe(403);
      await request(t.url).get(`/api/rooms/${room.id}`).set(auth(kept)).expect(200);
    });

    it('lets the owner leave a room they are alone in; it stays theirs until someone joins', async () => {
      const room = await roomItsOwnerLeft();
      const left = await request(t.url).get(`/api/rooms/${room.id}`).set(auth(owner)).expect(200);
      expect(left.body.ownerId).toBe(owner.id);

      // The first to join takes it over: the owner who left rules over no one.
      const [first, second] = [await registerUser(t.url), await registerUser(t.url)];
      await request(t.url)
        .post(`/api/rooms/${room.id}/members`)
        .set(auth(first))
        .send({ userId: first.id })
        .expect(201);
      await request(t.url)
        .post(`/api/rooms/${room.id}/members`)
        .set(auth(second))
        .send({ userId: second.id })
        .expect(201);
      const joined = await request(t.url).get(`/api/rooms/${room.id}`).set(auth(first)).expect(200);
      expect(joined.body.ownerId).toBe(first.id);
      await request(t.url)
        .delete(`/api/rooms/${room.id}/members/${second.id}`)
        .set(auth(owner))
        .expect(403);
      await request(t.url)
        .delete(`/api/rooms/${room.id}/members/${second.id}`)
        .set(auth(first))
        .expect(204);
    });

    it('hands the room to a first join its owner’s leave did not see, once the leave is committed', async () => {
      const room = await createRoom(t.url, owner);
      const joiner = await registerUser(t.url);
      await addMember(t.url, joiner, room.id, joiner.id);
      // The leave's transaction looks for a successor before the join is committed.
      const service = t.app.get(RoomsService);
      jest
        .spyOn(service as unknown as { handOver: () => Promise<undefined> }, 'handOver')
        .mockResolvedValueOnce(undefined);
      await request(t.url)
        .delete(`/api/rooms/${room.id}/members/${owner.id}`)
        .set(auth(owner))
        .expect(204);
      const after = await request(t.url).get(`/api/rooms/${room.id}`).set(auth(joiner)).expect(200);
      expect(after.body.ownerId).toBe(joiner.id);
    });

    it('answers an owner’s leave that committed though the hand-over after it failed', async () => {
      const room = await createRoom(t.url, owner);
      const service = t.app.get(RoomsService);
      jest
        .spyOn(
          service as unknown as { adoptIfOwnerLeft: () => Promise<string> },
          'adoptIfOwnerLeft',
        )
        .mockRejectedValueOnce(new Error('connection lost'));
      const warned = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      try {
        await request(t.url)
          .delete(`/api/rooms/${room.id}/members/${owner.id}`)
          .set(auth(owner))
          .expect(204);
        expect(warned).toHaveBeenCalledWith(expect.stringContaining('connection lost'));
      } finally {
        warned.mockRestore();
      }
    });

    it('hands a room its owner left alone to the first who joins it live', async () => {
      const room = await roomItsOwnerLeft();
      const joiner = await registerUser(t.url);
      const socket = await connectSocket(t.url, joiner.token);
      try {
        await emitOk(socket, 'chat:join', { roomId: room.id });
      } finally {
        socket.close();
      }
      const joined = await request(t.url)
        .get(`/api/rooms/${room.id}`)
        .set(auth(joiner))
        .expect(200);
      expect(joined.body.ownerId).toBe(joiner.id);
    });
  });
});

describe('rooms REST: a budget of invitations per user', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp('sqlite', { RATE_LIMIT_ROOM_INVITE: '2/60s' });
  });
  afterAll(() => t.close());

  it('refuses adds of others beyond it, adding and inviting no one; adding oneself is not counted', async () => {
    const owner = await registerUser(t.url);
    const invitees = await Promise.all([1, 2, 3].map(() => registerUser(t.url)));
    const room = await createRoom(t.url, owner, { isPrivate: true });
    const add = (userId: string) =>
      request(t.url)
        .post(`/api/rooms/${room.id}/members`)
        .set({ Authorization: `Bearer ${owner.token}` })
        .send({ userId });

    // Adds refused for what they are spend nothing: an unknown user, a room not the adder's.
    await add('01a21548-0000-7000-8000-000000000000').expect(404);
    const othersRoom = await createRoom(t.url, invitees[0], { isPrivate: true });
    await request(t.url)
      .post(`/api/rooms/${othersRoom.id}/members`)
      .set({ Authorization: `Bearer ${owner.token}` })
      .send({ userId: invitees[1].id })
      .expect(404);
    await add(invitees[0].id).expect(201);
    // Adding a member again notifies no one, and spends nothing either.
    for (let again = 0; again < 3; again += 1) await add(invitees[0].id).expect(201);
    await add(invitees[1].id).expect(201);
    const refused = await add(invitees[2].id).expect(429);
    expect(refused.body).toMatchObject({ code: 'RATE_LIMITED' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    await request(t.url)
      .get(`/api/rooms/${room.id}`)
      .set({ Authorization: `Bearer ${invitees[2].token}` })
      .expect(404);

    const open = await createRoom(t.url, invitees[2]);
    await addMember(t.url, owner, open.id, owner.id);
  });
});
