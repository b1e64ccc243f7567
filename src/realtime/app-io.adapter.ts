import type { INestApplicationContext } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { IoAdapter } from '@nestjs/platform-socket.io';
import type { MessageMappingProperties } from '@nestjs/websockets';
import type { Observable } from 'rxjs';
import type { ServerOptions, Socket } from 'socket.io';
import { TokenService } from '@app/auth/token.service';
import type { AllConfig } from '@app/config/app-config';
import type { AckResponse } from '@app/contract/socket-events';
import { MetricsService } from '@app/metrics/metrics.service';
import { RateLimitService } from '@app/throttling/rate-limit.service';
import { ConnectionTracker } from './connection-tracker';
import { isOriginAllowed } from './origin-policy';
import type { AppServer, AppSocket } from './socket-data';
import { limitPacketRate } from './packet-rate';
import { socketHandshake } from './socket-handshake';

/**
 * The Socket.IO server as the contract wants it: options from configuration,
 * Origin allowlist on polling and WebSocket alike, and authentication in the
 * handshake. Subclasses add a cross-node adapter.
 */
export class AppIoAdapter extends IoAdapter {
  constructor(protected readonly app: INestApplicationContext) {
    super(app);
  }

  private metricsService?: MetricsService;

  /** Resolved once, not for every connection that binds its handlers. */
  private metrics(): MetricsService {
    this.metricsService ??= this.app.get(MetricsService, { strict: false });
    return this.metricsService;
  }

  override createIOServer(port: number, options?: Partial<ServerOptions>): AppServer {
    const config = this.app.get(ConfigService<AllConfig, true>);
    const realtime = config.get('realtime', { infer: true });
    const http = config.get('http', { infer: true });
    const server = super.createIOServer(port, {
      ...options,
      pingInterval: realtime.pingIntervalMs,
      pingTimeout: realtime.pingTimeoutMs,
      maxHttpBufferSize: realtime.maxPayloadBytes,
      // Other upgrades (`/ws`) are answered by their own transport, sometimes after an async auth check.
      destroyUpgrade: false,
      cors: { origin: http.corsOrigins.includes('*') ? true : http.corsOrigins, credentials: true },
      allowRequest: (request, callback) =>
        callback(null, isOriginAllowed(request, http.corsOrigins)),
    } satisfies Partial<ServerOptions>) as AppServer;
    server.on('connection', (socket: AppSocket) =>
      limitPacketRate(socket, realtime.maxPacketsPerSecond),
    );
    server.use(
      socketHandshake({
        tokens: this.app.get(TokenService, { strict: false }),
        rateLimits: this.app.get(RateLimitService, { strict: false }),
        connections: this.app.get(ConnectionTracker, { strict: false }),
        trustProxy: http.trustProxy,
      }),
    );
    return server;
  }

  /**
   * Nest's default builds RxJS pipelines per socket and handler, which costs
   * every idle connection kilobytes. Here a socket holds plain listeners, and
   * RxJS is only used per event, to run the handler's result through Nest.
   *
   * A handler's result is the transport's successful ack, `{ ok: true, data }`
   * (failures are answered by the exception filter). Wrapping it here rather
   * than in an interceptor spares every event one step of Nest's interceptor
   * chain, which on Node 20 allocates an `AsyncResource` per step.
   */
  override bindMessageHandlers(
    socket: Socket,
    handlers: MessageMappingProperties[],
    transform: (data: unknown) => Observable<unknown>,
  ): void {
    const metrics = this.metrics();
    for (const { message, callback, isAckHandledManually } of handlers) {
      const event = message as string;
      socket.on(event, (...args: unknown[]) => {
        // As RxJS's fromEvent hands them over: one argument as itself, several as an array.
        const payload = args.length <= 1 ? args[0] : args;
        const { data, ack } = this.mapPayload(payload) as {
          data: unknown;
          ack?: (response: AckResponse<unknown>) => void;
        };
        const answers = !isAckHandledManually && typeof ack === 'function';
        const stopTimer = answers ? metrics.ackDuration.startTimer({ event }) : undefined;
        transform(callback(data, ack)).subscribe({
          next: (result) => {
            if (!answers) return;
            stopTimer?.();
            ack({ ok: true, data: result ?? {} });
          },
          // Failures were answered by the exception filter; nothing may escape to the process.
          error: () => undefined,
        });
      });
    }
  }
}
