import type { INestApplicationContext } from '@nestjs/common';
import { createAdapter } from '@socket.io/redis-adapter';
import type { ServerOptions } from 'socket.io';
import { RedisService } from '@app/redis/redis.service';
import { AppIoAdapter } from './app-io.adapter';
import type { AppServer } from './socket-data';

/**
 * The Socket.IO server of a node among several: the Redis adapter makes the
 * nodes one Socket.IO cluster (rooms, broadcasts and socket operations such
 * as disconnecting a user everywhere). Connected once, before `listen`.
 */
export class RedisIoAdapter extends AppIoAdapter {
  private adapterConstructor?: ReturnType<typeof createAdapter>;

  constructor(app: INestApplicationContext) {
    super(app);
  }

  async connect(): Promise<void> {
    const redis = this.app.get(RedisService, { strict: false });
    await redis.connect();
    this.adapterConstructor = createAdapter(redis.client, redis.subscriber, {
      key: redis.key('socket.io'),
    });
  }

  override createIOServer(port: number, options?: Partial<ServerOptions>): AppServer {
    if (!this.adapterConstructor)
      throw new Error('RedisIoAdapter.connect() must complete before the server starts');
    const server = super.createIOServer(port, options);
    server.adapter(this.adapterConstructor);
    return server;
  }
}
