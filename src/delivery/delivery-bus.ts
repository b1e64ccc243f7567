import type { Delivery } from './delivery.service';

export type DeliveryHandler = (delivery: Delivery) => void;

/**
 * Carries deliveries to every node. Each node hands what it receives, its
 * own publications included, to its local transports exactly once.
 */
export abstract class DeliveryBus {
  abstract publish(delivery: Delivery): void;
  abstract onReceive(handler: DeliveryHandler): void;

  /**
   * `handler` runs whenever this node may have missed deliveries of other
   * nodes, once it receives them again.
   */
  abstract onResync(handler: () => void): void;

  /**
   * `handler` runs when another node shed messages this node may follow:
   * they are in storage, to be read back.
   */
  abstract onCatchUp(handler: () => void): void;
}

/** One node alone: deliveries never leave the process. */
export class LocalDeliveryBus extends DeliveryBus {
  private handler: DeliveryHandler = () => undefined;

  publish(delivery: Delivery): void {
    if (!delivery.elsewhereOnly) this.handler(delivery);
  }

  onReceive(handler: DeliveryHandler): void {
    this.handler = handler;
  }

  onResync(_handler: () => void): void {
    // One node alone misses nothing.
  }

  onCatchUp(_handler: () => void): void {
    // Nor sheds anything.
  }
}
