import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import { OccasionalWarning } from '@app/common/occasional-warning';
import { ServerEvent } from '@app/contract/events';
import type { MetricsService } from '@app/metrics/metrics.service';
import type { NodeIdentity } from '@app/realtime/node-identity';
import type { RedisService } from '@app/redis/redis.service';
import { DeliveryBus, type DeliveryHandler } from './delivery-bus';
import type { Delivery } from './delivery.service';
import { readEnvelope, type Envelope } from './envelope';

/** How often a node whose deliveries others missed asks them again until Redis takes the request. */
const RESYNC_RETRY_MS = 1_000;
/**
 * Publications Redis has not answered yet. A Redis that keeps its connection
 * but stops answering would otherwise have the node queue every delivery in
 * memory; from this many on, until half of them are answered, the node stops
 * sending the others its deliveries, as in an outage, except those that end
 * access (rare, and what a resync would have to make up for): the others fill
 * the messages they miss from storage.
 */
const MAX_PENDING_PUBLISHES = 10_000;

/**
 * Nodes of the version before resyncs hand every envelope's delivery to
 * their transports: this one goes to a channel no connection is ever on.
 */
const TO_NO_ONE: Delivery = { channel: 'resync', event: ServerEvent.Notification, payload: null };

/**
 * Deliveries over Redis pub/sub. Local subscribers get a delivery at once,
 * even while Redis is away; other nodes get it through Redis and ignore their
 * own. What a node misses during an outage, clients recover with since /
 * Last-Event-ID, and live ordering fills gaps from storage; what it missed of
 * access ending, its resync handler finds out. A node resyncs when its
 * subscriber reconnects (it may have missed anything), and when another node
 * asks, because others missed that node's deliveries: a node whose
 * publications failed asks before its next delivery, so that the others
 * resync before they see it.
 */
export class RedisDeliveryBus extends DeliveryBus implements OnApplicationShutdown {
  private readonly logger = new Logger(RedisDeliveryBus.name);
  private handler: DeliveryHandler = () => undefined;
  private resyncHandler: () => void = () => undefined;
  private catchUpHandler: () => void = () => undefined;
  private readonly channel: string;
  private failing = false;
  private shedding = false;
  private shedWarned = false;
  private pending = 0;
  /** Others may have missed this node's deliveries and have not been asked to resync yet. */
  private resyncDue = false;
  private resyncAsked = false;
  private resyncRetry?: NodeJS.Timeout;
  /** Messages were shed: once shedding stops, the others are asked to catch up. */
  private catchUpDue = false;
  private stopped = false;
  private readonly malformedWarning = new OccasionalWarning(this.logger);
  private readonly failedHere = new OccasionalWarning(this.logger);

  constructor(
    private readonly redis: RedisService,
    private readonly node: NodeIdentity,
    private readonly metrics: MetricsService,
    private readonly maxPending = MAX_PENDING_PUBLISHES,
  ) {
    super();
    this.channel = redis.key('delivery');
  }

  /**
   * Subscribes. Every later 'ready' of the subscriber follows a reconnection,
   * and comes once it has subscribed again: whatever is published from then
   * on reaches this node.
   */
  async start(): Promise<void> {
    await this.redis.subscriber.subscribe(this.channel, (message) => this.receive(message));
    this.redis.subscriber.on('ready', () => this.resyncHandler());
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    clearTimeout(this.resyncRetry);
  }

  publish(delivery: Delivery): void {
    if (!delivery.elsewhereOnly) this.handler(delivery);
    if (!delivery.effect && this.overloaded()) return this.shed();
    if (this.resyncDue) this.askForResync();
    this.send({ node: this.node.id, delivery }).then(
      () => this.recovered(),
      (error: Error) => this.failed(error),
    );
  }

  onReceive(handler: DeliveryHandler): void {
    this.handler = handler;
  }

  onResync(handler: () => void): void {
    this.resyncHandler = handler;
  }

  onCatchUp(handler: () => void): void {
    this.catchUpHandler = handler;
  }

  private receive(message: string): void {
    const envelope = readEnvelope(message);
    if (!envelope) return this.malformed(message);
    if (envelope.node === this.node.id) return;
    // A throw would reach the Redis client, which then drops the rest of what it read.
    try {
      if (envelope.resync) this.resyncHandler();
      else if (envelope.catchUp) this.catchUpHandler();
      else this.handler(envelope.delivery);
    } catch (error) {
      this.failedHere.note(
        (count) =>
          `${count} delivery(ies) from other nodes failed here, the last: ${String(error)}`,
      );
    }
  }

  private malformed(message: string): void {
    const shape = shapeOf(message);
    this.malformedWarning.note(
      (count) =>
        `Ignored ${count} malformed message(s) on the delivery channel, the last: ${shape}`,
    );
  }

  private async send(envelope: Envelope): Promise<void> {
    this.pending += 1;
    this.metrics.crossNodePending.inc();
    try {
      await this.redis.client.publish(this.channel, JSON.stringify(envelope));
    } finally {
      this.pending -= 1;
      this.metrics.crossNodePending.dec();
    }
  }

  /** From the bound on, until half the backlog is answered: at the bound itself it would flap. */
  private overloaded(): boolean {
    if (this.pending >= this.maxPending) this.shedding = true;
    else this.stopSheddingOnceAnswered();
    return this.shedding;
  }

  private stopSheddingOnceAnswered(): void {
    if (!this.shedding || this.pending > this.maxPending / 2) return;
    this.shedding = false;
    if (this.shedWarned) this.logger.log('Cross-node delivery no longer shed');
    this.shedWarned = false;
    if (this.catchUpDue) this.askToCatchUp();
  }

  private shed(): void {
    this.metrics.crossNodeDropped.inc();
    this.catchUpDue = true;
    if (!this.shedWarned) {
      this.logger.warn(`Cross-node delivery shed: ${this.pending} deliveries wait for Redis`);
      this.shedWarned = true;
    }
  }

  /**
   * Not while a resync is due and not yet asked for: sent ahead of it, this
   * would have the others read storage before their access audit, and the
   * resync ends in a catch-up anyway. One asked for already is ahead of this,
   * which then waits for it on the other nodes. Failing, it is a resync that
   * the others are asked for instead, later.
   */
  private askToCatchUp(): void {
    this.catchUpDue = false;
    if (this.stopped || (this.resyncDue && !this.resyncAsked)) return;
    this.send({ node: this.node.id, delivery: TO_NO_ONE, catchUp: true }).then(
      () => undefined,
      (error: Error) => this.failed(error),
    );
  }

  /** Published ahead of the next delivery, so that every other node holds it until it has resynced. */
  private askForResync(): void {
    if (this.resyncAsked || this.stopped) return;
    this.resyncAsked = true;
    this.send({ node: this.node.id, delivery: TO_NO_ONE, resync: true }).then(
      () => {
        this.resyncAsked = false;
        this.resyncDue = false;
      },
      () => {
        this.resyncAsked = false;
        this.retryResyncLater();
      },
    );
  }

  /** Also when this node publishes nothing more: the others missed what it published before. */
  private retryResyncLater(): void {
    if (this.resyncRetry || this.stopped) return;
    this.resyncRetry = setTimeout(() => {
      this.resyncRetry = undefined;
      if (this.resyncDue) this.askForResync();
    }, RESYNC_RETRY_MS);
    this.resyncRetry.unref();
  }

  private failed(error: Error): void {
    if (!this.failing) this.logger.warn(`Cross-node delivery paused: ${error.message}`);
    this.failing = true;
    this.resyncDue = true;
    this.retryResyncLater();
  }

  private recovered(): void {
    this.stopSheddingOnceAnswered();
    if (!this.failing) return;
    this.logger.log('Cross-node delivery resumed');
    this.failing = false;
  }
}

/**
 * What a message was, without what it said: a node of another version may
 * publish chat text or `/ws` payloads in a form this one cannot read.
 */
function shapeOf(message: string): string {
  const size = `${message.length} characters`;
  try {
    const value: unknown = JSON.parse(message);
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      return `JSON that is no object (${size})`;
    const keys = Object.keys(value).slice(0, 10).join(', ');
    return `a JSON object with the keys ${keys || '(none)'} (${size})`;
  } catch {
    return `not JSON (${size})`;
  }
}
