import { MetricsService } from '@app/metrics/metrics.service';
import { PresenceService } from './presence.service';

describe('PresenceService', () => {
  const ada = { id: 'a', username: 'ada' };
  let presence: PresenceService;
  let metrics: MetricsService;

  beforeEach(() => {
    metrics = new MetricsService();
    presence = new PresenceService(metrics);
  });

  it('changes only on the first connection in and the last one out', () => {
    expect(presence.enter('r', ada, 'c1').changed).toBe(true);
    expect(presence.enter('r', ada, 'c2').changed).toBe(false);
    expect(presence.enter('r', ada, 'c2').changed).toBe(false);
    expect(presence.users('r')).toEqual([ada]);
    expect(presence.leave('r', ada, 'c1').changed).toBe(false);
    expect(presence.leave('r', ada, 'c1').changed).toBe(false);
    expect(presence.leave('r', ada, 'c2').changed).toBe(true);
    expect(presence.users('r')).toEqual([]);
  });

  it('removes a closed connection from every room, leaving nothing behind', async () => {
    presence.enter('r1', ada, 'c1');
    presence.enter('r2', ada, 'c1');
    presence.enter('r2', ada, 'c2');
    const changes = presence.leaveAll(ada, 'c1');
    expect(changes.map((c) => [c.roomId, c.changed])).toEqual([
      ['r1', true],
      ['r2', false],
    ]);
    expect(presence.roomsOf('c1').size).toBe(0);
    presence.leaveAll(ada, 'c2');
    const text = await metrics.render();
    expect(text).toMatch(/^realtime_rooms_with_members 0$/m);
    expect(text).toMatch(/^realtime_presence_entries 0$/m);
  });
});
