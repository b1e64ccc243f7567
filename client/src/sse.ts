import { SseEvent } from '../../src/contract/events';
import { MAX_SEQ } from '../../src/contract/limits';
import { Backoff, type BackoffOptions } from './backoff';
import type { TokenProvider } from './connection-state';
import {
  ErrorCode,
  ServerEvent,
  type ErrorBody,
  type MessageJson,
  type NotificationJson,
  type RoomStreamConnected,
  type StreamConnected,
} from './contract';
import { ChatError, clientError } from './errors';
import { DEFAULT_TOKEN_TIMEOUT_MS } from './reconnector';
import { RestClient, type FetchLike } from './rest';
import { withTimeout } from './time-limit';
import { withoutTrailingSlashes } from './urls';

type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'];

export interface SseMessageEvent {
  data: string;
  lastEventId: string;
}

/** What the helpers need of an EventSource: the browser's and the `eventsource` package's both qualify. */
export interface EventSourceLike {
  readonly readyState: number;
  close(): void;
  onopen: Handler<unknown> | null;
  onerror: Handler<{ code?: number }> | null;
  addEventListener(type: string, listener: Handler<SseMessageEvent>): void;
}

export type EventSourceConstructor = new (url: string) => EventSourceLike;

const CLOSED = 2;
const HTTP_UNAUTHORIZED = 401;
/** Refusals no retry changes: the request is invalid, the room is gone or not the caller's to see. */
const FINAL_REFUSALS: Readonly<Record<number, ErrorBody['code']>> = {
  400: ErrorCode.ValidationFailed,
  403: ErrorCode.Forbidden,
  404: ErrorCode.NotFound,
};
/** Why a server ends a stream that no new one would mend. */
const FINAL_ENDS: ReadonlySet<ErrorBody['code']> = new Set(Object.values(FINAL_REFUSALS));
/** The first event of every stream (not a Socket.IO event, so not in ServerEvent). */
export const SSE_CONNECTED_EVENT = SseEvent.Connected;

export interface SseOptions {
  /** The service's origin, e.g. `http://127.0.0.1:3000`; `''` for the page's own. */
  url: string;
  /** Read for every new stream; a token in the URL is fixed for that stream's native retries. */
  token: TokenProvider;
  /** A token provider that has not answered by then fails the attempt, tried again with backoff (15 s). */
  tokenTimeoutMs?: number;
  EventSource?: EventSourceConstructor;
  /** Delays between re-opened streams once the EventSource itself has given up. */
  backoff?: Partial<BackoffOptions>;
  /**
   * The stream stopped for good: an invalid request (a bad `since`), a token
   * refused twice, a room not found or no longer the user's, or retries
   * exhausted.
   */
  onFatal?(error: ErrorBody): void;
  /**
   * The server (or its proxy) refused the stream for now, as a stream that
   * says why and when to come back (`RATE_LIMITED`, `UNAVAILABLE`): the
   * EventSource comes back by itself after the wait it was given.
   */
  onRefused?(error: ErrorBody): void;
  /** For the REST reads the helpers make; the global `fetch` by default. */
  fetch?: FetchLike;
}

export interface SseSubscription {
  close(): void;
}

export interface RoomEventsOptions extends SseOptions {
  roomId: string;
  /** Replay every message after this seq first; without it, the stream starts at the room's end. */
  since?: number;
  onMessage(message: MessageJson): void;
}

export interface PersonalEventsOptions extends SseOptions {
  onConnected?(event: StreamConnected): void;
  onNotification(notification: NotificationJson): void;
}

/**
 * A room's live feed. A dropped connection resumes natively (Last-Event-ID);
 * when the EventSource gives up (an expired token answers 401), a new one is
 * opened with a fresh token and `since` the last seq received, or the
 * position the last stream started from when none was received.
 */
export function subscribeRoomEvents(options: RoomEventsOptions): SseSubscription {
  const { since } = options;
  // Refused here: a browser's EventSource does not say why a stream was refused, and the probe
  // (the room itself) would be granted.
  if (since !== undefined && !(Number.isInteger(since) && since >= 0 && since <= MAX_SEQ))
    return refusedAtOnce(options, `since must be a whole number from 0 to ${MAX_SEQ}`);
  let lastSeq = since;
  /** The stream's first message may reset the position: it came before `connected`. */
  let unplaced = false;
  return openResilientStream(options, {
    path: `/api/rooms/${encodeURIComponent(options.roomId)}/events`,
    query: () => ({ since: lastSeq }),
    probe: (rest) => rest.getRoom(options.roomId),
    opened: () => (unplaced = true),
    listeners: {
      // Every stream names where it starts: the seq asked for, or the room's end when that is
      // behind it (a restored database), and then the messages after it follow.
      [SSE_CONNECTED_EVENT]: (event) => {
        lastSeq = (JSON.parse(event.data) as RoomStreamConnected).since;
        unplaced = false;
      },
      [ServerEvent.Message]: (event) => {
        const message = JSON.parse(event.data) as MessageJson;
        // A server from before `connected` starts a stream the same way, unnamed: its first
        // message tells where.
        const resets = unplaced;
        unplaced = false;
        if (!resets && lastSeq !== undefined && message.seq <= lastSeq) return;
        lastSeq = message.seq;
        options.onMessage(message);
      },
    },
  });
}

/** A subscription that never opens: `onFatal` hears why, unless closed first. */
function refusedAtOnce(options: SseOptions, message: string): SseSubscription {
  let closed = false;
  queueMicrotask(() => {
    if (!closed) options.onFatal?.(clientError(ErrorCode.ValidationFailed, message));
  });
  return { close: () => (closed = true) };
}

function restFor(options: SseOptions, token: string): RestClient {
  return new RestClient({ baseUrl: options.url, token: () => token, fetch: options.fetch });
}

/** The caller's personal stream: `connected`, then notifications (mentions, invitations). */
export function subscribePersonalEvents(options: PersonalEventsOptions): SseSubscription {
  return openResilientStream(options, {
    path: '/api/events',
    query: () => ({}),
    probe: (rest) => rest.me(),
    listeners: {
      [SSE_CONNECTED_EVENT]: (event) =>
        options.onConnected?.(JSON.parse(event.data) as StreamConnected),
      [ServerEvent.Notification]: (event) =>
        options.onNotification(JSON.parse(event.data) as NotificationJson),
    },
  });
}

interface StreamSpec {
  path: string;
  /**
   * A REST read that the same refusal would refuse: browsers' EventSource
   * does not tell why a stream was refused, so this is asked instead.
   */
  probe: (rest: RestClient) => Promise<unknown>;
  /** Query parameters of the next stream opened (the resume point). */
  query: () => { since?: number };
  /** Every time a stream opens, its native reconnections included. */
  opened?: () => void;
  listeners: Record<string, (event: SseMessageEvent) => void>;
}

function openResilientStream(
  options: SseOptions,
  { path, query, listeners, probe, opened: streamOpened }: StreamSpec,
): SseSubscription {
  const EventSourceImpl = options.EventSource ?? globalEventSource();
  const backoff = new Backoff(options.backoff);
  let source: EventSourceLike | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  let refusedInARow = 0;
  /** Aborted on close: a token provider still asked is waited for no more. */
  const closing = new AbortController();

  const open = async () => {
    const token = await withTimeout(
      Promise.resolve().then(() => options.token()),
      options.tokenTimeoutMs ?? DEFAULT_TOKEN_TIMEOUT_MS,
      undefined,
      closing.signal,
    );
    const { since } = query();
    if (closed) return;
    const params = new URLSearchParams({ token });
    if (since !== undefined) params.set('since', String(since));
    const url = `${withoutTrailingSlashes(options.url)}${path}?${params.toString()}`;
    const current = new EventSourceImpl(url);
    source = current;
    current.onopen = () => {
      refusedInARow = 0;
      backoff.connected();
      streamOpened?.();
    };
    current.onerror = (event) => {
      if (current.readyState !== CLOSED || source !== current) return;
      if (event.code !== undefined) return gaveUp(event.code);
      // A browser's EventSource does not say why, also when a reconnection of its own was
      // refused (an open stream that fails is otherwise retried by the EventSource).
      probe(restFor(options, token)).then(() => gaveUp(undefined), failedToOpen);
    };
    for (const [type, listener] of Object.entries(listeners))
      current.addEventListener(type, listener);
    current.addEventListener(SseEvent.Refused, (event) =>
      options.onRefused?.(JSON.parse(event.data) as ErrorBody),
    );
    current.addEventListener(SseEvent.Closed, (event) => {
      if (source === current) endedByServer(current, JSON.parse(event.data) as ErrorBody);
    });
  };

  /**
   * The server said why it ended the stream. An expired token opens another
   * stream at once, with a fresh one (a deleted account is refused there, the
   * second refusal in a row); a private room no longer the user's
   * (`NOT_FOUND`) stops for good; a node that shuts down is left to the
   * EventSource, which resumes by itself. Anything else (a history read that
   * failed, `INTERNAL`) is tried again, with backoff, from the last seq.
   */
  const endedByServer = (current: EventSourceLike, reason: ErrorBody) => {
    if (reason.code === ErrorCode.Unavailable) return;
    current.close();
    if (reason.code === ErrorCode.Unauthorized) return gaveUp(HTTP_UNAUTHORIZED);
    if (FINAL_ENDS.has(reason.code)) return fatal(reason);
    gaveUp(undefined);
  };

  const gaveUp = (status: number | undefined) => {
    if (closed) return;
    backoff.disconnected();
    const final = status === undefined ? undefined : FINAL_REFUSALS[status];
    if (final) return fatal(clientError(final, `Stream refused with HTTP ${status}`));
    refusedInARow = status === HTTP_UNAUTHORIZED ? refusedInARow + 1 : 0;
    if (refusedInARow >= 2)
      return fatal(clientError(ErrorCode.Unauthorized, 'Token refused twice'));
    const delay = refusedInARow === 1 ? 0 : backoff.next();
    if (delay === null) return fatal(clientError(ErrorCode.Unavailable, 'Retries exhausted'));
    timer = setTimeout(() => void open().catch(failedToOpen), delay);
  };

  const fatal = (error: ErrorBody) => {
    closed = true;
    options.onFatal?.(error);
  };

  /** A refused REST read counts like a refused stream. */
  const failedToOpen = (error: unknown) =>
    gaveUp(error instanceof ChatError ? error.status : undefined);

  void open().catch(failedToOpen);
  return {
    close: () => {
      closed = true;
      closing.abort();
      clearTimeout(timer);
      source?.close();
    },
  };
}

function globalEventSource(): EventSourceConstructor {
  const candidate = (globalThis as { EventSource?: EventSourceConstructor }).EventSource;
  if (!candidate)
    throw new Error('No global EventSource: pass one, e.g. from the eventsource package');
  return candidate;
}
