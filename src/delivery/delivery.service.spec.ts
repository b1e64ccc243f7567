import { ServerEvent } from '@app/contract/events';
import { DeliveryBus, type DeliveryHandler } from './delivery-bus';
import {
  accountClosedDelivery,
  DeliveryService,
  MAX_HELD,
  RESYNC_HOLD_MS,
  type Delivery,
} from './delivery.service';

/** A bus the test drives: what other nodes send, and their requests to resync. */
class ScriptedBus extends DeliveryBus {
  private handler: DeliveryHandler = () => undefined;
  private resyncHandler: () => void = () => undefined;
  private catchUpHandler: () => void = () => undefined;

  publish(delivery: Delivery): void {
    this.handler(delivery);
  }
  onReceive(handler: DeliveryHandler): void {
    this.handler = handler;
  }
  onResync(handler: () => void): void {
    this.resyncHandler = handler;
  }
  onCatchUp(handler: () => void): void {
    this.catchUpHandler = handler;
  }
  askToCatchUp(): void {
    this.catchUpHandler();
  }
  fromAnotherNode(delivery: Delivery): void {
    this.handler(delivery);
  }
  askToResync(): void {
    this.resyncHandler();
  }
}

const message = (text: string): Delivery => ({
  channel: 'chat:room',
  event: ServerEvent.Message,
  payload: text,
});

function setUp() {
  const bus = new ScriptedBus();
  const delivery = new DeliveryService(bus);
  const handedOut: unknown[] = [];
  delivery.subscribe((d) => handedOut.push(d.payload));
  const audits: Array<() => void> = [];
  delivery.onResync(() => new Promise<void>((resolve) => audits.push(resolve)));
  return { bus, delivery, handedOut, audits };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('DeliveryService resync', () => {
  afterEach(() => jest.useRealTimers());

  it('holds what the bus brings while the resync runs, hands out its own deliveries at once, then the held ones in order', async () => {
    const { bus, delivery, handedOut, audits } = setUp();
    bus.askToResync();
    bus.fromAnotherNode(message('held 1'));
    bus.fromAnotherNode(message('held 2'));
    delivery.deliverLocally(message('the audit says'));

    expect(handedOut).toEqual(['the audit says']);
    audits[0]();
    await settle();
    expect(handedOut).toEqual(['the audit says', 'held 1', 'held 2']);
    bus.fromAnotherNode(message('after'));
    expect(handedOut.at(-1)).toBe('after');
  });

  it('tells the resynced listeners once every resync is done and what was held is out', async () => {
    const { bus, delivery, handedOut, audits } = setUp();
    const seen: unknown[][] = [];
    delivery.onResynced(() => seen.push([...handedOut]));
    bus.askToResync();
    bus.askToResync();
    bus.fromAnotherNode(message('held'));
    audits[0]();
    await settle();
    expect(seen).toEqual([]);
    audits[1]();
    await settle();
    expect(seen).toEqual([['held']]);
  });

  it('tells the resynced listeners when another node shed messages, after a resync under way', async () => {
    const { bus, delivery, audits } = setUp();
    let told = 0;
    delivery.onResynced(() => (told += 1));
    bus.askToCatchUp();
    expect(told).toBe(1);
    bus.askToResync();
    bus.askToCatchUp();
    expect(told).toBe(1);
    audits[0]();
    await settle();
    expect(told).toBe(2);
  });

  it('lets arrival watchers see a delivery as it comes, even while it is held', () => {
    const { bus, delivery, handedOut } = setUp();
    const arrived: unknown[] = [];
    delivery.watchArrivals((d) => arrived.push(d.payload));
    bus.askToResync();
    bus.fromAnotherNode(message('removal'));

    expect(arrived).toEqual(['removal']);
    expect(handedOut).toEqual([]);
  });

  it('hands out an account closure at once, ahead of what is held', () => {
    const { bus, handedOut } = setUp();
    bus.askToResync();
    bus.fromAnotherNode(message('held'));
    const closure = accountClosedDelivery('user-1');
    bus.fromAnotherNode(closure);

    expect(handedOut).toEqual([closure.payload]);
  });

  it('holds until every resync that came meanwhile is done', async () => {
    const { bus, handedOut, audits } = setUp();
    bus.askToResync();
    bus.askToResync();
    bus.fromAnotherNode(message('held'));
    audits[0]();
    await settle();
    expect(handedOut).toEqual([]);
    audits[1]();
    await settle();
    expect(handedOut).toEqual(['held']);
  });

  it('holds at most RESYNC_HOLD_MS from the first resync, whatever comes later', () => {
    jest.useFakeTimers();
    const { bus, handedOut } = setUp();
    bus.askToResync();
    bus.fromAnotherNode(message('held'));
    jest.advanceTimersByTime(RESYNC_HOLD_MS / 2);
    bus.askToResync();
    expect(handedOut).toEqual([]);

    jest.advanceTimersByTime(RESYNC_HOLD_MS / 2);
    expect(handedOut).toEqual(['held']);
    bus.fromAnotherNode(message('flowing again'));
    expect(handedOut).toEqual(['held', 'flowing again']);
  });

  it('holds again for a resync that starts after the hold ran out, while the earlier one still runs', () => {
    jest.useFakeTimers();
    const { bus, handedOut } = setUp();
    bus.askToResync();
    jest.advanceTimersByTime(RESYNC_HOLD_MS);
    bus.fromAnotherNode(message('flowing'));
    bus.askToResync();
    bus.fromAnotherNode(message('held again'));
    expect(handedOut).toEqual(['flowing']);

    jest.advanceTimersByTime(RESYNC_HOLD_MS);
    expect(handedOut).toEqual(['flowing', 'held again']);
  });

  it('hands out everything held, in order, once MAX_HELD deliveries wait', () => {
    const { bus, handedOut } = setUp();
    bus.askToResync();
    for (let i = 0; i <= MAX_HELD; i += 1) bus.fromAnotherNode(message(`m${i}`));

    expect(handedOut).toHaveLength(MAX_HELD + 1);
    expect(handedOut.slice(0, 2)).toEqual(['m0', 'm1']);
    expect(handedOut.at(-1)).toBe(`m${MAX_HELD}`);
  });
});
