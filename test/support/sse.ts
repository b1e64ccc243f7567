/** One event as a strict reader of the text/event-stream format sees it. */
export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

export interface SseConnection {
  status: number;
  headers: Headers;
  /** Events and comments (as `{ event: ':comment', data: text }`) received so far. */
  received: SseEvent[];
  /** JSON body of a non-stream (error) response. */
  body?: unknown;
  closed: Promise<void>;
  next(matches: (event: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  close(): void;
}

function parseBlock(block: string): SseEvent | undefined {
  const event: SseEvent = { event: 'message', data: '' };
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) return { event: ':comment', data: line.slice(1) };
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'id') event.id = value;
    else if (field === 'event') event.event = value;
    else if (field === 'data') data.push(value);
  }
  // As EventSource does: a block without data (a lone retry:) dispatches nothing.
  if (data.length === 0) return undefined;
  event.data = data.join('\n');
  return event;
}

/** A strict event-stream reader over fetch, so that tests see the exact wire format. */
export async function openSse(
  url: string,
  headers: Record<string, string> = {},
): Promise<SseConnection> {
  const controller = new AbortController();
  const response = await fetch(url, { headers, signal: controller.signal });
  const received: SseEvent[] = [];
  const connection: SseConnection = {
    status: response.status,
    headers: response.headers,
    received,
    closed: Promise.resolve(),
    next: async (matches, timeoutMs = 5_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const index = received.findIndex(matches);
        if (index !== -1) return received.splice(index, 1)[0];
        if (Date.now() > deadline)
          throw new Error(`No matching event within ${timeoutMs} ms: ${JSON.stringify(received)}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    close: () => controller.abort(),
  };
  if (!response.headers.get('content-type')?.startsWith('text/event-stream')) {
    connection.body = await response.json();
    return connection;
  }
  connection.closed = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end = buffer.indexOf('\n\n');
        while (end !== -1) {
          const event = parseBlock(buffer.slice(0, end));
          if (event) received.push(event);
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf('\n\n');
        }
      }
    } catch {
      // Aborted by the test.
    }
  })();
  return connection;
}
