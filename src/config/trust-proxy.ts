import proxyAddr from 'proxy-addr';

/**
 * Whose word to take on the client's address, as Express's `trust proxy`
 * takes it: the number of proxies in front of the service (0: none, the
 * socket's peer is the client), or the addresses and subnets of trusted ones.
 */
export type TrustProxy = number | string[];

const HOP_COUNT = /^\d+$/;

const TRUST_EVERY_HOP = new Set(['true', 'yes']);

/**
 * More proxies than any real chain (CDN, load balancer, nginx) has: a count
 * past the proxies really there trusts hops clients write themselves, and a
 * large one is the same as trusting every hop.
 */
const MAX_HOPS = 5;

const tooManyHops = (setting: string) =>
  `TRUST_PROXY=${setting} trusts more hops of X-Forwarded-For than ${MAX_HOPS}: past the ` +
  'proxies really in front, a client could pick its own address by sending one; give the ' +
  'number of proxies (1 behind one proxy such as nginx) or their addresses';

const trustsEveryHop = (setting: string) =>
  `TRUST_PROXY=${setting} would trust every hop of X-Forwarded-For, so a client could pick its ` +
  'own address by sending one: give the hop count instead (1 behind one proxy such as nginx)';

const ACCEPTED_FORMS =
  'TRUST_PROXY must be false, a hop count (1 behind one proxy) or a comma-separated list of ' +
  'trusted proxy addresses, subnets (10.0.0.0/8), loopback, linklocal or uniquelocal';

const tooWide = (setting: string, entry: string) =>
  `TRUST_PROXY=${setting}: ${entry} is wider than any private network (/8 for IPv4, /7 for ` +
  'IPv6), so it would trust X-Forwarded-For hops that clients write themselves: name the ' +
  "proxies' own subnets, or give the hop count (1 behind one proxy such as nginx)";

/**
 * Whether a trusted entry spans more than a /8 of IPv4 or a /7 of IPv6,
 * asked of proxy-addr itself so that every notation it reads (masks,
 * IPv4-mapped IPv6) counts: a subnet that wide holds two addresses that
 * differ in the last bit of a /7 (IPv4) or /6 (IPv6) prefix.
 */
function isWiderThanPrivateNetworks(entry: string): boolean {
  const trusts = proxyAddr.compile(entry);
  const firstBytes = Array.from({ length: 256 }, (_, byte) => byte);
  const ipv4 = (byte: number) => `${byte}.0.0.1`;
  const ipv6 = (byte: number) => `${byte.toString(16).padStart(2, '0')}00::1`;
  return firstBytes.some(
    (byte) =>
      (trusts(ipv4(byte), 0) && trusts(ipv4(byte ^ 0b1), 0)) ||
      (trusts(ipv6(byte), 0) && trusts(ipv6(byte ^ 0b10), 0)),
  );
}

/** A subnet whose mask is empty (/0, or /0.0.0.0), which proxy-addr would call a bad range. */
const EVERY_ADDRESS = /\/0(\.0\.0\.0)?$/;

/** The addresses as Express splits them, refused where Express would refuse them. */
function trustedAddresses(setting: string): string[] {
  const addresses = setting.split(',').map((address) => address.trim());
  const everyAddress = addresses.find((address) => EVERY_ADDRESS.test(address));
  if (everyAddress !== undefined) throw new Error(tooWide(setting, everyAddress));
  try {
    proxyAddr.compile(addresses);
  } catch (error) {
    throw new Error(`${ACCEPTED_FORMS}; ${(error as Error).message}`);
  }
  const wide = addresses.find(isWiderThanPrivateNetworks);
  if (wide !== undefined) throw new Error(tooWide(setting, wide));
  return addresses;
}

/** Reads TRUST_PROXY; throws a message fit for the operator on anything else. */
export function parseTrustProxy(value: string): TrustProxy {
  const setting = value.trim();
  const word = setting.toLowerCase();
  if (word === 'false') return 0;
  if (TRUST_EVERY_HOP.has(word)) throw new Error(trustsEveryHop(setting));
  if (HOP_COUNT.test(setting)) {
    if (Number(setting) > MAX_HOPS) throw new Error(tooManyHops(setting));
    return Number(setting);
  }
  return trustedAddresses(setting);
}
