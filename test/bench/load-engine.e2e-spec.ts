import type { Stamp } from '../../bench/common/message-text';
import type { RunCommand } from '../../bench/common/protocol';
import { LoadEngine, type Sender } from '../../bench/load/engine';
import { StreamTracker } from '../../bench/load/stream-tracker';

/** The bench's load engine (`npm run bench` is not part of `npm test`): what it counts must be right there. */
describe('the bench load engine', () => {
  const fixedRun = (ratePerSec: number, durationMs: number): RunCommand => ({
    type: 'run',
    mode: 'fixed',
    ratePerSec,
    window: 1,
    durationMs,
    drainMs: 1_000,
  });

  const blockEventLoop = (ms: number) => {
    const until = performance.now() + ms;
    while (performance.now() < until);
  };

  /** A sender whose every message the server acknowledges at once. */
  const ackedAtOnce = (engine: LoadEngine, stamps: Stamp[]): Sender => {
    const sender: Sender = {
      key: 'sender',
      audience: 0,
      n: 0,
      outstanding: 0,
      transmit: (stamp) => {
        stamps.push(stamp);
        queueMicrotask(() => engine.acked(sender, 'room', stamp.n, stamp.sentAt));
      },
    };
    return sender;
  };

  it('times fixed-rate sends a stall of its own held back from when they were due', async () => {
    const engine = new LoadEngine();
    const stamps: Stamp[] = [];
    engine.senders.push(ackedAtOnce(engine, stamps));
    const stallMs = 200;
    setTimeout(() => blockEventLoop(stallMs), 100);

    const result = await engine.run(fixedRun(100, 600));

    expect(stamps.length).toBeGreaterThan(40);
    // The sends held back by the stall went out in one burst, but each is
    // timed from its own turn (10 ms apart at 100/s), plus one 5 ms tick.
    const spacing = stamps.slice(1).map((stamp, i) => stamp.sentAt - stamps[i].sentAt);
    expect(Math.min(...spacing)).toBeGreaterThan(4);
    // They were acked as soon as they went out, yet waited as long as the stall.
    expect(result.ackMs.max).toBeGreaterThanOrEqual(stallMs - 30);
    expect(result.skipped).toBe(0);
  });

  it('tells a message’s first delivery from a duplicate, which settles no send of the raw WebSocket loader', () => {
    const engine = new LoadEngine();
    const receiver = { tracker: new StreamTracker(['room']), timed: true };

    expect(engine.delivered(receiver, 'room', 1, performance.now())).toBe(true);
    expect(engine.delivered(receiver, 'room', 1, performance.now())).toBe(false);
    expect(engine.delivered(receiver, 'room', 2, performance.now())).toBe(true);
  });

  it('charges a connection dropped between two runs to the next run', async () => {
    const engine = new LoadEngine();
    const first = await engine.run(fixedRun(0, 10));
    engine.disconnected('closed by the server');
    const second = await engine.run(fixedRun(0, 10));
    const third = await engine.run(fixedRun(0, 10));

    expect(first.disconnects).toBe(0);
    expect(second.disconnects).toBe(1);
    expect(second.firstError).toBe('closed by the server');
    expect(third.disconnects).toBe(0);
  });
});
