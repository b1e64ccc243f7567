import { now, sleep, waitUntil } from '../common/clock';
import type { Stamp } from '../common/message-text';
import type { RunCommand, RunResult } from '../common/protocol';
import { Recorder } from '../common/summary';
import type { StreamTracker } from './stream-tracker';

/** A sending connection, as the engine sees it; the transport fills in `transmit`. */
export interface Sender {
  key: string;
  /** Deliveries one of its messages makes (the room's receiving connections). */
  audience: number;
  /** Last counter used. */
  n: number;
  /** Sent and not yet settled (acked, or seen by the room's probe receiver). */
  outstanding: number;
  transmit(stamp: Stamp): void;
}

/** A receiving connection. */
export interface Receiver {
  tracker: StreamTracker;
  /** Whether its deliveries count towards the latency figures (senders' own echoes do not). */
  timed: boolean;
}

/** Unsettled messages a sender may have in fixed mode before sends are skipped. */
const FIXED_MODE_MAX_OUTSTANDING = 256;
const TICK_MS = 5;
/**
 * After the drain, how long a run still counts what arrives before its
 * result is read: a duplicate or a delivery no send explains that follows
 * the last expected delivery by a few milliseconds makes this run unclean,
 * rather than the next (or none).
 */
export const QUIET_MS = 250;

/**
 * What arrives between runs, after one run's result was read and before
 * the next starts: the next run counts it. (Duplicates, deliveries on
 * streams not followed and gaps stay in the receivers' trackers, which are
 * reset when a run's result is read, so the next run counts those too.)
 */
class BetweenRuns {
  /** Messages already expected (acked, or sent over `/ws`) when they arrived: late in the next run. */
  late = 0;
  /** Messages not expected yet when they arrived: the next run sorts them out when it starts. */
  readonly ahead: Array<{ stream: string; n: number }> = [];
  ackErrors = 0;
  firstError?: string;
}

class RunState {
  readonly start = now();
  /** This process's CPU time at the start, for its CPU over the sending window. */
  readonly cpuAtStart = process.cpuUsage();
  sendWindowMs = 0;
  sendCpuMs = 0;
  sending = true;
  sent = 0;
  /** Sent on a transport that acknowledges nothing (raw WebSocket). */
  sentUnacked = 0;
  acked = 0;
  ackErrors = 0;
  skipped = 0;
  /** Messages of this run received: each counted once, at a receiver that follows its stream. */
  deliveries = 0;
  expectedDeliveries = 0;
  /** Messages of an earlier run (or the warm-up) that arrived in this one, or since that run's result: not counted in `deliveries`. */
  late = 0;
  lastSendAt = this.start;
  lastEventAt = this.start;
  /** Disconnects already charged to an earlier run: the rest, between runs included, are this run's. */
  disconnectsAtStart: number;
  firstError?: string;
  readonly latency = new Recorder();
  readonly ack = new Recorder();

  constructor(
    readonly command: RunCommand,
    disconnects: number,
    /** Per stream, the last number expected before this run: anything up to it was sent earlier. */
    readonly expectedBefore: ReadonlyMap<string, number>,
  ) {
    this.disconnectsAtStart = disconnects;
  }
}

/**
 * Paces senders (a fixed rate, or as fast as a window of unsettled messages
 * allows), and counts what receivers get: deliveries, latency, loss, duplicates.
 */
export class LoadEngine {
  /** Per stream, the last number that every receiver of it must get. */
  readonly expected = new Map<string, number>();
  readonly senders: Sender[] = [];
  readonly receivers: Receiver[] = [];
  disconnects = 0;
  /** Disconnects some run's result has counted. */
  private disconnectsCounted = 0;
  /** How the first unexpected disconnect happened. */
  firstDisconnect?: string;
  private state?: RunState;
  private between = new BetweenRuns();

  /** A connection closed that the load generator did not close. */
  disconnected(detail: string): void {
    this.disconnects += 1;
    this.firstDisconnect ??= detail;
  }

  /**
   * A message reached a receiver. Only the first delivery of a message of
   * this run, on a stream the receiver follows, counts as a delivery;
   * duplicates and deliveries on other streams are counted as errors by the
   * receiver's tracker, and messages of an earlier run as late. Between
   * runs, the next run counts them (see `BetweenRuns`). True for the
   * message's first delivery to this receiver, whichever run it belongs to.
   */
  delivered(receiver: Receiver, stream: string, n: number, sentAt: number): boolean {
    const seen = receiver.tracker.see(stream, n);
    if (seen !== 'new') return false;
    const state = this.state;
    if (!state) {
      if (n <= (this.expected.get(stream) ?? 0)) this.between.late += 1;
      else this.between.ahead.push({ stream, n });
      return true;
    }
    if (n <= (state.expectedBefore.get(stream) ?? 0)) {
      state.late += 1;
      return true;
    }
    const at = now();
    state.deliveries += 1;
    state.lastEventAt = Math.max(state.lastEventAt, at);
    if (receiver.timed) state.latency.add(at - sentAt);
    return true;
  }

  /** The server acknowledged a message; `n` is its number in `stream`. */
  acked(sender: Sender, stream: string, n: number, sentAt: number): void {
    this.expect(stream, n, sender.audience);
    const state = this.state;
    if (state) {
      state.acked += 1;
      state.ack.add(now() - sentAt);
    }
    this.release(sender);
  }

  /** A message went out that will not be acknowledged (raw WebSocket): expect it at once. */
  sentUnacked(sender: Sender, stream: string, n: number): void {
    if (this.state) this.state.sentUnacked += 1;
    this.expect(stream, n, sender.audience);
  }

  failed(sender: Sender, error: string): void {
    this.refused(error);
    this.release(sender);
  }

  /** The server refused something (an error ack or frame): counted with the run's ack errors. */
  refused(error: string): void {
    const counted = this.state ?? this.between;
    counted.ackErrors += 1;
    counted.firstError ??= error;
  }

  /** One of the sender's messages is settled: it may send another. */
  release(sender: Sender): void {
    sender.outstanding = Math.max(0, sender.outstanding - 1);
    const state = this.state;
    if (state) state.lastEventAt = Math.max(state.lastEventAt, now());
    this.pump(sender);
  }

  async run(command: RunCommand): Promise<RunResult> {
    const state = new RunState(command, this.disconnectsCounted, new Map(this.expected));
    this.takeOver(state);
    this.state = state;
    const ticker = command.mode === 'fixed' ? this.startTicker(state) : undefined;
    if (command.mode === 'max') for (const sender of this.senders) this.pump(sender);
    await sleep(command.durationMs);
    state.sending = false;
    clearInterval(ticker);
    const cpu = process.cpuUsage(state.cpuAtStart);
    state.sendCpuMs = (cpu.user + cpu.system) / 1000;
    state.sendWindowMs = now() - state.start;
    const settled = await waitUntil(
      () => this.senders.every((s) => s.outstanding === 0),
      command.drainMs,
    );
    // Waits for every expected delivery; more than expected (a message
    // delivered whose send was refused or never acked) is counted as
    // unexpected by `resultOf`, so a clean run has exactly as many.
    const complete = await waitUntil(
      () => state.deliveries >= state.expectedDeliveries,
      command.drainMs,
    );
    // Duplicates and surplus deliveries may follow the last expected one.
    await sleep(QUIET_MS);
    this.state = undefined;
    const result = this.resultOf(state, settled && complete);
    for (const receiver of this.receivers) receiver.tracker.resetCounts();
    return result;
  }

  /**
   * Charges what arrived since the last run's result to the run starting:
   * refusals; messages expected when they arrived as late; the others as
   * late if expected by now, else as deliveries of this run whose ack is
   * still to come (as during a run: more than expected is unexpected).
   */
  private takeOver(state: RunState): void {
    const between = this.between;
    this.between = new BetweenRuns();
    state.late = between.late;
    state.ackErrors = between.ackErrors;
    state.firstError = between.firstError;
    for (const { stream, n } of between.ahead)
      if (n <= (state.expectedBefore.get(stream) ?? 0)) state.late += 1;
      else state.deliveries += 1;
  }

  private expect(stream: string, n: number, audience: number): void {
    if (n > (this.expected.get(stream) ?? 0)) this.expected.set(stream, n);
    if (this.state) this.state.expectedDeliveries += audience;
  }

  /**
   * `sentAt` is where latencies count from: the send itself, or at a fixed
   * rate, for a send held back more than a tick past its schedule (the load
   * generator stalled), its schedule plus a tick. So a stall of the load
   * generator's own is in the figures (no coordinated omission), and the
   * ticker's granularity, which has nothing to do with either server, is not.
   */
  private send(sender: Sender, state: RunState, dueAt = Infinity): void {
    const sentAt = Math.min(now(), dueAt + TICK_MS);
    sender.n += 1;
    sender.outstanding += 1;
    state.sent += 1;
    state.lastSendAt = now();
    sender.transmit({ sender: sender.key, n: sender.n, sentAt });
  }

  private pump(sender: Sender): void {
    const state = this.state;
    if (!state?.sending || state.command.mode !== 'max') return;
    while (state.sending && sender.outstanding < state.command.window) this.send(sender, state);
  }

  private startTicker(state: RunState): NodeJS.Timeout {
    let turn = 0;
    const { ratePerSec } = state.command;
    return setInterval(() => {
      const due = Math.floor((ratePerSec * (now() - state.start)) / 1000);
      while (state.sent + state.skipped < due && state.sending) {
        const dueAt = state.start + ((state.sent + state.skipped + 1) * 1000) / ratePerSec;
        const sender = this.senders[turn++ % this.senders.length];
        if (sender.outstanding >= FIXED_MODE_MAX_OUTSTANDING) state.skipped += 1;
        else this.send(sender, state, dueAt);
      }
    }, TICK_MS);
  }

  private resultOf(state: RunState, drained: boolean): RunResult {
    const disconnects = this.disconnects - state.disconnectsAtStart;
    this.disconnectsCounted = this.disconnects;
    let lost = 0;
    let tailLost = 0;
    let duplicates = 0;
    let unexpected = Math.max(0, state.deliveries - state.expectedDeliveries);
    for (const { tracker } of this.receivers) {
      lost += tracker.lost(this.expected);
      tailLost += tracker.missingAtTail(this.expected);
      duplicates += tracker.duplicates;
      unexpected += tracker.unexpected;
    }
    return {
      mode: state.command.mode,
      sent: state.sent,
      sentUnacked: state.sentUnacked,
      acked: state.acked,
      ackErrors: state.ackErrors,
      skipped: state.skipped,
      deliveries: state.deliveries,
      expectedDeliveries: state.expectedDeliveries,
      late: state.late,
      unexpected,
      lost,
      tailLost,
      duplicates,
      disconnects,
      drained,
      sendMs: state.lastSendAt - state.start,
      sendWindowMs: state.sendWindowMs,
      sendCpuMs: state.sendCpuMs,
      activeMs: state.lastEventAt - state.start,
      latencyMs: state.latency.summary(),
      ackMs: state.ack.summary(),
      firstError: state.firstError ?? (disconnects > 0 ? this.firstDisconnect : undefined),
    };
  }
}
