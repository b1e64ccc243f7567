import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { HttpConnections } from './http-connections';

const BIG = Buffer.alloc(32 * 1024 * 1024, 'x');

describe('HttpConnections', () => {
  let server: Server;
  let connections: HttpConnections;
  const clients: Socket[] = [];
  /** The server's ends: a client that reads nothing would not see its own close. */
  const accepted: Socket[] = [];

  beforeEach(async () => {
    connections = new HttpConnections();
    server = createServer((request, response) => {
      if (request.url === '/big') response.end(BIG);
      else if (request.url === '/small') response.end('ok');
      // '/held': never answered.
    });
    server.on('connection', (socket: Socket) => accepted.push(socket));
    connections.watch(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterEach(async () => {
    clients.splice(0).forEach((client) => client.destroy());
    accepted.length = 0;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** A client that writes `text` and reads nothing unless told to. */
  const client = async (text: string, { reading = false } = {}) => {
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    clients.push(socket);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    if (reading) socket.on('data', () => undefined);
    else socket.pause();
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(text);
    const serverEnd = () => accepted.find((each) => each.remotePort === socket.localPort);
    return { socket, closed, isClosed: () => serverEnd()?.destroyed ?? true };
  };
  const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

  it('closes idle connections, but not one writing an ended answer out, nor one whose request is arriving', async () => {
    const idle = await client('GET /small HTTP/1.1\r\nHost: x\r\n\r\n', { reading: true });
    const flushing = await client('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
    const arriving = await client('GET /small HTTP/1.1\r\nHost: x\r\n', { reading: true });
    await settle();

    connections.closeIdle();

    await idle.closed;
    await settle();
    expect([flushing.isClosed(), arriving.isClosed()]).toEqual([false, false]);
    expect(connections.unanswered()).toBe(0);
  });

  it('keeps an answer being written out when the server closes, and closes idle connections', async () => {
    const idle = await client('GET /small HTTP/1.1\r\nHost: x\r\n\r\n', { reading: true });
    const flushing = await client('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
    await settle();
    expect(connections.writingOut()).toBe(1);

    server.close();

    await idle.closed;
    await settle();
    expect(flushing.isClosed()).toBe(false);
  });

  it('counts a pipelined request still unanswered behind one answered after it', async () => {
    await client('GET /held HTTP/1.1\r\nHost: x\r\n\r\nGET /small HTTP/1.1\r\nHost: x\r\n\r\n', {
      reading: true,
    });
    await settle();
    expect(connections.unanswered()).toBe(1);
  });

  it('cuts every connection, counting those with an answer not done', async () => {
    const held = await client('GET /held HTTP/1.1\r\nHost: x\r\n\r\n', { reading: true });
    await client('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
    const arriving = await client('GET /small HTTP/1.1\r\nHost: x\r\n', { reading: true });
    await settle();
    expect([connections.unanswered(), connections.writingOut()]).toEqual([1, 1]);

    expect(connections.cutAll()).toBe(2);

    await Promise.all([held.closed, arriving.closed]);
    await settle();
    expect([connections.unanswered(), connections.writingOut()]).toEqual([0, 0]);
  });
});
