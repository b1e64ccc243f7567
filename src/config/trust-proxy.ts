import proxyAddr from 'proxy-addr';

/**
 * Whose word to take on the client's address, as Express's `trust proxy`
 * takes it: the number of proxies in front of the service (0: none, the
 * socket's peer is the client), or the addresses and subnets of trusted ones.
 */
export type TrustProxy = number | string[];

const HOP_COUNT = /^\d+$/;

const TRUST_EVERY_HOP = new Set(['true', 'yes']);

const trustsEveryHop = (setting: string) =>
  `TRUST_PROXY=${setting} would trust every hop of X-Forwarded-For, so a client could pick its ` +
  'own address by sending one: give the hop count instead (1 behind one proxy such as nginx)';

const ACCEPTED_FORMS =
  'TRUST_PROXY must be false, a hop count (1 behind one proxy) or a comma-separated list of ' +
  'trusted proxy addresses, subnets (10.0.0.0/8), loopback, linklocal or uniquelocal';

/** A subnet whose mask is empty (/0, or /0.0.0.0): every address. */
const EVERY_ADDRESS = /\/0(\.0\.0\.0)?$/;

/** The addresses as Express splits them, refused where Express would refuse them. */
function trustedAddresses(setting: string): string[] {
  const addresses = setting.split(',').map((address) => address.trim());
  if (addresses.some((address) => EVERY_ADDRESS.test(address)))
    throw new Error(trustsEveryHop(setting));
  try {
    proxyAddr.compile(addresses);
  } catch (error) {
    throw new Error(`${ACCEPTED_FORMS}; ${(error as Error).message}`);
  }
  return addresses;
}

/** Reads TRUST_PROXY; throws a message fit for the operator on anything else. */
export function parseTrustProxy(value: string): TrustProxy {
  const setting = value.trim();
  const word = setting.toLowerCase();
  if (word === 'false') return 0;
  if (TRUST_EVERY_HOP.has(word)) throw new Error(trustsEveryHop(setting));
  if (HOP_COUNT.test(setting)) return Number(setting);
  return trustedAddresses(setting);
}
