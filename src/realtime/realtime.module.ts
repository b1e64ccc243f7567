import { Global, Module } from '@nestjs/common';
import { ConnectionTracker } from './connection-tracker';

/** Transport infrastructure shared by every live transport. */
@Global()
@Module({ providers: [ConnectionTracker], exports: [ConnectionTracker] })
export class RealtimeModule {}
