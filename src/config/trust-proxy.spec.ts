import { loadConfig } from './app-config';
import { InvalidConfigurationError } from './env.validation';
import { parseTrustProxy } from './trust-proxy';

describe('parseTrustProxy', () => {
  it.each([
    ['false', 0],
    ['FALSE', 0],
    ['0', 0],
    ['1', 1],
    [' 2 ', 2],
    ['loopback', ['loopback']],
    ['loopback, 10.0.0.0/8', ['loopback', '10.0.0.0/8']],
    [
      'linklocal,uniquelocal, ::1, fd00::/8, 192.168.0.0/255.255.0.0',
      ['linklocal', 'uniquelocal', '::1', 'fd00::/8', '192.168.0.0/255.255.0.0'],
    ],
  ])('reads %j', (value, expected) => expect(parseTrustProxy(value)).toEqual(expected));

  it('reads up to five hops and refuses more, which would trust hops clients write', () => {
    expect(parseTrustProxy('5')).toBe(5);
    expect(() => parseTrustProxy('6')).toThrow(/trusts more hops of X-Forwarded-For than 5/);
    expect(() => parseTrustProxy('4294967296')).toThrow(/more hops/);
  });

  it.each(['true', 'True', ' yes '])('refuses %j, which would trust every hop', (value) =>
    expect(() => parseTrustProxy(value)).toThrow(/every hop.*hop count/s),
  );

  it.each([
    '0.0.0.0/0',
    '::/0',
    '10.0.0.0/0',
    'loopback, 0.0.0.0/0.0.0.0',
    '0.0.0.0/1, 128.0.0.0/1',
    '10.0.0.0/7',
    '10.0.0.0/254.0.0.0',
    '::ffff:0.0.0.0/96',
    'fc00::/6',
  ])(
    'refuses %j, wider than any private network, whose clients could pick their address',
    (value) =>
      expect(() => parseTrustProxy(value)).toThrow(/wider than any private network.*hop count/s),
  );

  it.each(['10.0.0.0/8', '10.0.0.0/255.0.0.0', 'fc00::/7', '::ffff:10.0.0.0/104', 'uniquelocal'])(
    'accepts %j, as wide as a private network',
    (value) => expect(parseTrustProxy(value)).toEqual([value]),
  );

  it.each(['nginx', 'no', '10.0.0.0/33', '-1', '1.5', ',', 'loopback, proxy'])(
    'refuses %j, naming the accepted forms',
    (value) => expect(() => parseTrustProxy(value)).toThrow(/TRUST_PROXY must be false, a hop/),
  );
});

describe('TRUST_PROXY in the configuration', () => {
  it('trusts no proxy by default', () => {
    expect(loadConfig({}).http.trustProxy).toBe(0);
  });

  it('passes a hop count or a list of addresses on', () => {
    expect(loadConfig({ TRUST_PROXY: '1' }).http.trustProxy).toBe(1);
    expect(loadConfig({ TRUST_PROXY: 'loopback,172.16.0.0/12' }).http.trustProxy).toEqual([
      'loopback',
      '172.16.0.0/12',
    ]);
  });

  it.each([
    ['true', /TRUST_PROXY: TRUST_PROXY=true would trust every hop/],
    ['0.0.0.0/0,::/0', /TRUST_PROXY: TRUST_PROXY=0.0.0.0\/0,::\/0: 0.0.0.0\/0 is wider/],
    ['10.0.0.0/8, ::/0', /::\/0 is wider than any private network/],
    ['nginx', /TRUST_PROXY: TRUST_PROXY must be false, a hop count.*nginx/],
  ])('stops start-up on %j with a message naming TRUST_PROXY', (value, message) => {
    const load = () => loadConfig({ TRUST_PROXY: value });
    expect(load).toThrow(InvalidConfigurationError);
    expect(load).toThrow(message);
  });
});
