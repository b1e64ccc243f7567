import { getEventListeners } from 'node:events';
import { ChatError } from './errors';
import { RestClient } from './rest';

/** A fetch that answers every request with this status, body and content type. */
function answering(status: number, body: string, type = 'text/html') {
  return () => Promise.resolve(new Response(body, { status, headers: { 'Content-Type': type } }));
}

const client = (fetch: ReturnType<typeof answering>) =>
  new RestClient({ baseUrl: 'http://service', token: () => 't', fetch });

async function failure(request: Promise<unknown>): Promise<ChatError> {
  try {
    await request;
  } catch (error) {
    if (error instanceof ChatError) return error;
    throw error;
  }
  throw new Error('resolved');
}

describe('RestClient answers that are not the service’s own', () => {
  it.each([
    [502, 'UNAVAILABLE'],
    [503, 'UNAVAILABLE'],
    [504, 'UNAVAILABLE'],
    [429, 'RATE_LIMITED'],
    [413, 'PAYLOAD_TOO_LARGE'],
    [404, 'NOT_FOUND'],
    [500, 'INTERNAL'],
  ])('reads a proxy’s %i page by its status: %s', async (status, code) => {
    const error = await failure(client(answering(status, '<html>bad gateway</html>')).me());
    expect(error.code).toBe(code);
    expect(error.status).toBe(status);
    expect(error.fromService).toBe(false);
  });

  it('fails as a ChatError when its token provider throws', async () => {
    const rest = new RestClient({
      baseUrl: 'http://service',
      token: () => Promise.reject(new Error('refresh failed')),
      fetch: answering(200, '{}', 'application/json'),
    });
    const error = await failure(rest.me());
    expect(error.body).toEqual({
      code: 'UNAVAILABLE',
      message: 'No token: refresh failed',
      details: [],
    });
  });

  it('fails with the service’s own refusal when its token provider’s refresh was refused', async () => {
    const refused = { code: 'UNAUTHORIZED' as const, message: 'Session ended', details: [] };
    const rest = new RestClient({
      baseUrl: 'http://service',
      token: () => Promise.reject(new ChatError(refused, 401)),
      fetch: answering(200, '{}', 'application/json'),
    });
    const error = await failure(rest.me());
    expect({ body: error.body, status: error.status }).toEqual({ body: refused, status: 401 });
  });

  it('asks its token provider once for requests made together, and again for later ones', async () => {
    let asked = 0;
    let answer!: (token: string) => void;
    const seen: Array<string | null> = [];
    const rest = new RestClient({
      baseUrl: 'http://service',
      token: () => {
        asked += 1;
        return new Promise<string>((resolve) => (answer = resolve));
      },
      fetch: (_url, init) => {
        seen.push(new Headers(init?.headers).get('Authorization'));
        return answering(200, '{"items":[],"nextCursor":null}', 'application/json')();
      },
    });
    const fills = Array.from({ length: 30 }, (_, i) => rest.history(`room-${i}`, { since: 0 }));
    await Promise.resolve();
    answer('fresh');
    await Promise.all(fills);
    expect({ asked, seen: new Set(seen) }).toEqual({ asked: 1, seen: new Set(['Bearer fresh']) });

    const later = rest.me();
    await Promise.resolve();
    answer('later');
    await later;
    expect(asked).toBe(2);
  });

  it('keeps the contract’s error when the service wrote one', async () => {
    const body = JSON.stringify({ code: 'CONFLICT', message: 'taken', details: [] });
    const error = await failure(client(answering(409, body, 'application/json')).me());
    expect(error.body).toEqual({ code: 'CONFLICT', message: 'taken', details: [] });
    expect(error.fromService).toBe(true);
  });

  it('refuses a 200 that is not JSON (a portal’s page) as UNAVAILABLE', async () => {
    const error = await failure(client(answering(200, '<html>log in to the wifi</html>')).me());
    expect(error.code).toBe('UNAVAILABLE');
  });

  it('refuses an empty 200 (a proxy’s) as UNAVAILABLE, not as the answer', async () => {
    const error = await failure(client(answering(200, '')).listRooms());
    expect(error.code).toBe('UNAVAILABLE');
  });

  it('turns a body cut off mid-read into UNAVAILABLE', async () => {
    const broken = () =>
      Promise.resolve({
        ok: true,
        status: 200,
        text: () => Promise.reject(new TypeError('terminated')),
      } as Response);
    const error = await failure(client(broken).me());
    expect(error.code).toBe('UNAVAILABLE');
  });
});

describe('RestClient requests that hang', () => {
  /** A fetch that never answers, but gives up when its request is aborted. */
  const hanging = (signals: AbortSignal[]) => (_url: string, init: RequestInit) =>
    new Promise<Response>((_, reject) => {
      signals.push(init.signal!);
      init.signal!.addEventListener('abort', () => reject(new Error('aborted')));
    });

  it('fail with UNAVAILABLE after the time limit, and abort the request', async () => {
    const signals: AbortSignal[] = [];
    const rest = new RestClient({
      baseUrl: 'http://service',
      token: () => 't',
      fetch: hanging(signals),
      timeoutMs: 20,
    });
    const error = await failure(rest.me());
    expect(error.code).toBe('UNAVAILABLE');
    expect(signals.map((signal) => signal.aborted)).toEqual([true]);
  });

  it('abort the request, and leave no timer, when their caller stops waiting', async () => {
    jest.useFakeTimers();
    try {
      const signals: AbortSignal[] = [];
      const rest = new RestClient({
        baseUrl: 'http://service',
        token: () => 't',
        fetch: hanging(signals),
      });
      const caller = new AbortController();
      const history = rest.history('room', {}, { signal: caller.signal });
      const failed = history.catch((error: Error) => error);
      await jest.advanceTimersByTimeAsync(0);
      expect(jest.getTimerCount()).toBe(1);
      caller.abort();
      await failed;
      expect(signals.map((signal) => signal.aborted)).toEqual([true]);
      expect(jest.getTimerCount()).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });

  it('leave nothing on a long-lived caller signal once answered', async () => {
    const rest = new RestClient({
      baseUrl: 'http://service',
      token: () => 't',
      fetch: answering(200, '{"items":[],"nextCursor":null}', 'application/json'),
    });
    const feedClosing = new AbortController();
    for (let fill = 0; fill < 20; fill += 1)
      await rest.history('room', {}, { signal: feedClosing.signal });
    await failure(
      client(answering(503, 'busy')).history('room', {}, { signal: feedClosing.signal }),
    );
    expect(getEventListeners(feedClosing.signal, 'abort')).toHaveLength(0);
  });

  it('give an answer under way the longer limit for its body', async () => {
    let finishBody!: () => void;
    const slowBody = () =>
      Promise.resolve({
        ok: true,
        status: 200,
        text: () => new Promise<string>((resolve) => (finishBody = () => resolve('{"id":"u1"}'))),
      } as Response);
    const rest = new RestClient({
      baseUrl: 'http://service',
      fetch: slowBody,
      timeoutMs: 20,
      bodyTimeoutMs: 1_000,
    });
    const me = rest.me();
    await new Promise((resolve) => setTimeout(resolve, 60));
    finishBody();
    await expect(me).resolves.toEqual({ id: 'u1' });

    const stalled = new RestClient({
      baseUrl: 'http://service',
      fetch: slowBody,
      timeoutMs: 1_000,
      bodyTimeoutMs: 20,
    });
    expect((await failure(stalled.me())).code).toBe('UNAVAILABLE');
  });

  it('count a token provider that hangs against the same limit', async () => {
    const rest = new RestClient({
      baseUrl: 'http://service',
      token: () => new Promise<string>(() => undefined),
      fetch: answering(200, '{}', 'application/json'),
      timeoutMs: 20,
    });
    expect((await failure(rest.me())).code).toBe('UNAVAILABLE');
  });

  it('refresh a token given to it without asking the provider, which may call it itself', async () => {
    let stored = 'old';
    const sent: Array<string | null> = [];
    const rest: RestClient = new RestClient({
      baseUrl: 'http://service',
      token: async () => {
        if (stored === 'old') stored = (await rest.refresh(stored)).accessToken;
        return stored;
      },
      fetch: (_url, init) => {
        sent.push(new Headers(init?.headers).get('Authorization'));
        const body = { accessToken: 'new', tokenType: 'Bearer', expiresIn: 3600 };
        return answering(200, JSON.stringify(body), 'application/json')();
      },
      timeoutMs: 1_000,
    });
    await rest.me();
    expect(sent).toEqual(['Bearer old', 'Bearer new']);
  });

  it('ask a token provider that hung once again for the next request', async () => {
    let asked = 0;
    const rest = new RestClient({
      baseUrl: 'http://service',
      token: () => {
        asked += 1;
        return asked === 1 ? new Promise<string>(() => undefined) : Promise.resolve('t');
      },
      fetch: answering(200, '{}', 'application/json'),
      timeoutMs: 20,
    });
    expect((await failure(rest.me())).code).toBe('UNAVAILABLE');
    await expect(rest.me()).resolves.toEqual({});
    expect(asked).toBe(2);
  });
});

describe('RestClient URLs', () => {
  it('do not double the slash of a base URL that ends in one', async () => {
    const urls: string[] = [];
    const rest = new RestClient({
      baseUrl: 'http://service/',
      fetch: (url) => {
        urls.push(url);
        return answering(200, '{}', 'application/json')();
      },
    });
    await rest.me();
    expect(urls).toEqual(['http://service/api/auth/me']);
  });
});
