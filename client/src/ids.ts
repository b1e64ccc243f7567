/** A fresh `clientMsgId`: a UUID where the platform offers one, else 128 random bits. */
export function newClientMsgId(): string {
  const webCrypto = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (typeof webCrypto?.randomUUID === 'function') return webCrypto.randomUUID();
  // Insecure contexts (plain http pages on another host) have no randomUUID.
  let id = 'c-';
  for (let i = 0; i < 4; i += 1)
    id += Math.floor(Math.random() * 2 ** 32)
      .toString(16)
      .padStart(8, '0');
  return id;
}
