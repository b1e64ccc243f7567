import { createClient } from 'redis';
import type { MessageJson, NotificationJson } from '@app/contract/models';
import type { RoomUserEvent, UserJoinedEvent } from '@app/contract/socket-events';
import { addMember, createRoom, postMessage, registerUser, removeMember } from '../support/api';
import { Cluster, ClusterNode, clusterServicesAvailable, OwnRedis } from '../support/cluster';
import { CuttablePostgres } from '../support/cuttable-postgres';
import { RoomMember } from '../support/member';
import { RawClient } from '../support/raw-ws';
import {
  collect,
  connectSocket,
  emitAck,
  emitOk,
  eventually,
  nextEvent,
  sleep,
} from '../support/sockets';
import { openSse } from '../support/sse';

const describeCluster = clusterServicesAvailable() ? describe : describe.skip;
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const seqs = (messages: MessageJson[]) => messages.map((message) => message.seq);

async function readiness(
  url: string,
): Promise<{ status: number; body: { checks?: Record<string, { status: string }> } }> {
  const response = await fetch(`${url}/health/ready`);
  return {
    status: response.status,
    body: (await response.json()) as { checks?: Record<string, { status: string }> },
  };
}

describeCluster('faults of a three-node cluster', () => {
  it('drops the users of a SIGKILLed node from presence, with chat:userLeft, within the TTL', async () => {
    const cluster = await Cluster.start(3);
    try {
      const [url0, , url2] = cluster.nodes.map((node) => node.url);
      const [ada, bob] = await Promise.all([registerUser(url0), registerUser(url0)]);
      const room = await createRoom(url0, ada);
      const watcher = await connectSocket(url0, ada.token);
      await emitOk(watcher, 'chat:join', room.id);
      const doomed = await connectSocket(url2, bob.token, { reconnection: false });
      await emitOk(doomed, 'chat:join', room.id);
      await eventually(
        async () =>
          (await emitOk<{ users: unknown[] }>(watcher, 'room:presence', { roomId: room.id })).users
            .length === 2,
      );

      const left = nextEvent<RoomUserEvent>(watcher, 'chat:userLeft', () => true, 10_000);
      const killedAt = Date.now();
      await cluster.nodes[2].kill('SIGKILL');
      expect(await left).toEqual({ roomId: room.id, user: { id: bob.id, username: bob.username } });
      // The entry expires at most a TTL (3 s) after its last heartbeat, and the next sweep,
      // a third of a TTL later, announces it: well under two TTLs, not just eventually.
      expect(Date.now() - killedAt).toBeLessThan(7_000);
      expect(
        (
          await emitOk<{ users: Array<{ id: string }> }>(watcher, 'room:presence', {
            roomId: room.id,
          })
        ).users,
      ).toEqual([{ id: ada.id, username: ada.username }]);
      watcher.close();
      doomed.close();
    } finally {
      await cluster.stop();
    }
  }, 60_000);

  it('announces again, with chat:userJoined, the users of a node that stalled past the TTL and came back', async () => {
    const cluster = await Cluster.start(2);
    try {
      const [url0, url1] = cluster.nodes.map((node) => node.url);
      const [ada, bob] = await Promise.all([registerUser(url0), registerUser(url0)]);
      const room = await createRoom(url0, ada);
      const watcher = await connectSocket(url0, ada.token);
      await emitOk(watcher, 'chat:join', room.id);
      const stalled = await connectSocket(url1, bob.token, { reconnection: false });
      await emitOk(stalled, 'chat:join', room.id);
      const bobSummary = { id: bob.id, username: bob.username };

      const left = nextEvent<RoomUserEvent>(watcher, 'chat:userLeft', () => true, 10_000);
      cluster.nodes[1].process.child.kill('SIGSTOP');
      try {
        expect(await left).toEqual({ roomId: room.id, user: bobSummary });
      } finally {
        cluster.nodes[1].process.child.kill('SIGCONT');
      }

      const back = nextEvent<UserJoinedEvent>(watcher, 'chat:userJoined', () => true, 10_000);
      expect(await back).toEqual({ roomId: room.id, user: bobSummary, ...bobSummary });
      const present = await emitOk<{ users: Array<{ id: string }> }>(watcher, 'room:presence', {
        roomId: room.id,
      });
      expect(present.users.map((user) => user.id).sort()).toEqual([ada.id, bob.id].sort());
      watcher.close();
      stalled.close();
    } finally {
      await cluster.stop();
    }
  }, 60_000);

  it('loses no acknowledged message when a node is SIGKILLed mid-traffic: every member gets each once, in seq order', async () => {
    const cluster = await Cluster.start(3);
    const members: RoomMember[] = [];
    try {
      const urls = cluster.nodes.map((node) => node.url);
      const alive = () =>
        urls.filter(
          (_, i) =>
            cluster.nodes[i].process.child.exitCode === null &&
            cluster.nodes[i].process.child.signalCode === null,
        );
      const owner = await registerUser(urls[0]);
      const room = await createRoom(urls[0], owner);
      const users = await Promise.all(range(7).map(() => registerUser(urls[0])));
      for (const [i, user] of users.slice(0, 3).entries()) {
        const member = new RoomMember(user.token, room.id, alive);
        await member.join(urls[i]);
        members.push(member);
      }
      const senders = await Promise.all(
        users.slice(3, 6).map((user, i) => connectSocket(urls[i % 2], user.token)),
      );
      // One sender on the node that dies: what it had acknowledged must reach everyone too.
      const doomedSender = await connectSocket(urls[2], users[6].token, { reconnection: false });
      const acked: MessageJson[] = [];
      let ackedByTheDoomed = 0;
      let sending = true;
      const sendLoops = senders.map(async (socket, s) => {
        for (let i = 0; sending; i += 1) {
          const answer = await emitAck<MessageJson>(socket, 'chat:message', {
            roomId: room.id,
            text: `s${s}-${i}`,
            clientMsgId: `s${s}-${i}`,
          });
          if (answer.ok) acked.push(answer.data);
          await sleep(5);
        }
      });
      const doomedLoop = (async () => {
        for (let i = 0; sending; i += 1) {
          const answer = await emitAck<MessageJson>(doomedSender, 'chat:message', {
            roomId: room.id,
            text: `doomed-${i}`,
            clientMsgId: `doomed-${i}`,
          }).catch(() => undefined);
          // Its node is gone: the ack of the last send never came.
          if (!answer) return;
          if (answer.ok) {
            acked.push(answer.data);
            ackedByTheDoomed += 1;
          }
          await sleep(5);
        }
      })();
      await eventually(() => acked.length >= 60, 20_000);
      await cluster.nodes[2].kill('SIGKILL');
      await eventually(() => members[2].reconnections >= 1, 20_000);
      await eventually(() => acked.length >= 180, 30_000);
      sending = false;
      await Promise.all([...sendLoops, doomedLoop]);
      senders.forEach((socket) => socket.close());
      doomedSender.close();
      expect(ackedByTheDoomed).toBeGreaterThan(0);

      const total = Math.max(...seqs(acked));
      expect(new Set(seqs(acked)).size).toBe(acked.length);
      for (const member of members) {
        await eventually(() => member.lastSeq >= total, 20_000);
        expect(seqs(member.received)).toEqual(range(total));
      }
    } finally {
      members.forEach((member) => member.close());
      await cluster.stop();
    }
  }, 120_000);

  it('keeps serving local clients while Redis is down, says so in readiness, and resumes cross-node delivery when it returns, missed messages first', async () => {
    const redis = await OwnRedis.start();
    const cluster = await Cluster.start(2, { REDIS_URL: redis.url });
    try {
      const [url0, url1] = cluster.nodes.map((node) => node.url);
      const [ada, bob, carol] = await Promise.all([
        registerUser(url0),
        registerUser(url0),
        registerUser(url0),
      ]);
      const room = await createRoom(url0, ada);
      const sender = await connectSocket(url0, ada.token);
      const localMember = await connectSocket(url0, carol.token);
      await emitOk(localMember, 'chat:join', room.id);
      const localReceived = collect<MessageJson>(localMember, 'chat:message');
      const remote = new RoomMember(bob.token, room.id, () => [url1]);
      await remote.join(url1);
      const remoteWs = await RawClient.connect(url1, bob.token);
      await remoteWs.request({ type: 'join', room: room.id }, 'joined');
      const remoteSse = await openSse(`${url1}/api/rooms/${room.id}/events?token=${bob.token}`);
      const remoteTyper = await connectSocket(url1, bob.token);
      await emitOk(remoteTyper, 'chat:join', room.id);
      const wsSeqs = () =>
        remoteWs.frames
          .filter((frame) => frame.type === 'chat:message')
          .map((frame) => (frame.message as MessageJson).seq);
      const sseSeqs = () =>
        remoteSse.received
          .filter((event) => event.event === 'chat:message')
          .map((event) => Number(event.id));

      await emitOk(sender, 'chat:message', { roomId: room.id, text: 'before' });
      await eventually(
        () => remote.lastSeq === 1 && wsSeqs().length === 1 && sseSeqs().length === 1,
      );

      await redis.halt();
      await eventually(async () => (await readiness(url0)).status === 503, 10_000);
      expect((await readiness(url0)).body.checks?.redis).toEqual({
        status: 'down',
        // Public: the client's own words, which may name hosts, stay in the logs.
        message: expect.stringMatching(/^(Not connected|Redis did not answer)$/),
      });
      expect((await readiness(url0)).body.checks?.database?.status).toBe('up');
      // Published by the Socket.IO adapter, which never awaits it: refused at once with Redis away.
      for (const typer of [localMember, remoteTyper])
        expect(await emitAck(typer, 'chat:typing', { roomId: room.id })).toEqual({
          ok: true,
          data: {},
        });
      await sleep(500);
      expect(cluster.nodes.map((node) => node.process.child.exitCode)).toEqual([null, null]);
      for (let i = 0; i < 5; i += 1) {
        const stored = await emitOk<MessageJson>(sender, 'chat:message', {
          roomId: room.id,
          text: `during ${i}`,
        });
        expect(stored.seq).toBe(i + 2);
      }
      await eventually(() => localReceived.length === 6);
      expect(seqs(localReceived)).toEqual(range(6));

      await redis.resume();
      await eventually(
        async () =>
          (await readiness(url0)).status === 200 && (await readiness(url1)).status === 200,
        20_000,
      );
      // Read back from storage once the node is back in touch, before any new message shows the gap.
      await eventually(
        () => remote.lastSeq === 6 && wsSeqs().length === 6 && sseSeqs().length === 6,
        10_000,
      );
      await emitOk(sender, 'chat:message', { roomId: room.id, text: 'after' });
      await eventually(
        () => remote.lastSeq === 7 && wsSeqs().length === 7 && sseSeqs().length === 7,
        10_000,
      );
      expect(seqs(remote.received)).toEqual(range(7));
      expect(wsSeqs()).toEqual(range(7));
      expect(sseSeqs()).toEqual(range(7));
      sender.close();
      localMember.close();
      remote.close();
      remoteWs.close();
      remoteSse.close();
      remoteTyper.close();
    } finally {
      await cluster.stop();
      await redis.halt();
    }
  }, 90_000);

  it('ends, once Redis is back, the access that other nodes ended while it was down', async () => {
    const redis = await OwnRedis.start();
    const cluster = await Cluster.start(2, { REDIS_URL: redis.url });
    const clients: Array<{ close(): void }> = [];
    try {
      const [url0, url1] = cluster.nodes.map((node) => node.url);
      const [ada, bob, carol, dan] = await Promise.all([0, 1, 2, 3].map(() => registerUser(url0)));
      const room = await createRoom(url0, ada, { isPrivate: true });
      for (const member of [bob, carol, dan]) await addMember(url0, ada, room.id, member.id);
      const joinedSocket = async (token: string) => {
        const socket = await connectSocket(url1, token);
        clients.push(socket);
        await emitOk(socket, 'chat:join', room.id);
        return socket;
      };
      const [bobSocket, carolSocket, danSocket] = await Promise.all(
        [bob, carol, dan].map((user) => joinedSocket(user.token)),
      );
      const bobWs = await RawClient.connect(url1, bob.token);
      clients.push(bobWs);
      await bobWs.request({ type: 'join', room: room.id }, 'joined');
      const bobSse = await openSse(`${url1}/api/rooms/${room.id}/events?token=${bob.token}`);
      clients.push(bobSse);
      const bobNotified = nextEvent<NotificationJson>(
        bobSocket,
        'notification',
        () => true,
        30_000,
      );
      const carolGone = new Promise<string>((resolve) => carolSocket.once('disconnect', resolve));
      const bobGets = collect<MessageJson>(bobSocket, 'chat:message');
      const danGets = collect<MessageJson>(danSocket, 'chat:message');

      await redis.halt();
      await eventually(async () => (await readiness(url1)).status === 503, 10_000);
      await removeMember(url0, ada, room.id, bob.id);
      // Stored while node 1 is out of touch: once back, it fills them in from storage.
      const during: MessageJson[] = [];
      for (let i = 0; i < 3; i += 1)
        during.push(await postMessage(url0, ada, room.id, `during ${i}`));
      const deleted = await fetch(`${url0}/api/auth/me`, {
        method: 'DELETE',
        headers: { Authorization: `Bearer ${carol.token}` },
      });
      expect(deleted.status).toBe(204);
      await sleep(500);
      expect(carolSocket.connected).toBe(true);

      await redis.resume();
      await eventually(
        async () =>
          (await readiness(url0)).status === 200 && (await readiness(url1)).status === 200,
        20_000,
      );
      // At once, while node 1 may still be auditing: it must hold the message, and the
      // ones it reads back from storage, until bob is out.
      const after = await postMessage(url0, ada, room.id, 'after the outage');

      const removal = await bobNotified;
      expect(removal).toMatchObject({ type: 'room:removed', room: { id: room.id } });
      expect(removal).not.toHaveProperty('by');
      await bobWs.next((frame) => frame.type === 'left' && frame.room === room.id, 30_000);
      await bobSse.closed;
      expect(await carolGone).toBe('io server disconnect');

      await eventually(() => danGets.some((message) => message.id === after.id), 10_000);
      expect(danGets.map((message) => message.id)).toEqual([...during, after].map(({ id }) => id));
      await sleep(200);
      expect(bobGets).toEqual([]);
      expect(bobWs.frames.filter((frame) => frame.type === 'chat:message')).toEqual([]);
      expect(bobSse.received.filter((event) => event.event === 'chat:message')).toEqual([]);
    } finally {
      clients.forEach((client) => client.close());
      await cluster.stop();
      await redis.halt();
    }
  }, 120_000);

  it('drains on SIGTERM: acknowledges every stored send, tells every client, exits 0', async () => {
    const cluster = await Cluster.start(2);
    try {
      const [url0, url1] = cluster.nodes.map((node) => node.url);
      const [ada, bob] = await Promise.all([registerUser(url0), registerUser(url0)]);
      const room = await createRoom(url0, ada);
      const socket = await connectSocket(url1, ada.token);
      const ws = await RawClient.connect(url1, bob.token);
      const sse = await openSse(`${url1}/api/rooms/${room.id}/events?token=${bob.token}`);
      const socketGone = new Promise<string>((resolve) => socket.once('disconnect', resolve));

      const acks = Array.from({ length: 20 }, (_, i) =>
        emitAck<MessageJson>(socket, 'chat:message', { roomId: room.id, text: `m${i}` }).catch(
          () => undefined,
        ),
      );
      // Some sends answered before the signal, others perhaps still under way: none may be lost.
      await Promise.race(acks);
      const started = Date.now();
      const exit = await cluster.nodes[1].kill('SIGTERM');
      expect(exit.code).toBe(0);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(await socketGone).toBe('transport close');
      expect(await ws.closed).toEqual({ code: 1001, reason: 'Server shutting down' });
      await sse.closed;
      const told = sse.received.at(-1);
      expect(told?.event).toBe('closed');
      expect(JSON.parse(told?.data ?? 'null')).toMatchObject({ code: 'UNAVAILABLE' });

      const answered = (await Promise.all(acks)).filter((answer) => answer?.ok);
      const history = await fetch(`${url0}/api/rooms/${room.id}/messages?since=0&limit=200`, {
        headers: { Authorization: `Bearer ${ada.token}` },
      });
      const stored = ((await history.json()) as { items: MessageJson[] }).items;
      // Every stored message was acknowledged: sends in flight are acked before clients are told.
      const acked = answered.map((answer) => (answer?.ok ? answer.data : undefined));
      expect(acked.length).toBeGreaterThan(0);
      expect(stored).toEqual(expect.arrayContaining(acked));
      expect(stored).toHaveLength(acked.length);
      expect(seqs(stored)).toEqual(range(stored.length));
      socket.close();
    } finally {
      await cluster.stop();
    }
  }, 60_000);
});

describeCluster('PostgreSQL unreachable', () => {
  it('answers UNAVAILABLE, acknowledges and delivers nothing unstored, and recovers by itself', async () => {
    const proxy = await CuttablePostgres.start();
    const cluster = await Cluster.start(1, { DATABASE_URL: proxy.url });
    const node: ClusterNode = cluster.nodes[0];
    try {
      const ada = await registerUser(node.url);
      const room = await createRoom(node.url, ada);
      const socket = await connectSocket(node.url, ada.token);
      await emitOk(socket, 'chat:join', room.id);
      const received = collect<MessageJson>(socket, 'chat:message');
      await emitOk(socket, 'chat:message', { roomId: room.id, text: 'stored' });

      await proxy.cut();
      const refused = await emitAck(socket, 'chat:message', { roomId: room.id, text: 'lost?' });
      expect(refused).toEqual({
        ok: false,
        error: { code: 'UNAVAILABLE', message: expect.any(String), details: [] },
      });
      expect((await readiness(node.url)).status).toBe(503);
      const rooms = await fetch(`${node.url}/api/rooms`, {
        headers: { Authorization: `Bearer ${ada.token}`, 'X-Request-Id': 'req-outage-1' },
      });
      expect(rooms.status).toBe(503);
      // The warning names the request it refused (once the log line has been read).
      const warningOf = (requestId: string) =>
        node.process
          .output()
          .split('\n')
          .filter((line) => line.startsWith('{') && line.endsWith('}'))
          .map((line) => JSON.parse(line) as { msg?: string; req?: { id?: string } })
          .find((entry) => entry.req?.id === requestId);
      await eventually(() => warningOf('req-outage-1') !== undefined);
      expect(warningOf('req-outage-1')?.msg).toMatch(/^Dependency unavailable/);

      await proxy.open();
      await eventually(async () => (await readiness(node.url)).status === 200, 20_000);
      const next = await emitOk<MessageJson>(socket, 'chat:message', {
        roomId: room.id,
        text: 'after recovery',
      });
      expect(next.seq).toBe(2);
      await eventually(() => received.length === 2);
      expect(received.map((message) => message.text)).toEqual(['stored', 'after recovery']);
      socket.close();
    } finally {
      await cluster.stop();
      await proxy.cut();
    }
  }, 90_000);
});

describeCluster('messages on the shared Redis channels that no node sent', () => {
  it('are logged and dropped: the node neither crashes nor stalls', async () => {
    const cluster = await Cluster.start(1);
    const redis = createClient({ url: process.env.REDIS_URL });
    try {
      const node = cluster.nodes[0];
      const ada = await registerUser(node.url);
      const room = await createRoom(node.url, ada);
      const socket = await connectSocket(node.url, ada.token);
      await emitOk(socket, 'chat:join', room.id);
      await redis.connect();
      const leaveRoom = (roomId?: unknown) => ({ kind: 'leave-room', userId: ada.id, roomId });
      const delivery = (fields: Record<string, unknown>) =>
        JSON.stringify({
          node: 'not-a-node',
          delivery: { channel: `user:${ada.id}`, event: 'notification', payload: {}, ...fields },
        });
      // First: the one malformed message a minute that is logged is the first.
      const forged: Array<[string, string]> = [
        [
          'delivery',
          delivery({
            channel: `chat:${room.id}`,
            event: 'chat:message',
            payload: { text: 'not for the logs', roomId: room.id, seq: '3' },
          }),
        ],
        ['delivery', 'not JSON'],
        ['delivery', delivery({ effect: leaveRoom(123) })],
        ['delivery', delivery({ effect: leaveRoom() })],
        ['delivery', delivery({ channel: `chat:${room.id}`, payload: null })],
        ['delivery', delivery({ payload: { type: 'room:invited' } })],
        ['socket.io-request#/#', '{"type":0,"rooms":5}'],
        ['socket.io-request#/#', '{"type":2,"requestId":"x","rooms":{"a":1}}'],
      ];
      // Listening before anything is forged: a forged event let through cannot slip past.
      const messages = collect<MessageJson>(socket, 'chat:message');
      const notifications = collect<unknown>(socket, 'notification');
      for (const [channel, message] of forged)
        await redis.publish(`${cluster.schema}:${channel}`, message);

      const sent = await emitOk<MessageJson>(socket, 'chat:message', {
        roomId: room.id,
        text: 'still here',
      });
      expect(sent.seq).toBe(1);
      // The own message comes after anything forged before it, through the same channel.
      await eventually(() => messages.length > 0);
      expect(messages).toEqual([sent]);
      expect(notifications).toEqual([]);
      expect((await fetch(`${node.url}/health/live`)).status).toBe(200);
      await eventually(() =>
        node.process.output().includes('malformed message(s) on the delivery channel'),
      );
      await eventually(() => node.process.output().includes('Socket.IO adapter message(s)'));
      // What they said stays out of the logs: another version's messages may carry chat text.
      expect(node.process.output()).not.toContain('not for the logs');
      socket.close();
    } finally {
      await redis.close().catch(() => undefined);
      await cluster.stop();
    }
  }, 60_000);
});
