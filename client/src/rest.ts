import type { TokenProvider } from './connection-state';
import type { ErrorBody, MemberJson, MessageJson, RoomJson, UserSummaryJson } from './contract';
import type { AccessTokenJson, PageJson, UserJson } from '../../src/contract/models';
import { ChatError, clientError, isErrorBody } from './errors';
import { withTimeout } from './time-limit';
import { withoutTrailingSlashes } from './urls';

export type { AccessTokenJson, PageJson, UserJson } from '../../src/contract/models';

export interface Credentials {
  username: string;
  password: string;
}

export interface HistoryQuery {
  /** Ascending page of the messages after this seq. */
  since?: number;
  /** Descending page of the messages before this seq; the newest without either. */
  before?: number;
  /** At most 200; the server's default is 50. */
  limit?: number;
}

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface RestClientOptions {
  /** The service's origin, e.g. `http://127.0.0.1:3000`; `''` for the page's own origin. */
  baseUrl: string;
  token?: TokenProvider;
  fetch?: FetchLike;
  /** A request whose answer has not begun by then (its token included) fails with UNAVAILABLE (15 s). */
  timeoutMs?: number;
  /** An answer not read in full by then fails the same way (60 s: a history page can be megabytes). */
  bodyTimeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_BODY_TIMEOUT_MS = 60_000;

type Query = Record<string, string | number | undefined>;

interface RequestOptions {
  body?: object;
  query?: Query;
  anonymous?: boolean;
  /** Sent instead of the provider's: for a provider that itself refreshes through this client. */
  token?: string;
  /** Aborts the request and its timers: its caller has stopped waiting. */
  signal?: AbortSignal;
}

/** A typed wrapper of the REST routes the SDK and the page use; failures throw a `ChatError`. */
export class RestClient {
  private readonly fetchImpl: FetchLike;
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly bodyTimeoutMs: number;

  constructor(private readonly options: RestClientOptions) {
    this.fetchImpl = options.fetch ?? ((url, init) => fetch(url, init));
    // `http://host/` would make `//api/...` paths, which no route matches.
    this.baseUrl = withoutTrailingSlashes(options.baseUrl);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.bodyTimeoutMs = options.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS;
  }

  register(credentials: Credentials): Promise<UserJson> {
    return this.request('POST', '/auth/register', { body: credentials, anonymous: true });
  }

  login(credentials: Credentials): Promise<AccessTokenJson> {
    return this.request('POST', '/auth/login', { body: credentials, anonymous: true });
  }

  /**
   * A new token of the caller's session, for a token still valid; 401 once
   * the session is over. `token`, when given, is the one refreshed, and the
   * provider is not asked: a provider may then call this itself.
   */
  refresh(token?: string): Promise<AccessTokenJson> {
    return this.request('POST', '/auth/refresh', { token });
  }

  me(): Promise<UserJson> {
    return this.request('GET', '/auth/me');
  }

  listRooms(query: { limit?: number; cursor?: string } = {}): Promise<PageJson<RoomJson, string>> {
    return this.request('GET', '/rooms', { query });
  }

  /** The open account of that name (any case): how to learn the id of someone to add to a room. */
  findUser(username: string): Promise<UserSummaryJson> {
    return this.request('GET', '/users', { query: { username } });
  }

  createRoom(body: { name: string; isPrivate?: boolean }): Promise<RoomJson> {
    return this.request('POST', '/rooms', { body });
  }

  getRoom(roomId: string): Promise<RoomJson> {
    return this.request('GET', `/rooms/${encodeURIComponent(roomId)}`);
  }

  /** The room's members by id; a join's `members` are the first of them (see `membersTruncated`). */
  listMembers(
    roomId: string,
    query: { limit?: number; cursor?: string } = {},
  ): Promise<PageJson<MemberJson, string>> {
    return this.request('GET', `/rooms/${encodeURIComponent(roomId)}/members`, { query });
  }

  /** The owner adds anyone to a private room; a member of a public room, anyone to it. */
  addMember(roomId: string, userId: string): Promise<MemberJson> {
    return this.request('POST', `/rooms/${encodeURIComponent(roomId)}/members`, {
      body: { userId },
    });
  }

  /** `signal` aborts the request, for a caller that stops waiting (a feed closed). */
  history(
    roomId: string,
    query: HistoryQuery = {},
    { signal }: { signal?: AbortSignal } = {},
  ): Promise<PageJson<MessageJson, number>> {
    return this.request('GET', `/rooms/${encodeURIComponent(roomId)}/messages`, {
      query: { ...query },
      signal,
    });
  }

  postMessage(roomId: string, body: { text: string; clientMsgId?: string }): Promise<MessageJson> {
    return this.request('POST', `/rooms/${encodeURIComponent(roomId)}/messages`, { body });
  }

  /**
   * A request that hangs (a half-open connection after a network change, a
   * token refresh that never answers) would stall whoever waits on it, a
   * room's gap fill for one: it fails after `timeoutMs` instead (`bodyTimeoutMs`
   * once its answer has begun), and is aborted.
   */
  private async request<T>(
    method: 'GET' | 'POST',
    path: string,
    options: RequestOptions = {},
  ): Promise<T> {
    const abort = new AbortController();
    const forwardAbort = () => abort.abort();
    // A caller's signal outlives its requests (a room feed's, across every gap fill).
    options.signal?.addEventListener('abort', forwardAbort, { once: true });
    try {
      return await this.answerOf<T>(method, path, options, abort);
    } finally {
      options.signal?.removeEventListener('abort', forwardAbort);
    }
  }

  private async answerOf<T>(
    method: 'GET' | 'POST',
    path: string,
    options: RequestOptions,
    abort: AbortController,
  ): Promise<T> {
    const limit = <R>(work: Promise<R>, timeoutMs: number) =>
      withTimeout(
        work,
        timeoutMs,
        () => {
          abort.abort();
          return new ChatError(clientError('UNAVAILABLE', `No answer within ${timeoutMs} ms`));
        },
        options.signal,
      );
    const response = await limit(this.begin(method, path, options, abort.signal), this.timeoutMs);
    const payload = await limit(readJson(response), this.bodyTimeoutMs);
    if (!response.ok)
      throw new ChatError(
        errorBodyOf(payload, response.status),
        response.status,
        isErrorBody(payload),
      );
    // Every request of the service is answered with a JSON body: an empty one came from elsewhere.
    if (payload === NOT_JSON || payload === undefined)
      throw new ChatError(clientError('UNAVAILABLE', 'Not a JSON answer'));
    return payload as T;
  }

  /** The request sent, up to the answer's status and headers. */
  private async begin(
    method: 'GET' | 'POST',
    path: string,
    options: RequestOptions,
    signal: AbortSignal,
  ): Promise<Response> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (options.body) headers['Content-Type'] = 'application/json';
    if (options.token !== undefined) headers.Authorization = `Bearer ${options.token}`;
    else if (!options.anonymous && this.options.token) {
      headers.Authorization = `Bearer ${await this.tokenFrom(this.options.token)}`;
    }
    return this.send(this.url(path, options.query), {
      method,
      headers,
      body: options.body ? JSON.stringify(options.body) : undefined,
      signal,
    });
  }

  /** The provider's answer that requests made while it is asked share. */
  private tokenAsked?: Promise<string>;

  /**
   * A token provider that fails (a refresh that could not run) fails the
   * request as a ChatError. Requests made together (a reconnect fills every
   * room's gap at once) ask the provider once: a provider that refreshes
   * over the network would otherwise run one refresh per room, and refreshes
   * that rotate a token could undo one another. A provider that does not
   * answer within a request's time limit is asked again by the next request.
   */
  private async tokenFrom(provider: TokenProvider): Promise<string> {
    try {
      return await (this.tokenAsked ??= withTimeout(
        Promise.resolve().then(provider),
        this.timeoutMs,
      ).finally(() => {
        this.tokenAsked = undefined;
      }));
    } catch (error) {
      // A refresh the service refused (an ended session: UNAUTHORIZED) is told as it was.
      if (error instanceof ChatError) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw new ChatError(clientError('UNAVAILABLE', `No token: ${reason}`));
    }
  }

  private async send(url: string, init: RequestInit): Promise<Response> {
    try {
      return await this.fetchImpl(url, init);
    } catch (error) {
      const reason = describeNetworkError(error);
      throw new ChatError(clientError('UNAVAILABLE', `Network error: ${reason}`));
    }
  }

  private url(path: string, query: Query = {}): string {
    const search = Object.entries(query)
      .filter((entry): entry is [string, string | number] => entry[1] !== undefined)
      .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`)
      .join('&');
    return `${this.baseUrl}/api${path}${search ? `?${search}` : ''}`;
  }
}

/** A body that is there but is no JSON: a proxy's or a portal's page, not the service's answer. */
const NOT_JSON = Symbol('not JSON');

async function readJson(response: Response): Promise<unknown> {
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    throw new ChatError(
      clientError('UNAVAILABLE', `Answer cut off: ${describeNetworkError(error)}`),
    );
  }
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return NOT_JSON;
  }
}

/** What a status means when the body is not the contract's (a proxy answered). */
const CODE_BY_STATUS: Readonly<Record<number, ErrorBody['code']>> = {
  400: 'VALIDATION_FAILED',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  429: 'RATE_LIMITED',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'UNAVAILABLE',
};

function errorBodyOf(payload: unknown, status: number): ErrorBody {
  if (isErrorBody(payload)) return payload;
  return clientError(CODE_BY_STATUS[status] ?? 'INTERNAL', `HTTP ${status}`);
}

/** fetch hides the reason (refused, reset, DNS) in `cause`; errors may come from another realm. */
function describeNetworkError(error: unknown): string {
  const { message, cause } = (error ?? {}) as { message?: unknown; cause?: { message?: unknown } };
  const text = typeof message === 'string' ? message : String(error);
  return typeof cause?.message === 'string' ? `${text} (${cause.message})` : text;
}
