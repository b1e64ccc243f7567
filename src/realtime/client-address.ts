import type { IncomingMessage } from 'node:http';
// Not re-exported by the package's index; the very function REST's throttler keys by.
import { normalizeIp } from '@nestjs/throttler/dist/ip';
import proxyAddr from 'proxy-addr';
import type { TrustProxy } from '@app/config/trust-proxy';

/** Whether the peer at `address`, `hop` steps away (0: the socket's peer), is a proxy to believe. */
export type TrustRule = (address: string, hop: number) => boolean;

/**
 * TRUST_PROXY as Express compiles `trust proxy`. Express is given this very
 * function, so that `req.ip` and the upgrade paths cannot disagree.
 */
export function trustRule(trustProxy: TrustProxy): TrustRule {
  if (typeof trustProxy === 'number') return (_address, hop) => hop < trustProxy;
  return proxyAddr.compile(trustProxy);
}

/**
 * The client's address as Express's `req.ip`: the nearest `X-Forwarded-For`
 * entry not written by a trusted proxy, else the socket's peer.
 */
export function clientAddress(request: IncomingMessage, trust: TrustRule): string {
  // Undefined, whatever the typings say, once the socket is gone.
  const address: string | undefined = proxyAddr(request, trust);
  return address ?? 'unknown';
}

/**
 * Who a per-address budget counts: the client's address, with every IPv6
 * address of one /64 network as one client (one host can choose any of
 * them), exactly as the REST throttler keys its budgets.
 */
export function clientBudgetKey(request: IncomingMessage, trust: TrustRule): string {
  return normalizeIp(clientAddress(request, trust));
}
