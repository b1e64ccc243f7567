import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { Transport } from './transport';

/**
 * The app's own Prometheus registry (not the global one, so that several
 * app instances in one process, as in tests, do not collide).
 */
/**
 * How often the event loop's delay is sampled for `nodejs_eventloop_lag_*`.
 * prom-client's 10 ms wakes an idle process 100 times a second, which cost
 * about 6 ms of CPU a second on a 2-core host; 50 ms costs about 1 ms and
 * still catches any stall long enough to matter.
 */
const EVENT_LOOP_SAMPLE_MS = 50;

interface PasswordThreadsState {
  readonly queued: number;
  readonly working: number;
}

@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  readonly httpRequestDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Duration of HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  readonly connections = new Gauge({
    name: 'realtime_connections',
    help: 'Open live connections by transport',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });

  readonly roomsWithMembers = new Gauge({
    name: 'realtime_rooms_with_members',
    help: 'Rooms with at least one connected member on this node',
    registers: [this.registry],
  });

  readonly presenceEntries = new Gauge({
    name: 'realtime_presence_entries',
    help: 'Connections joined to rooms (one per connection and room) on this node',
    registers: [this.registry],
  });

  readonly messages = new Counter({
    name: 'realtime_messages_total',
    help: 'Messages stored, by the transport they were sent on',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });

  readonly rejectedEvents = new Counter({
    name: 'realtime_rejected_events_total',
    help: 'Live events answered with an error, by transport, event and error code',
    labelNames: ['transport', 'event', 'code'] as const,
    registers: [this.registry],
  });

  readonly slowConsumersDropped = new Counter({
    name: 'realtime_slow_consumers_dropped_total',
    help: 'Connections dropped because their outgoing backlog passed the limit',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });

  readonly crossNodePending = new Gauge({
    name: 'realtime_cross_node_pending',
    help: 'Deliveries published to Redis for the other nodes and not answered yet',
    registers: [this.registry],
  });

  readonly crossNodeDropped = new Counter({
    name: 'realtime_cross_node_dropped_total',
    help: 'Deliveries not sent to the other nodes because too many still waited for Redis',
    registers: [this.registry],
  });

  /** Read at each scrape, see `watchPasswordThreads`. */
  private passwordThreads: PasswordThreadsState = { queued: 0, working: 0 };

  readonly passwordTasksWaiting: Gauge = new Gauge({
    name: 'auth_password_tasks_waiting',
    help: 'Password hashes and checks waiting for a hashing thread',
    registers: [this.registry],
    collect: () => this.passwordTasksWaiting.set(this.passwordThreads.queued),
  });

  readonly passwordThreadsBusy: Gauge = new Gauge({
    name: 'auth_password_threads_busy',
    help: 'Hashing threads at work, of PASSWORD_HASH_THREADS',
    registers: [this.registry],
    collect: () => this.passwordThreadsBusy.set(this.passwordThreads.working),
  });

  readonly passwordTasksRefused = new Counter({
    name: 'auth_password_tasks_refused_total',
    help: 'Sign-ins and registrations refused because PASSWORD_HASH_QUEUE_LIMIT tasks already waited',
    registers: [this.registry],
  });

  readonly ackDuration = new Histogram({
    name: 'realtime_ack_duration_seconds',
    help: 'Time from receiving a live event to acknowledging it',
    labelNames: ['event'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  /** The ack histogram's series of each event, resolved once rather than for every ack. */
  private readonly ackSeries = new Map<string, { observe(seconds: number): void }>();

  constructor() {
    collectDefaultMetrics({
      register: this.registry,
      eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS,
    });
    // A series for every live transport from the start: a dashboard or alert reads 0, not "no data".
    for (const transport of [Transport.SocketIo, Transport.Ws, Transport.Sse])
      this.connections.set({ transport }, 0);
  }

  /** Records the delay of an ack for `event`, from `receivedAt` (`performance.now()`) until now. */
  observeAck(event: string, receivedAt: number): void {
    let series = this.ackSeries.get(event);
    if (!series) {
      series = this.ackDuration.labels(event);
      this.ackSeries.set(event, series);
    }
    series.observe((performance.now() - receivedAt) / 1000);
  }

  /**
   * `redis_connected`, read at each scrape: made only with Redis, as an
   * unlabelled gauge has a series (0) from its start.
   */
  watchRedis(connected: () => boolean): void {
    const gauge: Gauge = new Gauge({
      name: 'redis_connected',
      help: 'Whether both Redis connections (commands and subscriptions) are ready: 1 or 0',
      registers: [this.registry],
      collect: () => gauge.set(connected() ? 1 : 0),
    });
  }

  /** The hashing threads whose queue and work the `auth_password_*` gauges show. */
  watchPasswordThreads(threads: PasswordThreadsState): void {
    this.passwordThreads = threads;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
