/** Which local subscribers (of one transport) listen on which channel. */
export class LocalChannels<T> {
  private readonly byChannel = new Map<string, Set<T>>();

  add(channel: string, subscriber: T): void {
    let subscribers = this.byChannel.get(channel);
    if (!subscribers) {
      subscribers = new Set();
      this.byChannel.set(channel, subscribers);
    }
    subscribers.add(subscriber);
  }

  remove(channel: string, subscriber: T): void {
    const subscribers = this.byChannel.get(channel);
    if (!subscribers?.delete(subscriber)) return;
    if (subscribers.size === 0) this.byChannel.delete(channel);
  }

  subscribers(channel: string): ReadonlySet<T> {
    return this.byChannel.get(channel) ?? EMPTY;
  }

  get channelCount(): number {
    return this.byChannel.size;
  }
}

const EMPTY: ReadonlySet<never> = new Set();
