import { Logger } from '@nestjs/common';
import type { NodeIdentity } from '@app/realtime/node-identity';
import type { RedisService } from '@app/redis/redis.service';
import { DeliveryBus, type DeliveryHandler } from './delivery-bus';
import type { Delivery } from './delivery.service';

interface Envelope {
  node: string;
  delivery: Delivery;
}

/**
 * Deliveries over Redis pub/sub. Local subscribers get a delivery at once,
 * even while Redis is away; other nodes get it through Redis and ignore their
 * own. What a node misses during an outage, clients recover with since /
 * Last-Event-ID, and live ordering fills gaps from storage.
 */
export class RedisDeliveryBus extends DeliveryBus {
  private readonly logger = new Logger(RedisDeliveryBus.name);
  private handler: DeliveryHandler = () => undefined;
  private readonly channel: string;
  private failing = false;

  constructor(
    private readonly redis: RedisService,
    private readonly node: NodeIdentity,
  ) {
    super();
    this.channel = redis.key('delivery');
  }

  async start(): Promise<void> {
    await this.redis.subscriber.subscribe(this.channel, (message) => this.receive(message));
  }

  publish(delivery: Delivery): void {
    this.handler(delivery);
    const envelope: Envelope = { node: this.node.id, delivery };
    this.redis.client.publish(this.channel, JSON.stringify(envelope)).then(
      () => this.recovered(),
      (error: Error) => this.failed(error),
    );
  }

  onReceive(handler: DeliveryHandler): void {
    this.handler = handler;
  }

  private receive(message: string): void {
    const envelope = JSON.parse(message) as Envelope;
    if (envelope.node !== this.node.id) this.handler(envelope.delivery);
  }

  private failed(error: Error): void {
    if (!this.failing) this.logger.warn(`Cross-node delivery paused: ${error.message}`);
    this.failing = true;
  }

  private recovered(): void {
    if (this.failing) this.logger.log('Cross-node delivery resumed');
    this.failing = false;
  }
}
