import { Logger } from '@nestjs/common';
import request from 'supertest';
import type { MessageJson, NotificationJson } from '@app/contract/models';
import type { JoinResult, RoomUserEvent, UserJoinedEvent } from '@app/contract/socket-events';
import { createRoom, postMessage, registerUser, type TestUser } from '../support/api';
import { AppException } from '@app/common/errors/app.exception';
import { MetricsService } from '@app/metrics/metrics.service';
import { ChatService } from '@app/chat/chat.service';
import { MessageStore } from '@app/messages/message-store.service';
import { MessagesService } from '@app/messages/messages.service';
import { RoomsService } from '@app/rooms/rooms.service';
import { UsersService } from '@app/users/users.service';
import { databaseKinds } from '../support/databases';
import { holdNextCall } from '../support/hold';
import {
  collect,
  emitAck,
  emitOk,
  eventually,
  nextEvent,
  sleep,
  socketPool,
} from '../support/sockets';
import { startTestApp, type TestApp } from '../support/test-app';

const ABSENT_ROOM = '01a21548-0000-7000-8000-000000000000';

describe.each(databaseKinds())('Socket.IO chat events (%s)', (kind) => {
  let t: TestApp;
  let ada: TestUser;
  let bob: TestUser;
  const sockets = socketPool(() => t.url);

  beforeAll(async () => {
    t = await startTestApp(kind);
    ada = await registerUser(t.url, `ada_${Date.now() % 100000}`);
    bob = await registerUser(t.url, `bob_${Date.now() % 100000}`);
  });
  afterEach(() => {
    jest.restoreAllMocks();
    sockets.closeAll();
  });
  afterAll(() => t.close());

  const connect = (user: TestUser) => sockets.connect(user);

  describe('chat:join', () => {
    it('joins with { roomId }, returning the room, its members and no missed messages', async () => {
      const room = await createRoom(t.url, ada);
      const socket = await connect(bob);
      const result = await emitOk<JoinResult>(socket, 'chat:join', { roomId: room.id });
      expect(result).toEqual({
        room,
        members: expect.arrayContaining([
          { id: ada.id, username: ada.username },
          { id: bob.id, username: bob.username },
        ]),
        membersTruncated: false,
        missed: [],
        truncated: false,
      });
      expect(result.members).toHaveLength(2);
    });

    it('takes since: null as no since, like every optional field, recovering nothing', async () => {
      const room = await createRoom(t.url, ada);
      await postMessage(t.url, ada, room.id, 'before');
      const socket = await connect(bob);
      const result = await emitOk<JoinResult>(socket, 'chat:join', {
        roomId: room.id,
        since: null,
      });
      expect(result).toMatchObject({ missed: [], truncated: false });
    });

    it('accepts a bare roomId string, as clients of the reference design send it', async () => {
      const room = await createRoom(t.url, ada);
      const socket = await connect(ada);
      const result = await emitOk<JoinResult>(socket, 'chat:join', room.id);
      expect(result.room.id).toBe(room.id);
    });

    it('returns every message after since, in order', async () => {
      const room = await createRoom(t.url, ada);
      for (let i = 1; i <= 5; i += 1) await postMessage(t.url, ada, room.id, `m${i}`);
      const socket = await connect(bob);
      const result = await emitOk<JoinResult>(socket, 'chat:join', { roomId: room.id, since: 2 });
      expect(result.missed.map((m) => m.seq)).toEqual([3, 4, 5]);
      expect(result.truncated).toBe(false);
    });

    it('tells others chat:userJoined, not the joiner', async () => {
      const room = await createRoom(t.url, ada);
      const adaSocket = await connect(ada);
      await emitOk(adaSocket, 'chat:join', { roomId: room.id });
      const bobSocket = await connect(bob);
      const bobSees = collect<UserJoinedEvent>(bobSocket, 'chat:userJoined');
      const joined = nextEvent<UserJoinedEvent>(adaSocket, 'chat:userJoined');
      await emitOk(bobSocket, 'chat:join', { roomId: room.id });
      expect(await joined).toEqual({
        roomId: room.id,
        user: { id: bob.id, username: bob.username },
        id: bob.id,
        username: bob.username,
      });
      // Answered behind anything the server sent this socket before.
      await emitOk(bobSocket, 'room:presence', { roomId: room.id });
      expect(bobSees).toEqual([]);
    });

    it.each([
      ['no payload', undefined, 'VALIDATION_FAILED'],
      ['no roomId', {}, 'VALIDATION_FAILED'],
      ['a malformed roomId', { roomId: 'lobby' }, 'VALIDATION_FAILED'],
      ['a number for roomId', { roomId: 7 }, 'VALIDATION_FAILED'],
      ['a string for since', { roomId: ABSENT_ROOM, since: '3' }, 'NOT_FOUND'],
      ['an unknown room', { roomId: ABSENT_ROOM }, 'NOT_FOUND'],
      ['an unknown field', { roomId: ABSENT_ROOM, extra: 1 }, 'NOT_FOUND'],
    ])('refuses %s', async (_case, payload, code) => {
      const socket = await connect(ada);
      const response = await emitAck(socket, 'chat:join', payload);
      expect(response).toEqual({
        ok: false,
        error: { code, message: expect.any(String), details: expect.any(Array) },
      });
    });

    it.each([
      ['a string for since', { since: '3' }],
      ['a negative since', { since: -1 }],
      ['a fractional since', { since: 1.5 }],
      ['an unknown field', { extra: 1 }],
    ])('refuses %s in an accessible room with VALIDATION_FAILED', async (_case, extra) => {
      const room = await createRoom(t.url, ada);
      const socket = await connect(ada);
      const response = await emitAck(socket, 'chat:join', { roomId: room.id, ...extra });
      expect(response.ok).toBe(false);
      expect(!response.ok && response.error.code).toBe('VALIDATION_FAILED');
    });

    it.each([
      ['its members', () => jest.spyOn(t.app.get(RoomsService), 'listMembers'), {}],
      ['what it missed', () => jest.spyOn(t.app.get(MessagesService), 'page'), { since: 0 }],
    ])(
      'takes a socket whose join failed reading %s out of the room and its presence again',
      async (_case, spyOnRead, since) => {
        const room = await createRoom(t.url, ada);
        const watcher = await connect(ada);
        await emitOk(watcher, 'chat:join', { roomId: room.id });
        const socket = await connect(bob);
        const messages = collect(socket, 'chat:message');
        spyOnRead().mockRejectedValueOnce(AppException.unavailable('Database unavailable'));

        const left = nextEvent<RoomUserEvent>(watcher, 'chat:userLeft');
        expect(await emitAck(socket, 'chat:join', { roomId: room.id, ...since })).toMatchObject({
          ok: false,
          error: { code: 'UNAVAILABLE' },
        });
        expect(await left).toEqual({
          roomId: room.id,
          user: { id: bob.id, username: bob.username },
        });
        await postMessage(t.url, ada, room.id, 'after the failed join');
        // Answered on the same connection after the message would have been sent.
        const here = await emitOk<{ users: unknown[] }>(socket, 'room:presence', {
          roomId: room.id,
        });

        expect(here.users).toEqual([{ id: ada.id, username: ada.username }]);
        expect(messages).toEqual([]);
      },
    );

    it("answers a failed join with the join's own error, even when taking the socket out fails too", async () => {
      const room = await createRoom(t.url, ada);
      const socket = await connect(bob);
      jest
        .spyOn(t.app.get(RoomsService), 'listMembers')
        .mockRejectedValueOnce(AppException.unavailable('Database unavailable'));
      jest.spyOn(t.app.get(ChatService), 'leave').mockRejectedValueOnce(new Error('presence down'));

      expect(await emitAck(socket, 'chat:join', room.id)).toEqual({
        ok: false,
        error: { code: 'UNAVAILABLE', message: 'Database unavailable', details: [] },
      });
    });

    it("answers NOT_FOUND for someone else's private room, for every event", async () => {
      const room = await createRoom(t.url, ada, { isPrivate: true });
      const socket = await connect(bob);
      for (const [event, payload] of [
        ['chat:join', { roomId: room.id }],
        ['chat:message', { roomId: room.id, text: 'hi' }],
        ['chat:typing', { roomId: room.id }],
        ['room:presence', { roomId: room.id }],
      ] as const) {
        const response = await emitAck(socket, event, payload);
        expect({ event, response }).toEqual({
          event,
          response: { ok: false, error: expect.objectContaining({ code: 'NOT_FOUND' }) },
        });
      }
      const history = await request(t.url)
        .get(`/api/rooms/${room.id}/messages`)
        .set('Authorization', `Bearer ${ada.token}`);
      expect(history.body.items).toEqual([]);
      // The refused send took no seq: the owner's first message is still 1.
      expect((await postMessage(t.url, ada, room.id, 'first')).seq).toBe(1);
    });

    it('emits an error event when the client sent no ack', async () => {
      const socket = await connect(ada);
      const error = nextEvent<{ code: string }>(socket, 'error');
      socket.emit('chat:join', { roomId: 'lobby' });
      expect(await error).toEqual({
        code: 'VALIDATION_FAILED',
        message: expect.any(String),
        details: expect.any(Array),
      });
    });
  });

  describe('an event no gateway listens to', () => {
    it('is answered VALIDATION_FAILED, with an ack or as an error event, and the socket served on', async () => {
      const socket = await connect(ada);
      const answer = await emitAck(socket, 'chat:mesage', { roomId: ABSENT_ROOM, text: 'typo' });
      expect(answer).toEqual({
        ok: false,
        error: { code: 'VALIDATION_FAILED', message: 'Unknown event', details: [] },
      });
      const error = nextEvent<{ code: string; message: string }>(socket, 'error');
      // The typed client knows only the contract's events.
      (socket as unknown as { emit(event: string): void }).emit('no:such:event');
      expect(await error).toMatchObject({ code: 'VALIDATION_FAILED', message: 'Unknown event' });

      // Socket.IO listens to `error` itself on every socket: still none of the service's events.
      expect(await emitAck(socket, 'error', {})).toMatchObject({
        ok: false,
        error: { code: 'VALIDATION_FAILED', message: 'Unknown event' },
      });

      const room = await createRoom(t.url, ada);
      expect(await emitOk<JoinResult>(socket, 'chat:join', room.id)).toMatchObject({
        room: { id: room.id },
      });
    });
  });

  describe('a failure the exception filter cannot answer', () => {
    it('is logged, and the socket goes on being served', async () => {
      const logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      // The filter counts each refusal before it answers.
      jest.spyOn(t.app.get(MetricsService).rejectedEvents, 'inc').mockImplementationOnce(() => {
        throw new Error('the filter broke');
      });
      const socket = await connect(ada);
      socket.emit('chat:join', { roomId: 'lobby' }, () => undefined);

      await eventually(() =>
        logged.mock.calls.some(([message]) => String(message).includes('the filter broke')),
      );
      expect(await emitAck(socket, 'chat:join', { roomId: 'lobby' })).toMatchObject({
        ok: false,
        error: { code: 'VALIDATION_FAILED' },
      });
    });

    it('is logged when it is the answer of a success that fails', async () => {
      const logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      // Timing the ack is the answer's first step.
      jest.spyOn(t.app.get(MetricsService), 'observeAck').mockImplementationOnce(() => {
        throw new Error('the answer broke');
      });
      const room = await createRoom(t.url, ada);
      const socket = await connect(ada);
      socket.emit('room:presence', { roomId: room.id }, () => undefined);

      await eventually(() =>
        logged.mock.calls.some(([message]) => String(message).includes('the answer broke')),
      );
      expect(await emitOk(socket, 'room:presence', { roomId: room.id })).toEqual({ users: [] });
    });
  });

  describe('chat:message', () => {
    it('stores, acks with the message, and delivers it to every member, sender included', async () => {
      const room = await createRoom(t.url, ada);
      const adaSocket = await connect(ada);
      const bobSocket = await connect(bob);
      await emitOk(adaSocket, 'chat:join', room.id);
      await emitOk(bobSocket, 'chat:join', room.id);
      const toAda = nextEvent<MessageJson>(adaSocket, 'chat:message');
      const toBob = nextEvent<MessageJson>(bobSocket, 'chat:message');
      const acked = await emitOk<MessageJson>(adaSocket, 'chat:message', {
        roomId: room.id,
        text: ' hi there ',
        clientMsgId: 'c-1',
      });
      expect(acked).toMatchObject({
        roomId: room.id,
        seq: 1,
        userId: ada.id,
        username: ada.username,
        text: 'hi there',
        clientMsgId: 'c-1',
      });
      expect(await toAda).toEqual(acked);
      expect(await toBob).toEqual(acked);
    });

    it('stores and delivers a message sent without an ack', async () => {
      const room = await createRoom(t.url, ada);
      const socket = await connect(bob);
      await emitOk(socket, 'chat:join', room.id);
      const delivered = nextEvent<MessageJson>(socket, 'chat:message');
      socket.emit('chat:message', { roomId: room.id, text: 'fire and forget' });
      expect(await delivered).toMatchObject({ roomId: room.id, seq: 1, text: 'fire and forget' });
    });

    it('delivers to its sender a message sent right behind its join, as a client of the reference design sends it', async () => {
      const room = await createRoom(t.url, ada);
      const socket = await connect(bob);
      const delivered = collect<MessageJson>(socket, 'chat:message');
      const errors = collect(socket, 'error');
      // The join takes a while (a database or Redis round trip): the events behind it wait.
      const admission = holdNextCall(t.app.get(RoomsService), 'admit');
      socket.emit('chat:join', room.id);
      const typing = emitAck(socket, 'chat:typing', { roomId: room.id });
      const presence = emitAck(socket, 'room:presence', { roomId: room.id });
      const sent = emitAck(socket, 'chat:message', { roomId: room.id, text: 'right behind' });
      await admission.started;
      await sleep(100);
      admission.release();

      expect(await typing).toEqual({ ok: true, data: {} });
      expect(await presence).toMatchObject({
        ok: true,
        data: { users: [{ id: bob.id, username: bob.username }] },
      });
      expect(await sent).toMatchObject({ ok: true, data: { seq: 1, text: 'right behind' } });
      await eventually(() => delivered.length === 1);
      expect(delivered[0]).toMatchObject({ seq: 1, text: 'right behind' });
      expect(errors).toEqual([]);
    });

    it('is idempotent per clientMsgId: the retry gets the original and nothing is delivered twice', async () => {
      const room = await createRoom(t.url, ada);
      const socket = await connect(ada);
      await emitOk(socket, 'chat:join', room.id);
      const received = collect<MessageJson>(socket, 'chat:message');
      const first = await emitOk<MessageJson>(socket, 'chat:message', {
        roomId: room.id,
        text: 'once',
        clientMsgId: 'dup',
      });
      const retry = await emitOk<MessageJson>(socket, 'chat:message', {
        roomId: room.id,
        text: 'once',
        clientMsgId: 'dup',
      });
      expect(retry).toEqual(first);
      // Answered behind anything the server sent this socket before.
      await emitOk(socket, 'room:presence', { roomId: room.id });
      expect(received).toEqual([first]);
    });

    it('delivers a message posted over REST to socket members', async () => {
      const room = await createRoom(t.url, ada);
      const socket = await connect(bob);
      await emitOk(socket, 'chat:join', room.id);
      const live = nextEvent<MessageJson>(socket, 'chat:message');
      const posted = await postMessage(t.url, ada, room.id, 'from REST');
      expect(await live).toEqual(posted);
    });

    it.each([
      ['no text', {}],
      ['blank text', { text: '  ' }],
      ['text of a zero-width space only', { text: '\u200b' }],
      ['text over 4000 characters', { text: 'x'.repeat(4001) }],
      ['a number for text', { text: 5 }],
      ['a number for clientMsgId', { text: 'x', clientMsgId: 5 }],
      ['a too long clientMsgId', { text: 'x', clientMsgId: 'c'.repeat(65) }],
      ['an unknown field', { text: 'x', html: '<b>' }],
      ['a NUL character in text', { text: 'a\u0000b' }],
    ])('refuses %s with VALIDATION_FAILED and takes no seq', async (_case, body) => {
      const room = await createRoom(t.url, ada);
      const socket = await connect(ada);
      const response = await emitAck(socket, 'chat:message', { roomId: room.id, ...body });
      expect(!response.ok && response.error.code).toBe('VALIDATION_FAILED');
      const next = await emitOk<MessageJson>(socket, 'chat:message', {
        roomId: room.id,
        text: 'valid',
      });
      expect(next.seq).toBe(1);
    });

    it.each([
      [
        'a clientMsgId PostgreSQL counts as 128 characters',
        { text: 'x', clientMsgId: 'c\uFE0F'.repeat(64) },
      ],
      ['text PostgreSQL counts as 4002 characters', { text: 'x\uFE0F'.repeat(2001) }],
    ])('refuses %s with VALIDATION_FAILED and takes no seq', async (_case, body) => {
      // A sender of its own: the cases above spend much of ada's chat:message budget.
      const sender = await registerUser(t.url);
      const room = await createRoom(t.url, sender);
      const socket = await connect(sender);
      const response = await emitAck(socket, 'chat:message', { roomId: room.id, ...body });
      expect(response).toEqual({
        ok: false,
        error: {
          code: 'VALIDATION_FAILED',
          message: expect.any(String),
          details: expect.any(Array),
        },
      });
      const next = await emitOk<MessageJson>(socket, 'chat:message', {
        roomId: room.id,
        text: 'valid',
      });
      expect(next.seq).toBe(1);
    });

    it('notifies a mentioned member, and nobody for a non-member or an unknown name', async () => {
      const room = await createRoom(t.url, ada);
      const carol = await registerUser(t.url);
      await request(t.url)
        .post(`/api/rooms/${room.id}/members`)
        .set('Authorization', `Bearer ${bob.token}`)
        .send({ userId: bob.id })
        .expect(201);
      const bobSocket = await connect(bob);
      const carolSocket = await connect(carol);
      const bobNotes = collect<NotificationJson>(bobSocket, 'notification');
      const carolNotes = collect<NotificationJson>(carolSocket, 'notification');
      const adaSocket = await connect(ada);
      const message = await emitOk<MessageJson>(adaSocket, 'chat:message', {
        roomId: room.id,
        text: `hey @${bob.username.toUpperCase()}, @${carol.username} and @nobody_here.`,
      });
      // Mentions go out once the message is stored, together, after its ack.
      await eventually(() => bobNotes.length > 0);
      await emitOk(carolSocket, 'room:presence', { roomId: room.id });
      expect(bobNotes).toEqual([{ type: 'mention', message }]);
      expect(carolNotes).toEqual([]);
    });

    it('notifies a sender who mentions themselves, as any member', async () => {
      const room = await createRoom(t.url, ada);
      const adaSocket = await connect(ada);
      const notes = collect<NotificationJson>(adaSocket, 'notification');
      const message = await emitOk<MessageJson>(adaSocket, 'chat:message', {
        roomId: room.id,
        text: `note to self, @${ada.username}`,
      });
      await eventually(() => notes.length > 0);
      expect(notes).toEqual([{ type: 'mention', message }]);
    });

    /** A sender's socket, and what a reader, member of the sender's room, is notified of. */
    const senderAndReader = async () => {
      const sender = await registerUser(t.url);
      const reader = await registerUser(t.url);
      const room = await createRoom(t.url, sender);
      await request(t.url)
        .post(`/api/rooms/${room.id}/members`)
        .set('Authorization', `Bearer ${reader.token}`)
        .send({ userId: reader.id })
        .expect(201);
      const notes = collect<NotificationJson>(await connect(reader), 'notification');
      return { sender, reader, room, notes, socket: await connect(sender) };
    };

    it('notifies the mentions of a message once, also when a send of it again finds it stored', async () => {
      const { sender, reader, room, notes, socket } = await senderAndReader();
      const send = (text: string, clientMsgId: string) =>
        emitOk<MessageJson>(socket, 'chat:message', { roomId: room.id, text, clientMsgId });
      const mentioning = `ping @${reader.username}`;

      // Stored by a send that stopped short of notifying, as on a node that died after its commit.
      const { message: stored } = await t.app.get(MessageStore).append({
        roomId: room.id,
        userId: sender.id,
        username: sender.username,
        text: mentioning,
        clientMsgId: 'stopped-short',
      });
      expect((await send(mentioning, 'stopped-short')).id).toBe(stored.id);
      await send(mentioning, 'stopped-short');
      const sentOnce = await send(mentioning, 'sent-once');
      await send(mentioning, 'sent-once');
      const last = await send(mentioning, 'last');

      const mentioned = () =>
        notes.map((note) => (note.type === 'mention' ? note.message.id : note.type)).sort();
      // In any order; a duplicate of an earlier one would come before a later sentinel's.
      await eventually(() => mentioned().length >= 3);
      const sentinel = await send(mentioning, 'sentinel');
      await eventually(() => mentioned().includes(sentinel.id));
      expect(mentioned()).toEqual([stored.id, sentOnce.id, last.id, sentinel.id].sort());
    });

    it('notifies the mentions of a message again on its next send, when notifying failed', async () => {
      const { reader, room, notes, socket } = await senderAndReader();
      const users = t.app.get(UsersService);
      const lookup = jest
        .spyOn(users, 'findActiveByUsernames')
        .mockRejectedValueOnce(new Error('The database did not answer'));
      try {
        const send = () =>
          emitOk<MessageJson>(socket, 'chat:message', {
            roomId: room.id,
            text: `ping @${reader.username}`,
            clientMsgId: 'notify-failed',
          });
        const first = await send();
        await eventually(() => lookup.mock.calls.length === 1);

        expect((await send()).id).toBe(first.id);
        await eventually(() => notes.length > 0);
        expect(notes).toEqual([{ type: 'mention', message: first }]);
      } finally {
        lookup.mockRestore();
      }
    });

    it('sends room:invited to the invitee', async () => {
      const room = await createRoom(t.url, ada, { isPrivate: true });
      const socket = await connect(bob);
      const note = nextEvent<NotificationJson>(socket, 'notification');
      await request(t.url)
        .post(`/api/rooms/${room.id}/members`)
        .set('Authorization', `Bearer ${ada.token}`)
        .send({ userId: bob.id })
        .expect(201);
      expect(await note).toEqual({
        type: 'room:invited',
        room,
        by: { id: ada.id, username: ada.username },
      });
    });
  });

  describe('chat:leave, chat:typing and room:presence', () => {
    it('names the room in lower case in answers and events, whatever the case it was sent in', async () => {
      const room = await createRoom(t.url, ada);
      const upperCase = room.id.toUpperCase();
      const watcher = await connect(ada);
      await emitOk(watcher, 'chat:join', room.id);
      const events = {
        joined: nextEvent<UserJoinedEvent>(watcher, 'chat:userJoined'),
        typing: nextEvent<RoomUserEvent>(watcher, 'chat:typing'),
        message: nextEvent<MessageJson>(watcher, 'chat:message'),
        left: nextEvent<RoomUserEvent>(watcher, 'chat:userLeft'),
      };
      const socket = await connect(bob);

      const joined = await emitOk<JoinResult>(socket, 'chat:join', { roomId: upperCase });
      expect(joined.room.id).toBe(room.id);
      await emitOk(socket, 'chat:typing', { roomId: upperCase });
      const sent = await emitOk<MessageJson>(socket, 'chat:message', {
        roomId: upperCase,
        text: 'hi',
      });
      expect(sent.roomId).toBe(room.id);
      await emitOk(socket, 'chat:leave', { roomId: upperCase });

      expect((await events.joined).roomId).toBe(room.id);
      expect((await events.typing).roomId).toBe(room.id);
      expect((await events.message).roomId).toBe(room.id);
      expect((await events.left).roomId).toBe(room.id);
    });

    it('shows who is here, and tells chat:userLeft only when the last socket of a user leaves', async () => {
      const room = await createRoom(t.url, ada);
      const watcher = await connect(ada);
      await emitOk(watcher, 'chat:join', room.id);
      const left = collect<RoomUserEvent>(watcher, 'chat:userLeft');
      const joined = collect<UserJoinedEvent>(watcher, 'chat:userJoined');
      const bob1 = await connect(bob);
      const bob2 = await connect(bob);
      await emitOk(bob1, 'chat:join', room.id);
      await emitOk(bob2, 'chat:join', room.id);
      const present = await emitOk<{ users: unknown[] }>(watcher, 'room:presence', {
        roomId: room.id,
      });
      expect(present.users).toEqual(
        expect.arrayContaining([
          { id: ada.id, username: ada.username },
          { id: bob.id, username: bob.username },
        ]),
      );
      expect(present.users).toHaveLength(2);

      expect(await emitOk(bob1, 'chat:leave', { roomId: room.id })).toEqual({});
      // Answered behind anything the server sent the watcher before.
      const stillHere = await emitOk<{ users: unknown[] }>(watcher, 'room:presence', {
        roomId: room.id,
      });
      expect(stillHere.users).toHaveLength(2);
      expect(left).toEqual([]);
      const leaving = nextEvent(watcher, 'chat:userLeft');
      expect(await emitOk(bob2, 'chat:leave', { roomId: room.id })).toEqual({});
      await leaving;
      expect(joined).toEqual([
        {
          roomId: room.id,
          user: { id: bob.id, username: bob.username },
          id: bob.id,
          username: bob.username,
        },
      ]);
      expect(left).toEqual([{ roomId: room.id, user: { id: bob.id, username: bob.username } }]);
      expect(
        (await emitOk<{ users: unknown[] }>(watcher, 'room:presence', { roomId: room.id })).users,
      ).toEqual([{ id: ada.id, username: ada.username }]);
    });

    it('stops delivering to a socket that left', async () => {
      const room = await createRoom(t.url, ada);
      const socket = await connect(bob);
      const control = await connect(ada);
      await emitOk(socket, 'chat:join', room.id);
      await emitOk(control, 'chat:join', room.id);
      await emitOk(socket, 'chat:leave', { roomId: room.id });
      const received = collect(socket, 'chat:message');
      const controlGets = nextEvent<MessageJson>(control, 'chat:message');
      await postMessage(t.url, ada, room.id, 'after leaving');
      // Delivered to the room (the control has it); a round trip on the socket that left then
      // comes back behind anything the server sent it before.
      expect(await controlGets).toMatchObject({ text: 'after leaving' });
      await emitOk(socket, 'room:presence', { roomId: room.id });
      expect(received).toEqual([]);
    });

    it('sends chat:typing to others, never to any socket of the typist', async () => {
      const room = await createRoom(t.url, ada);
      const ada1 = await connect(ada);
      const ada2 = await connect(ada);
      const bobSocket = await connect(bob);
      for (const socket of [ada1, ada2, bobSocket]) await emitOk(socket, 'chat:join', room.id);
      const adaSees = collect(ada2, 'chat:typing');
      const typing = nextEvent<RoomUserEvent>(bobSocket, 'chat:typing');
      await emitOk(ada1, 'chat:typing', { roomId: room.id });
      expect(await typing).toEqual({
        roomId: room.id,
        user: { id: ada.id, username: ada.username },
      });
      await emitOk(ada2, 'room:presence', { roomId: room.id });
      expect(adaSees).toEqual([]);
    });

    it('refuses typing in a room the socket has not joined', async () => {
      const room = await createRoom(t.url, ada);
      const socket = await connect(bob);
      const response = await emitAck(socket, 'chat:typing', { roomId: room.id });
      expect(!response.ok && response.error.code).toBe('FORBIDDEN');
    });

    it.each([
      ['chat:leave', 'lobby'],
      ['chat:leave', {}],
      ['chat:typing', { roomId: 3 }],
      ['room:presence', {}],
    ])('refuses %s with %j', async (event, payload) => {
      const socket = await connect(ada);
      const response = await emitAck(socket, event, payload);
      expect(response).toEqual({
        ok: false,
        error: expect.objectContaining({
          code: 'VALIDATION_FAILED',
        }),
      });
    });

    it('refuses a field the contract does not know, once the room is one the user may see', async () => {
      const room = await createRoom(t.url, ada);
      const socket = await connect(ada);
      const unknownField = { roomId: room.id, extra: true };
      expect(await emitAck(socket, 'room:presence', unknownField)).toEqual({
        ok: false,
        error: expect.objectContaining({ code: 'VALIDATION_FAILED' }),
      });
      // Access is judged first: an unknown room is NOT_FOUND whatever else the payload holds.
      expect(
        await emitAck(socket, 'room:presence', { roomId: ABSENT_ROOM, extra: true }),
      ).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    });
  });
});
