import type { Summary } from './summary';

/** IPC between the orchestrator (`run.ts`) and the load generators (`load/*.ts`). */

/** The service speaks the contract (auth, acks with stored messages); a baseline is bare. */
export type Target = 'service' | 'baseline';

export interface MemberPlan {
  /** `http://127.0.0.1:<port>`: the node this member connects to. */
  url: string;
  /** Access token: the service's, or one the bench signed for the bare servers. */
  token: string;
  sender: boolean;
}

export interface RoomPlan {
  roomId: string;
  members: MemberPlan[];
}

export interface SetupCommand {
  type: 'setup';
  target: Target;
  rooms: RoomPlan[];
  textBytes: number;
  concurrency: number;
  timeoutMs: number;
}

export type RunMode = 'fixed' | 'max';

export interface RunCommand {
  type: 'run';
  mode: RunMode;
  /** Messages per second over all senders (fixed mode). */
  ratePerSec: number;
  /** Unsettled messages a sender may have in flight (max mode). */
  window: number;
  durationMs: number;
  drainMs: number;
}

/** Idle connections: open connections until `total` are open. */
export interface ConnectCommand {
  type: 'connect';
  target: Target;
  url: string;
  /** Access tokens, taken in turn. */
  credentials: string[];
  total: number;
  concurrency: number;
  timeoutMs: number;
}

export interface CheckCommand {
  type: 'check';
}

export interface CloseCommand {
  type: 'close';
}

export type LoaderCommand =
  SetupCommand | RunCommand | ConnectCommand | CheckCommand | CloseCommand;

export interface RunResult {
  mode: RunMode;
  sent: number;
  /** Of `sent`, those on a transport that acknowledges nothing (raw WebSocket). */
  sentUnacked: number;
  acked: number;
  ackErrors: number;
  /** Fixed-mode sends skipped because the sender had too many unsettled messages. */
  skipped: number;
  /** Messages of this run received, each once, by a receiver that follows its stream. */
  deliveries: number;
  expectedDeliveries: number;
  /**
   * Messages sent before this run (an undrained earlier run or warm-up)
   * received in it or after the previous run's result was read; not in
   * `deliveries`.
   */
  late: number;
  /**
   * Deliveries that no send explains: on a stream the receiver does not
   * follow (another room, its own broadcast echoed), or more than the acked
   * (over `/ws`: sent) messages make. Any makes the run unclean. Like
   * `duplicates`, `lost` and `ackErrors`, counted from the previous run's
   * result to this one's, read `QUIET_MS` (`load/engine.ts`) after the drain.
   */
  unexpected: number;
  /** Skipped in this run, plus `tailLost`. */
  lost: number;
  /** Never seen at the end of this run: counted again by the next run if still missing. */
  tailLost: number;
  duplicates: number;
  disconnects: number;
  drained: boolean;
  /** From the first send to the last send. */
  sendMs: number;
  /** From the start of the run to the end of its sending time (`durationMs`), drain excluded. */
  sendWindowMs: number;
  /** The load generator's own CPU time (`process.cpuUsage()`, all its threads) over `sendWindowMs`. */
  sendCpuMs: number;
  /** From the first send to the last delivery (or ack). */
  activeMs: number;
  /** Send to delivery, at receivers that do not send. */
  latencyMs: Summary;
  /** Send to ack, at senders. */
  ackMs: Summary;
  firstError?: string;
}

export interface ConnectResult {
  open: number;
  failed: number;
  dropped: number;
  connectMs: Summary;
  firstError?: string;
}

export type LoaderReply =
  | { type: 'ready'; connectMs: Summary; connections: number }
  | { type: 'result'; result: RunResult }
  | { type: 'connected'; result: ConnectResult }
  | { type: 'checked'; open: number; dropped: number }
  | { type: 'closed' }
  | { type: 'error'; message: string };
