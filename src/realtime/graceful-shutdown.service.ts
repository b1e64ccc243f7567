import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import {
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { HttpAdapterHost } from '@nestjs/core';
import { reasonOf } from '@app/common/errors/reason-of';
import { SHUTDOWN_GRACES } from '@app/common/shutdown-graces';
import { withinTime } from '@app/common/time-limit';
import type { AllConfig } from '@app/config/app-config';
import { HttpConnections } from './http-connections';

/**
 * What a shutdown does, in this order, once it is `draining` (new work
 * refused, connections still open).
 */
export type ShutdownPhase =
  /** Finish the sends in flight, whose acks then go out on the open connections. */
  | 'finish-sends'
  /** Tell every client to go, so that it reconnects to another node at once. */
  | 'tell-clients'
  /** Finish what closing the connections started (presence). */
  | 'finish-writes';

const PHASES: readonly ShutdownPhase[] = ['finish-sends', 'tell-clients', 'finish-writes'];

/** How often a draining node closes the kept-alive connections that have gone idle. */
const IDLE_SWEEP_MS = 250;

/**
 * A kept-alive connection outlives the closed listener, and a proxy keeps
 * sending its clients' requests over it, to be refused while the node
 * drains. So no response says keep-alive any more, and connections closed
 * the listener found busy are closed once idle: the proxy opens a new one,
 * which is refused, and goes to another node.
 */
function closeConnectionsWhenIdle(server: Server, connections: HttpConnections): void {
  server.prependListener('request', (_request: IncomingMessage, response: ServerResponse) => {
    response.shouldKeepAlive = false;
  });
  const sweep = setInterval(() => connections.closeIdle(), IDLE_SWEEP_MS);
  sweep.unref();
  server.once('close', () => clearInterval(sweep));
}

/**
 * Resolves once `closed()` holds, or after the close grace: then the caller
 * cuts what is left. A client that is gone without a word (a sleeping
 * laptop) would otherwise hold the exit up until TCP, or the close
 * handshake, gave up.
 */
export async function graceForClosing(closed: () => boolean): Promise<void> {
  const deadline = Date.now() + SHUTDOWN_GRACES.connectionCloseMs;
  while (!closed() && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

type Step = () => void | Promise<void>;

/**
 * The first thing a stopping node does: take no new connections or sends,
 * acknowledge the sends in flight, tell every live client to go (so they
 * reconnect to another node at once), and finish the writes that leaves,
 * before Nest closes the servers, the database and Redis. Sends that a
 * stalled database holds past their share of the shutdown timeout are left
 * to their write timeout: the clients are told first, rather than cut off by
 * the forced exit untold (they send again, with the same clientMsgId).
 */
@Injectable()
export class GracefulShutdown implements BeforeApplicationShutdown, OnApplicationBootstrap {
  private readonly logger = new Logger(GracefulShutdown.name);
  private stopping = false;
  private readonly connections = new HttpConnections();
  private readonly steps: Record<ShutdownPhase, Step[]> = {
    'finish-sends': [],
    'tell-clients': [],
    'finish-writes': [],
  };

  constructor(
    private readonly httpAdapterHost: HttpAdapterHost,
    private readonly config: ConfigService<AllConfig, true>,
  ) {}

  /** From the start of the shutdown: new connections and streams are refused, readiness is 503. */
  get draining(): boolean {
    return this.stopping;
  }

  register(phase: ShutdownPhase, step: Step): void {
    this.steps[phase].push(step);
  }

  /** Watched from the start: a shutdown must know the connections opened before it. */
  onApplicationBootstrap(): void {
    const server = this.httpServer();
    if (server) this.connections.watch(server);
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    const startedAt = Date.now();
    const server = this.httpServer();
    if (server) closeConnectionsWhenIdle(server, this.connections);
    server?.close();
    let failed = await this.finishSends();
    for (const phase of PHASES.slice(1)) failed += await this.run(phase);
    if (failed === 0) this.logger.log('Clients told and writes finished');
    else this.logger.warn(`Clients told and writes finished, but for ${failed} failed step(s)`);
    await this.cutRequestsLeft(startedAt);
  }

  private httpServer(): Server | undefined {
    return this.httpAdapterHost.httpAdapter?.getHttpServer() as Server | undefined;
  }

  /**
   * Requests still unanswered (a body a client sends slowly, a read a stalled
   * database holds), and answers still being written out to a slow reader,
   * get as long as the sends in flight, counted from the start, or the time
   * the phases took; then every connection left is cut (one whose request's
   * headers never came in full too). Nest's close of the server would wait
   * for them past the shutdown timeout.
   */
  private async cutRequestsLeft(startedAt: number): Promise<void> {
    const deadline = startedAt + this.config.get('http.finishSendsWithinMs', { infer: true });
    const busy = () => this.connections.unanswered() + this.connections.writingOut();
    while (busy() > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const cut = this.connections.cutAll();
    if (cut > 0) this.logger.warn(`Cut ${cut} request(s) not answered or written out in time`);
  }

  /** @returns how many of its steps failed (none counted when they ran late) */
  private async finishSends(): Promise<number> {
    const withinMs = this.config.get('http.finishSendsWithinMs', { infer: true });
    // run() never rejects (allSettled): a rejection here is the time limit.
    const failed = await withinTime(
      this.run('finish-sends'),
      withinMs,
      () => new Error('late'),
    ).catch(() => {
      this.logger.warn(`Sends still in flight after ${withinMs} ms: telling clients to go anyway`);
      return 0;
    });
    // The acks of finished sends are written in the promise callbacks still queued.
    await new Promise((resolve) => setImmediate(resolve));
    return failed;
  }

  /**
   * Every step of the phase, each to its end: one that fails is logged and
   * holds up no other.
   * @returns how many failed
   */
  private async run(phase: ShutdownPhase): Promise<number> {
    const outcomes = await Promise.allSettled(this.steps[phase].map(async (step) => step()));
    const failures = outcomes.filter((outcome) => outcome.status === 'rejected');
    for (const { reason } of failures) {
      this.logger.error(
        `A shutdown step (${phase}) failed: ${reasonOf(reason)}`,
        reason instanceof Error ? reason.stack : undefined,
      );
    }
    return failures.length;
  }
}
