import type { Server } from 'node:http';
import { Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';

/** What a shutdown waits for, in this order. */
export type ShutdownPhase = 'tell-clients' | 'finish-writes';

type Step = () => void | Promise<void>;

/**
 * The first thing a stopping node does: take no new connections, tell every
 * live client to go (so they reconnect to another node at once), and finish
 * the writes in flight, before Nest closes the servers, the database and Redis.
 */
@Injectable()
export class GracefulShutdown implements BeforeApplicationShutdown {
  private readonly logger = new Logger(GracefulShutdown.name);
  private readonly steps: Record<ShutdownPhase, Step[]> = {
    'tell-clients': [],
    'finish-writes': [],
  };

  constructor(private readonly httpAdapterHost: HttpAdapterHost) {}

  register(phase: ShutdownPhase, step: Step): void {
    this.steps[phase].push(step);
  }

  async beforeApplicationShutdown(): Promise<void> {
    const server = this.httpAdapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    server?.close();
    for (const phase of ['tell-clients', 'finish-writes'] as const) {
      await Promise.allSettled(this.steps[phase].map(async (step) => step()));
    }
    this.logger.log('Clients told and writes finished');
  }
}
