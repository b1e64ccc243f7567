import { Global, Module } from '@nestjs/common';
import { ConnectionTracker } from './connection-tracker';
import { GracefulShutdown } from './graceful-shutdown.service';

/** Transport infrastructure shared by every live transport. */
@Global()
@Module({
  providers: [ConnectionTracker, GracefulShutdown],
  exports: [ConnectionTracker, GracefulShutdown],
})
export class RealtimeModule {}
