import { type INestApplicationContext, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { IoAdapter } from '@nestjs/platform-socket.io';
import type { MessageMappingProperties } from '@nestjs/websockets';
import { isObservable, type Observable } from 'rxjs';
import type { Socket as EngineSession } from 'engine.io';
import type { ServerOptions, Socket } from 'socket.io';
import { TokenService } from '@app/auth/token.service';
import { AppException } from '@app/common/errors/app.exception';
import { reasonOf } from '@app/common/errors/reason-of';
import { answerEventFailure } from '@app/common/filters/ws-exception.filter';
import { receivedJsonBytes } from '@app/common/json-size';
import { KeyedSerialQueue } from '@app/common/serial-queue';
import type { AllConfig } from '@app/config/app-config';
import type { AckResponse } from '@app/contract/socket-events';
import { MetricsService } from '@app/metrics/metrics.service';
import { RateLimitService } from '@app/throttling/rate-limit.service';
import { trustRule } from './client-address';
import { ConnectionTracker } from './connection-tracker';
import { socketOrderOf, type SocketOrder } from './in-socket-order.decorator';
import { refuseForeignOrigins } from './origin-policy';
import type { AppServer, AppSocket } from './socket-data';
import { limitPacketRate, packetLimitReaches } from './packet-rate';
import { REFUSED_SESSION_GRACE_MS, SessionBudget } from './session-budget';
import { handshakeCompleted, socketHandshake } from './socket-handshake';
import { WaitingWork } from './waiting-work';

/** A gateway's handler as Nest keeps it, before binding it to a socket. */
interface GatewayHandler {
  message: unknown;
  methodName: string;
  callback: (this: object, socket: Socket, data: unknown, ack: unknown) => unknown;
  isAckHandledManually?: boolean;
}
/** A handler with its socket: called with the payload and the reply. */
type SocketHandler = (data: unknown, ack: unknown) => unknown;
type SharedListener = (this: Socket, ...args: unknown[]) => void;
type Dispatch = (socket: Socket, args: unknown[], receivedAt: number) => Promise<void>;

const logger = new Logger('SocketIoEvents');
/** What the metrics call an event no gateway listens to. */
const UNKNOWN_EVENT = '(unknown)';

/**
 * Failures were answered by the exception filter: one that still gets here
 * failed the filter itself, or the answer. It is logged, and escapes no
 * further: an unhandled rejection would end the process.
 */
const logUnansweredFailure = (error: unknown) =>
  logger.error(
    `A Socket.IO event's failure could not be answered: ${reasonOf(error)}`,
    error instanceof Error ? error.stack : undefined,
  );

/** A session over the address's budget lives only long enough to be told so. */
function closeRefusedSessions(server: AppServer, budget: SessionBudget): void {
  server.engine.on('connection', (session: EngineSession) => {
    if (!budget.isRefused(session.request)) return;
    const timer = setTimeout(() => session.close(), REFUSED_SESSION_GRACE_MS);
    timer.unref();
    session.once('close', () => clearTimeout(timer));
  });
}

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
    const budget = new SessionBudget(
      this.app.get(RateLimitService, { strict: false }),
      trustRule(http.trustProxy),
    );
    const server = super.createIOServer(port, {
      ...options,
      pingInterval: realtime.pingIntervalMs,
      pingTimeout: realtime.pingTimeoutMs,
      maxHttpBufferSize: realtime.maxPayloadBytes,
      // Other upgrades (`/ws`) are answered by their own transport, sometimes after an async auth check.
      destroyUpgrade: false,
      cors: { origin: http.corsOrigins.includes('*') ? true : http.corsOrigins, credentials: true },
      // Origins are checked before, for every request (`refuseForeignOrigins`).
      allowRequest: (request, callback) => {
        void budget.spendOnNewSession(request).then(() => callback(null, true));
      },
    } satisfies Partial<ServerOptions>) as AppServer;
    server.engine.use(refuseForeignOrigins(http.corsOrigins));
    closeRefusedSessions(server, budget);
    server.engine.on('connection', (session: EngineSession) =>
      limitPacketRate(session, realtime.maxPacketsPerSecond, realtime.maxRoomsPerConnection),
    );
    const connections = this.app.get(ConnectionTracker, { strict: false });
    // One listener for every socket: the handshake reserved its slot.
    const releaseSlot = function (this: AppSocket) {
      connections.release(this.data.user.id, this.id);
    };
    server.on('connection', (socket: AppSocket) => {
      packetLimitReaches(socket);
      handshakeCompleted(socket);
      socket.on('disconnect', releaseSlot);
    });
    server.use(
      socketHandshake({
        tokens: this.app.get(TokenService, { strict: false }),
        budget,
        connections,
        logger: new Logger('SocketIoHandshake'),
      }),
    );
    return server;
  }

  /**
   * Nest's default builds RxJS pipelines per socket and handler, which costs
   * every idle connection kilobytes, and binds each handler to each socket.
   * As Nest is patched (`patches/@nestjs+websockets+*.patch`), it hands the
   * gateway's handlers over unbound, and every socket shares one plain
   * listener per event, which passes the socket to the handler: nothing is
   * kept per socket. A handler's result goes through RxJS only when it is an
   * Observable (an interceptor returns one); a plain result is answered as it
   * comes.
   *
   * A handler's result is the transport's successful ack, `{ ok: true, data }`
   * (failures are answered by the exception filter). Wrapping it here rather
   * than in an interceptor spares every event Nest's interceptor chain.
   */
  bindSharedMessageHandlers(
    socket: Socket,
    handlers: GatewayHandler[],
    gateway: object,
    transform: (data: unknown) => Observable<unknown>,
  ): void {
    this.transform ??= transform;
    for (const handler of handlers) {
      this.handledEvents.add(handler.message as string);
      socket.on(handler.message as string, this.sharedListener(handler, gateway));
    }
    this.refuseUnknownEvents(socket);
  }

  /**
   * Nest without the patch: the handlers come bound to the socket, each with
   * a listener of its own, and without their names (so `InSocketOrder` cannot
   * be read: the patch is part of the install).
   */
  override bindMessageHandlers(
    socket: Socket,
    handlers: MessageMappingProperties[],
    transform: (data: unknown) => Observable<unknown>,
  ): void {
    this.transform ??= transform;
    for (const { message, callback, isAckHandledManually } of handlers) {
      this.handledEvents.add(message as string);
      socket.on(message as string, (...args: unknown[]) => {
        void this.handle(message as string, callback, isAckHandledManually, args);
      });
    }
    this.refuseUnknownEvents(socket);
  }

  /**
   * An event no gateway listens to (a typo, an older client) is answered
   * VALIDATION_FAILED, as `/ws` answers an unknown frame type, rather than
   * left unanswered: a client awaiting its ack would wait for ever.
   */
  private refuseUnknownEvents(socket: Socket): void {
    const metrics = () => this.metrics();
    const handled = this.handledEvents;
    this.unknownEvents ??= function (this: Socket, event: unknown, ...args: unknown[]) {
      // Not `listenerCount`: Socket.IO itself listens to `error` on every socket.
      if (typeof event === 'string' && handled.has(event)) return;
      const ack = args.findLast(
        (arg): arg is (response: unknown) => void => typeof arg === 'function',
      );
      // Named as one: a client's event names must not become metric labels.
      answerEventFailure(
        { client: this, event: UNKNOWN_EVENT, ack },
        AppException.validation('Unknown event'),
        { metrics: metrics(), logger },
      );
    };
    if (!socket.listenersAny().includes(this.unknownEvents)) socket.onAny(this.unknownEvents);
  }

  private unknownEvents?: (this: Socket, event: unknown, ...args: unknown[]) => void;
  /** The events the gateways handle, over every gateway bound. */
  private readonly handledEvents = new Set<string>();

  private transform?: (data: unknown) => Observable<unknown>;
  private readonly listeners = new WeakMap<GatewayHandler, SharedListener>();
  private readonly socketOrder = new KeyedSerialQueue<string>();

  /** The listener of a gateway's handler for every socket: the same handler object each time. */
  private sharedListener(handler: GatewayHandler, gateway: object): SharedListener {
    let listener = this.listeners.get(handler);
    if (!listener) {
      const { message, callback, isAckHandledManually, methodName } = handler;
      const event = message as string;
      const handle = (socket: Socket, args: unknown[], receivedAt: number) =>
        this.handle(
          event,
          (data, ack) => callback.call(gateway, socket, data, ack),
          isAckHandledManually,
          args,
          receivedAt,
        );
      const dispatch = this.inSocketOrder(event, handle, socketOrderOf(gateway, methodName));
      // Socket.IO calls this where a throw would end the process: nothing may escape.
      listener = function (this: Socket, ...args: unknown[]) {
        try {
          dispatch(this, args, performance.now()).catch(logUnansweredFailure);
        } catch (error) {
          logUnansweredFailure(error);
        }
      };
      this.listeners.set(handler, listener);
    }
    return listener;
  }

  /**
   * `handle` as its order asks (see `InSocketOrder`, `AfterSocketOrder`). An
   * event that has to wait is counted against its socket's waiting work, and
   * refused with UNAVAILABLE past it, as a `/ws` frame is.
   */
  private inSocketOrder(event: string, handle: Dispatch, order: SocketOrder | undefined): Dispatch {
    if (!order) return handle;
    const queue = this.socketOrder;
    const keyOf = (socket: Socket, args: unknown[]) => `${socket.id}\n${order.key(args[0])}`;
    const ifConnected = (socket: Socket, args: unknown[], receivedAt: number) => () =>
      socket.connected ? handle(socket, args, receivedAt) : Promise.resolve();
    const enqueue = order.mode === 'turn' ? queue.run.bind(queue) : queue.after.bind(queue);
    return (socket, args, receivedAt) => {
      // Nothing queued on any socket (the usual case): no key to make.
      if (order.mode === 'after' && queue.size === 0) return handle(socket, args, receivedAt);
      const key = keyOf(socket, args);
      const task = ifConnected(socket, args, receivedAt);
      if (!queue.has(key)) return enqueue(key, task);
      const cost = this.waitingWork().admit(socket, receivedJsonBytes(args));
      if (cost === undefined) return Promise.resolve(this.refuseWaiting(socket, event, args));
      return enqueue(key, () => task().finally(() => this.waitingWork().release(socket, cost)));
    };
  }

  private waiting?: WaitingWork<Socket>;

  private waitingWork(): WaitingWork<Socket> {
    this.waiting ??= new WaitingWork(
      this.app
        .get(ConfigService<AllConfig, true>)
        .get('realtime.slowConsumerLimitBytes', { infer: true }),
    );
    return this.waiting;
  }

  private refuseWaiting(socket: Socket, event: string, args: unknown[]): void {
    const ack = args.findLast(
      (arg): arg is (response: unknown) => void => typeof arg === 'function',
    );
    answerEventFailure(
      { client: socket, event, ack },
      AppException.unavailable('Too many events waiting to be handled: send it again later'),
      { metrics: this.metrics(), logger },
    );
  }

  private handle(
    event: string,
    callback: SocketHandler,
    isAckHandledManually: boolean | undefined,
    args: unknown[],
    receivedAt = performance.now(),
  ): Promise<void> {
    const metrics = this.metrics();
    // As RxJS's fromEvent hands them over: one argument as itself, several as an array.
    const payload = args.length <= 1 ? args[0] : args;
    const { data, ack } = this.mapPayload(payload) as {
      data: unknown;
      ack?: (response: AckResponse<unknown>) => void;
    };
    const answers = !isAckHandledManually && typeof ack === 'function';
    let answered = false;
    // The exception filter answers failures with this too; a success must then not follow.
    const reply =
      ack &&
      ((response: AckResponse<unknown>) => {
        answered = true;
        ack(response);
      });
    const succeed = (result: unknown) => {
      if (!answers || answered) return;
      metrics.observeAck(event, receivedAt);
      reply!({ ok: true, data: result ?? {} });
    };
    // An Observable (from an interceptor) runs its handler only once subscribed.
    return Promise.resolve(callback(data, reply))
      .then((result) => {
        if (!isObservable(result)) return succeed(result);
        return new Promise<void>((settled, failed) => {
          const done = () => settled();
          const next = (value: unknown) => {
            try {
              succeed(value);
            } catch (error) {
              failed(error instanceof Error ? error : new Error(String(error)));
            }
          };
          this.transform!(result).subscribe({ next, error: done, complete: done });
        });
      })
      .catch(logUnansweredFailure);
  }
}
