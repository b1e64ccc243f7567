import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { MetricsService } from '@app/metrics/metrics.service';
import type { NodeIdentity } from '@app/realtime/node-identity';
import type { RedisService } from '@app/redis/redis.service';
import { DeliveryBus, type DeliveryHandler } from './delivery-bus';
import type { Delivery } from './delivery.service';

/** How often a node that got back in touch asks again until Redis takes the request. */
const RESYNC_RETRY_MS = 1_000;
/**
 * Publications Redis has not answered yet. A Redis that keeps its connection
 * but stops answering would otherwise have the node queue every delivery in
 * memory; past this many the node stops sending others its deliveries, as in
 * an outage, until Redis answers again and every node resyncs.
 */
export const MAX_PENDING_PUBLISHES = 10_000;

/** A delivery of one node, or its request that every node resyncs. */
type Envelope = { node: string; delivery: Delivery } | { node: string; resync: true };

/**
 * Deliveries over Redis pub/sub. Local subscribers get a delivery at once,
 * even while Redis is away; other nodes get it through Redis and ignore their
 * own. What a node misses during an outage, clients recover with since /
 * Last-Event-ID, and live ordering fills gaps from storage; what it missed of
 * access ending, its resync handlers find out (see `askForResync`).
 */
export class RedisDeliveryBus extends DeliveryBus implements OnApplicationShutdown {
  private readonly logger = new Logger(RedisDeliveryBus.name);
  private handler: DeliveryHandler = () => undefined;
  private resyncHandler: () => void = () => undefined;
  private readonly channel: string;
  private failing = false;
  private resyncAsked = false;
  private resyncRetry?: NodeJS.Timeout;
  private stopped = false;
  private pending = 0;

  constructor(
    private readonly redis: RedisService,
    private readonly node: NodeIdentity,
    private readonly metrics: MetricsService,
    private readonly maxPending = MAX_PENDING_PUBLISHES,
  ) {
    super();
    this.channel = redis.key('delivery');
  }

  /** Subscribes; every later 'ready' of the subscriber is a reconnection after an outage. */
  async start(): Promise<void> {
    await this.redis.subscriber.subscribe(this.channel, (message) => this.receive(message));
    this.redis.subscriber.on('ready', () => this.askForResync());
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    clearTimeout(this.resyncRetry);
  }

  publish(delivery: Delivery): void {
    this.handler(delivery);
    if (this.pending >= this.maxPending) {
      this.metrics.crossNodeDropped.inc();
      return this.failed(new Error(`${this.pending} deliveries wait for Redis to answer`));
    }
    const envelope: Envelope = { node: this.node.id, delivery };
    this.pending += 1;
    this.metrics.crossNodePending.inc();
    this.redis.client.publish(this.channel, JSON.stringify(envelope)).then(
      () => {
        this.answered();
        this.recovered();
      },
      (error: Error) => {
        this.answered();
        this.failed(error);
      },
    );
  }

  onReceive(handler: DeliveryHandler): void {
    this.handler = handler;
  }

  onResync(handler: () => void): void {
    this.resyncHandler = handler;
  }

  private receive(message: string): void {
    const envelope = JSON.parse(message) as Envelope;
    if ('resync' in envelope) this.resyncHandler();
    else if (envelope.node !== this.node.id) this.handler(envelope.delivery);
  }

  /**
   * Once this node is back in touch (its subscriber reconnected, or its
   * publishing works again), every node may have missed deliveries of the
   * others: it asks all of them, itself included, to resync. Its own request
   * coming back also shows that its subscription is live again, so nothing
   * published after the resync has read the database can be missed.
   */
  private askForResync(): void {
    if (this.resyncAsked || this.stopped) return;
    this.resyncAsked = true;
    const envelope: Envelope = { node: this.node.id, resync: true };
    this.redis.client.publish(this.channel, JSON.stringify(envelope)).then(
      () => {
        this.resyncAsked = false;
      },
      () => {
        this.resyncAsked = false;
        this.resyncRetry = setTimeout(() => this.askForResync(), RESYNC_RETRY_MS);
        this.resyncRetry.unref();
      },
    );
  }

  private answered(): void {
    this.pending -= 1;
    this.metrics.crossNodePending.dec();
  }

  private failed(error: Error): void {
    if (!this.failing) this.logger.warn(`Cross-node delivery paused: ${error.message}`);
    this.failing = true;
  }

  /** Once half the backlog has gone: a Redis that only just keeps up would otherwise flap. */
  private recovered(): void {
    if (!this.failing || this.pending > this.maxPending / 2) return;
    this.logger.log('Cross-node delivery resumed');
    this.failing = false;
    this.askForResync();
  }
}
