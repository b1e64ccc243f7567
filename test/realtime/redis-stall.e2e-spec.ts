import { randomUUID } from 'node:crypto';
import { createClient } from 'redis';
import { ServerEvent } from '@app/contract/events';
import { accountClosedDelivery, type Delivery } from '@app/delivery/delivery.service';
import { RedisDeliveryBus } from '@app/delivery/redis-delivery-bus';
import { MetricsService } from '@app/metrics/metrics.service';
import { NodeIdentity } from '@app/realtime/node-identity';
import { RedisService, RedisTrouble } from '@app/redis/redis.service';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { createApp } from '@app/app.factory';
import type { RawEnvironment } from '@app/config/env.validation';
import { addMember, createRoom, postMessage, registerUser } from '../support/api';
import { OwnRedis } from '../support/cluster';
import { requiredSeries } from '../support/metrics';
import {
  collect,
  connectSocket,
  emitAck,
  emitOk,
  eventually,
  sleep,
  socketPool,
  type ClientSocket,
} from '../support/sockets';
import { TcpProxy } from '../support/tcp-proxy';
import { BASE_TEST_ENV, startTestApp, type TestApp } from '../support/test-app';

const PAUSE_MS = 4_000;
const MAX_PENDING = 5;

/** Redis that keeps its connections but stops answering: the node must not wait on it. */
describe('a Redis that stops answering', () => {
  let redis: OwnRedis;
  let t: TestApp;
  const sockets = socketPool(() => t.url);

  beforeAll(async () => {
    redis = await OwnRedis.start();
    t = await startTestApp('sqlite', {
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'stall:',
      REDIS_COMMAND_TIMEOUT_MS: '300',
    });
  });
  afterAll(async () => {
    sockets.closeAll();
    await t?.close();
    await redis?.halt();
  });

  it('answers live events from the node itself once a command has waited its timeout', async () => {
    const ada = await registerUser(t.url);
    const room = await createRoom(t.url, ada);
    const socket = await sockets.connect(ada);
    await emitOk(socket, 'chat:join', { roomId: room.id });
    const admin = createClient({ url: redis.url });
    await admin.connect();
    try {
      await admin.sendCommand(['CLIENT', 'PAUSE', String(PAUSE_MS), 'ALL']);
      const started = Date.now();
      const typing = await emitAck(socket, 'chat:typing', { roomId: room.id });
      const presence = await emitAck(socket, 'room:presence', { roomId: room.id });
      const waited = Date.now() - started;

      expect(typing).toEqual({ ok: true, data: {} });
      expect(presence).toEqual({
        ok: true,
        data: { users: [{ id: ada.id, username: ada.username }] },
      });
      // Loosely: two timeouts of 300 ms, far from the pause.
      expect(waited).toBeLessThan(PAUSE_MS / 2);
    } finally {
      await admin.sendCommand(['CLIENT', 'UNPAUSE']);
      await admin.close();
    }
  });

  it('keeps at most its limit of deliveries waiting for Redis, but never sheds one that ends access', async () => {
    const metrics = new MetricsService();
    const bus = new RedisDeliveryBus(
      t.app.get(RedisService),
      new NodeIdentity(),
      metrics,
      MAX_PENDING,
    );
    const local: Delivery[] = [];
    bus.onReceive((delivery) => local.push(delivery));
    await bus.start();
    const valueOf = async (metric: { get(): Promise<{ values: Array<{ value: number }> }> }) =>
      (await metric.get()).values[0]?.value ?? 0;
    const admin = createClient({ url: redis.url });
    await admin.connect();
    try {
      await admin.sendCommand(['CLIENT', 'PAUSE', String(PAUSE_MS), 'ALL']);
      for (let i = 0; i < 3 * MAX_PENDING; i += 1)
        bus.publish({ channel: 'chat:stalled', event: ServerEvent.Message, payload: i });
      bus.publish(accountClosedDelivery(randomUUID()));

      expect(local).toHaveLength(3 * MAX_PENDING + 1);
      expect(await valueOf(metrics.crossNodePending)).toBe(MAX_PENDING + 1);
      expect(await valueOf(metrics.crossNodeDropped)).toBe(2 * MAX_PENDING);

      await admin.sendCommand(['CLIENT', 'UNPAUSE']);
      await eventually(async () => (await valueOf(metrics.crossNodePending)) === 0, 10_000);
    } finally {
      await admin.sendCommand(['CLIENT', 'UNPAUSE']);
      await admin.close();
      bus.onApplicationShutdown();
    }
  });

  it('asks the other nodes to catch up from storage once it stops shedding, and only then', async () => {
    const redisService = t.app.get(RedisService);
    const shedding = new RedisDeliveryBus(
      redisService,
      new NodeIdentity(),
      new MetricsService(),
      MAX_PENDING,
    );
    const other = new RedisDeliveryBus(
      redisService,
      new NodeIdentity(),
      new MetricsService(),
      MAX_PENDING,
    );
    const received: unknown[] = [];
    let catchUps = 0;
    other.onReceive((delivery) => received.push((delivery.payload as { n: number }).n));
    other.onCatchUp(() => (catchUps += 1));
    await Promise.all([shedding.start(), other.start()]);
    const admin = createClient({ url: redis.url });
    await admin.connect();
    try {
      const publish = (n: number) =>
        shedding.publish({ channel: 'chat:shed', event: ServerEvent.Typing, payload: { n } });
      publish(0);
      await eventually(() => received.length === 1);
      expect(catchUps).toBe(0);

      await admin.sendCommand(['CLIENT', 'PAUSE', String(PAUSE_MS), 'ALL']);
      for (let i = 1; i <= 3 * MAX_PENDING; i += 1) publish(i);
      await admin.sendCommand(['CLIENT', 'UNPAUSE']);

      await eventually(() => catchUps === 1, 10_000);
      // What was not shed arrived first; what was shed is the storage's to give.
      expect(received).toEqual([0, 1, 2, 3, 4, 5]);
      publish(99);
      await eventually(() => received.includes(99));
      expect(catchUps).toBe(1);
    } finally {
      await admin.sendCommand(['CLIENT', 'UNPAUSE']);
      await admin.close();
      shedding.onApplicationShutdown();
      other.onApplicationShutdown();
    }
  });

  it('stops within a few seconds while Redis does not answer', async () => {
    const node = await startTestApp('sqlite', {
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'stall-stop:',
      REDIS_COMMAND_TIMEOUT_MS: '300',
    });
    const admin = createClient({ url: redis.url });
    await admin.connect();
    // The Socket.IO adapter subscribes once the app runs, and leaves a failed subscription unhandled.
    await eventually(async () => (await fetch(`${node.url}/health/ready`)).status === 200);
    await sleep(500);
    try {
      // The ping every client sends keeps a command pending throughout the pause.
      await admin.sendCommand(['CLIENT', 'PAUSE', String(PAUSE_MS), 'ALL']);
      const started = Date.now();
      await node.close();
      expect(Date.now() - started).toBeLessThan(PAUSE_MS / 2);
    } finally {
      await admin.sendCommand(['CLIENT', 'UNPAUSE']);
      await admin.close();
    }
  });
});

/**
 * Connections to Redis that stay open but carry nothing any more (a proxy or
 * firewall in between that lost its other side): no error ever comes.
 */
describe('Redis connections that go silent without closing', () => {
  const prefix = `silent-${randomUUID().slice(0, 8)}:`;
  let proxy: TcpProxy;
  let silent: TestApp;
  let other: NestExpressApplication;
  let otherUrl: string;
  const sockets = socketPool(() => silent.url);

  beforeAll(async () => {
    const redisUrl = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    proxy = await TcpProxy.start(redisUrl.hostname, Number(redisUrl.port || 6379));
    const shared = {
      REDIS_KEY_PREFIX: prefix,
      REDIS_SILENT_AFTER_MS: '1500',
      PRESENCE_TTL_MS: '1500',
    };
    silent = await startTestApp('postgres', {
      ...shared,
      REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
    });
    other = await createApp({
      ...BASE_TEST_ENV,
      ...silent.database.env,
      ...shared,
      REDIS_URL: redisUrl.toString(),
    });
    await other.listen(0, '127.0.0.1');
    otherUrl = (await other.getUrl()).replace('[::1]', '127.0.0.1');
  });
  afterAll(async () => {
    sockets.closeAll();
    await other?.close();
    await silent?.close();
    await proxy?.cut();
  });

  /** An invitation made on the other node reaches a user here exactly once: no connection doubled. */
  async function expectNotifiedOnceAcrossNodes(): Promise<void> {
    const [ada, bob] = await Promise.all([1, 2].map(() => registerUser(silent.url)));
    const notifications = collect(await sockets.connect(bob), 'notification');
    const room = await createRoom(otherUrl, ada, { isPrivate: true });
    await addMember(otherUrl, ada, room.id, bob.id);
    await eventually(() => notifications.length === 1, 10_000);
    await sleep(500);
    expect(notifications).toHaveLength(1);
  }

  it('are made again, and what another node delivered meanwhile arrives', async () => {
    const ada = await registerUser(silent.url);
    const room = await createRoom(silent.url, ada);
    const socket = await sockets.connect(ada);
    await emitOk(socket, 'chat:join', { roomId: room.id });
    const received = collect<{ seq: number }>(socket, 'chat:message');
    const connectionsBefore = proxy.opened;

    proxy.stallOpenConnections();
    await postMessage(otherUrl, ada, room.id, 'while silent');
    // Both connections are found silent and made anew; the catch-up brings what was missed.
    await eventually(() => received.length === 1, 15_000);
    await eventually(() => proxy.opened >= connectionsBefore + 2, 10_000);
    await postMessage(otherUrl, ada, room.id, 'after');
    await eventually(() => received.length === 2, 10_000);
    expect(received.map((message) => message.seq)).toEqual([1, 2]);
    expect((await fetch(`${silent.url}/health/ready`)).status).toBe(200);
  }, 40_000);

  it('are made again also on a node whose own event loop lags every round', async () => {
    const connectionsBefore = proxy.opened;
    proxy.stallOpenConnections();
    // The process holds itself 450 ms of every 650: each round of the watch (every 500 ms) late.
    const lagging = setInterval(() => {
      const until = performance.now() + 450;
      while (performance.now() < until);
    }, 200);
    try {
      await eventually(() => proxy.opened >= connectionsBefore + 2, 15_000);
    } finally {
      clearInterval(lagging);
    }
    await eventually(
      async () => (await fetch(`${silent.url}/health/ready`)).status === 200,
      15_000,
    );
  }, 40_000);

  it('makes a connection anew again when the one made anew never finishes its setup, and only one', async () => {
    const ready = async () => (await fetch(`${silent.url}/health/ready`)).status;
    const before = proxy.opened;
    const openBefore = proxy.openNow;
    proxy.stall();
    try {
      await eventually(async () => (await ready()) === 503, 10_000);
      // Connections made anew were accepted, and are stuck in their setup for the silence allowed;
      // found silent too, they are made anew once more.
      await eventually(() => proxy.opened >= before + 2, 10_000);
      await eventually(() => proxy.opened >= before + 4, 10_000);
    } finally {
      proxy.resume();
    }
    await eventually(async () => (await ready()) === 200, 15_000);
    // No setup given up on went on, on a connection of its own, once Redis answered again.
    expect(proxy.openNow).toBe(openBefore);
    await expectNotifiedOnceAcrossNodes();
  }, 40_000);

  it('leaves a client that waits to connect again to its own attempts: one connection each once Redis is back', async () => {
    const ready = async () => (await fetch(`${silent.url}/health/ready`)).status;
    const openBefore = proxy.openNow;
    const redis = silent.app.get(RedisService);
    const madeAnew = [redis.client, redis.subscriber].map((client) =>
      jest.spyOn(client, 'destroy'),
    );
    await proxy.cut();
    try {
      await eventually(async () => (await ready()) === 503, 10_000);
      // Refused at once, the clients wait their retry delays (up to 2 s), longer than the silence
      // allowed: each client's own attempts go on, and none is made anew beside them.
      await sleep(8_000);
      expect(madeAnew.map((destroy) => destroy.mock.calls.length)).toEqual([0, 0]);
    } finally {
      for (const destroy of madeAnew) destroy.mockRestore();
      await proxy.open();
    }
    await eventually(async () => (await ready()) === 200, 15_000);
    await sleep(500);
    expect(proxy.openNow).toBe(openBefore);
    await expectNotifiedOnceAcrossNodes();
  }, 40_000);

  it('tells the other node of a join made while this one had lost Redis, once it is back', async () => {
    const [ada, bob, cy] = await Promise.all([1, 2, 3].map(() => registerUser(silent.url)));
    const room = await createRoom(silent.url, ada);
    const neighbour = await sockets.connect(cy);
    await emitOk(neighbour, 'chat:join', { roomId: room.id });
    const elsewhere = await connectSocket(otherUrl, bob.token);
    try {
      await emitOk(elsewhere, 'chat:join', { roomId: room.id });
      const joiner = await sockets.connect(ada);
      // Only ada's: others' presence may come and go meanwhile (bob's join, an expiry).
      const heardOfAda = (socket: ClientSocket) => {
        const heard = collect<{ user: { id: string } }>(socket, 'chat:userJoined');
        return () => heard.filter((event) => event.user.id === ada.id);
      };
      const heardHere = heardOfAda(neighbour);
      const heardThere = heardOfAda(elsewhere);

      await proxy.cut();
      try {
        await emitOk(joiner, 'chat:join', { roomId: room.id });
        await eventually(() => heardHere().length === 1);
      } finally {
        await proxy.open();
      }

      await eventually(() => heardThere().length === 1, 15_000);
      // Announced once there, and not again here: a sentinel join after it comes in order.
      const sentinel = await sockets.connect(await registerUser(silent.url));
      const sentinelHeard = collect<{ user: { id: string } }>(elsewhere, 'chat:userJoined');
      await emitOk(sentinel, 'chat:join', { roomId: room.id });
      await eventually(() => sentinelHeard.length >= 1, 10_000);
      expect(heardThere()).toHaveLength(1);
      expect(heardHere()).toHaveLength(1);
    } finally {
      elsewhere.close();
    }
  }, 40_000);

  it('does not tell a node’s connections again of a join they heard of there', async () => {
    const [ada, cy] = await Promise.all([1, 2].map(() => registerUser(silent.url)));
    const room = await createRoom(silent.url, cy);
    const watcher = await sockets.connect(cy);
    await emitOk(watcher, 'chat:join', { roomId: room.id });
    const heard = collect<{ user: { id: string } }>(watcher, 'chat:userJoined');
    const publisher = createClient({ url: process.env.REDIS_URL });
    await publisher.connect();
    // Another node's late announcement of a join, made while Redis was away.
    const lateAnnouncement = ({ id, username }: { id: string; username: string } = ada) =>
      publisher.publish(
        `${prefix}delivery`,
        JSON.stringify({
          node: 'another-node',
          delivery: {
            channel: `chat:${room.id}`,
            event: 'chat:userJoined',
            payload: { roomId: room.id, user: { id, username } },
            elsewhereOnly: true,
          },
        }),
      );
    const sentinel = await registerUser(silent.url);
    try {
      await lateAnnouncement();
      await eventually(() => heard.length === 1);
      // Ada joins here: this node's connections hear it now, and not again from the other node.
      const joiner = await sockets.connect(ada);
      await emitOk(joiner, 'chat:join', { roomId: room.id });
      await eventually(() => heard.length === 2);
      await lateAnnouncement();
      // Published after it on the same channel: once this one is here, the other was dropped.
      await lateAnnouncement(sentinel);
      await eventually(() => heard.length === 3);
      expect(heard.map((event) => event.user.id)).toEqual([ada.id, ada.id, sentinel.id]);
    } finally {
      await publisher.close();
    }
  });
});

/** A node on a Redis server of the describe block's own, which its tests may halt and resume. */
function nodeOnOwnRedis(env: RawEnvironment): { redis: OwnRedis; t: TestApp } {
  const own = {} as { redis: OwnRedis; t: TestApp };
  beforeAll(async () => {
    own.redis = await OwnRedis.start();
    own.t = await startTestApp('sqlite', { REDIS_URL: own.redis.url, ...env });
  });
  afterAll(async () => {
    await own.t?.close();
    await own.redis?.halt();
  });
  return own;
}

describe('a node whose own event loop stalls longer than Redis may stay silent', () => {
  const own = nodeOnOwnRedis({ REDIS_KEY_PREFIX: 'own-stall:', REDIS_SILENT_AFTER_MS: '1500' });

  it('keeps its healthy connections to Redis rather than making them anew', async () => {
    const troubles: RedisTrouble[] = [];
    const stopListening = own.t.app
      .get(RedisService)
      .onTrouble((trouble) => troubles.push(trouble));
    try {
      // Held by the process itself, twice the silence Redis is allowed: no ping goes out or is read.
      const until = performance.now() + 3_000;
      while (performance.now() < until);
      // Several rounds of the silence watch, every 500 ms.
      await sleep(2_000);
      expect(troubles).toEqual([]);
    } finally {
      stopListening();
    }
  });
});

describe('readiness while Redis is away, with READINESS_REQUIRES_REDIS=false', () => {
  const own = nodeOnOwnRedis({ REDIS_KEY_PREFIX: 'readiness:', READINESS_REQUIRES_REDIS: 'false' });

  const connected = async () =>
    requiredSeries(await (await fetch(`${own.t.url}/metrics`)).text(), 'redis_connected');

  it('stays ready, and redis_connected tells the outage and the return', async () => {
    await eventually(async () => (await connected()) === 1, 10_000);

    await own.redis.halt();
    try {
      await eventually(async () => (await connected()) === 0, 10_000);
      const ready = await fetch(`${own.t.url}/health/ready`);
      expect(ready.status).toBe(200);
      const { checks } = (await ready.json()) as { checks: Record<string, unknown> };
      expect(checks).not.toHaveProperty('redis');
    } finally {
      await own.redis.resume();
    }
    await eventually(async () => (await connected()) === 1, 20_000);
  });
});
