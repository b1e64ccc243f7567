import { Global, Module } from '@nestjs/common';
import { MetricsService } from '@app/metrics/metrics.service';
import { NodeIdentity } from '@app/realtime/node-identity';
import { RedisService } from '@app/redis/redis.service';
import { DeliveryBus, LocalDeliveryBus } from './delivery-bus';
import { DeliveryService } from './delivery.service';
import { RedisDeliveryBus } from './redis-delivery-bus';

async function createBus(
  redis: RedisService,
  node: NodeIdentity,
  metrics: MetricsService,
): Promise<DeliveryBus> {
  if (!redis.enabled) return new LocalDeliveryBus();
  const bus = new RedisDeliveryBus(redis, node, metrics);
  await redis.connect();
  await bus.start();
  return bus;
}

@Global()
@Module({
  providers: [
    NodeIdentity,
    {
      provide: DeliveryBus,
      inject: [RedisService, NodeIdentity, MetricsService],
      useFactory: createBus,
    },
    DeliveryService,
  ],
  exports: [DeliveryService, NodeIdentity],
})
export class DeliveryModule {}
