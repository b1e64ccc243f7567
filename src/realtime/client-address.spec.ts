import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import request from 'supertest';
import type { TrustProxy } from '@app/config/trust-proxy';
import { clientAddress, trustRule } from './client-address';

/**
 * An Express app given `trust proxy` as Express itself compiles it, answering
 * its own `req.ip` and what the upgrade paths would compute for the same request.
 */
function addressesSeenBy(trustProxy: TrustProxy): express.Express {
  const app = express();
  app.set('trust proxy', trustProxy);
  const rule = trustRule(trustProxy);
  app.get('/', (req, res) => {
    res.json({ express: req.ip, upgrade: clientAddress(req, rule) });
  });
  return app;
}

const FORWARDED_FOR = [
  undefined,
  '203.0.113.7',
  '10.9.9.1, 203.0.113.7',
  '10.9.9.1, 203.0.113.7, 127.0.0.1',
  '203.0.113.7, 10.0.0.2, 192.168.1.3',
  'garbage, 203.0.113.7',
];

describe.each<[string, TrustProxy]>([
  ['no proxy', 0],
  ['one hop', 1],
  ['two hops', 2],
  ['loopback', ['loopback']],
  ['loopback and private networks', ['loopback', 'uniquelocal']],
  ['a subnet and an address', ['127.0.0.0/8', '10.0.0.2']],
])('clientAddress with %s trusted', (_name, trustProxy) => {
  let server: Server;
  let url: string;

  beforeAll(async () => {
    server = addressesSeenBy(trustProxy).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  it.each(FORWARDED_FOR)('agrees with Express on X-Forwarded-For %j', async (forwardedFor) => {
    const call = request(url).get('/');
    const { body } = await (forwardedFor === undefined
      ? call
      : call.set('X-Forwarded-For', forwardedFor));
    expect(body.upgrade).toBe(body.express);
  });
});

describe('clientAddress with one hop trusted', () => {
  it("takes the nearest proxy's word, not what the client wrote before it", async () => {
    const app = addressesSeenBy(1);
    const { body } = await request(app).get('/').set('X-Forwarded-For', '10.9.9.1, 203.0.113.7');
    expect(body).toEqual({ express: '203.0.113.7', upgrade: '203.0.113.7' });
  });
});
