import type { ExecutionContext } from '@nestjs/common';
import { AppException } from '@app/common/errors/app.exception';
import type { RoomsService } from '@app/rooms/rooms.service';
import { WsRoomAccessGuard } from './ws-room-access.guard';

const ROOM_ID = '01a21548-0000-7000-8000-000000000000';

function contextFor(tokenExpiresAt: number, payload: unknown): ExecutionContext {
  const client = { data: { user: { id: 'u1', username: 'ada', tokenExpiresAt } } };
  return {
    switchToWs: () => ({ getClient: () => client, getData: () => payload }),
  } as unknown as ExecutionContext;
}

describe('WsRoomAccessGuard', () => {
  const assertAccessible = jest.fn();
  const guard = new WsRoomAccessGuard({ assertAccessible } as unknown as RoomsService);

  beforeEach(() => assertAccessible.mockReset().mockResolvedValue({}));

  it('refuses a token that expired since the handshake, before any lookup', async () => {
    await expect(
      guard.canActivate(contextFor(Date.now() - 1, { roomId: ROOM_ID })),
    ).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    expect(assertAccessible).not.toHaveBeenCalled();
  });

  it('checks access to the named room, from an object or a bare id', async () => {
    await guard.canActivate(contextFor(Date.now() + 60_000, { roomId: ROOM_ID }));
    await guard.canActivate(contextFor(Date.now() + 60_000, ROOM_ID));
    expect(assertAccessible).toHaveBeenNthCalledWith(1, 'u1', ROOM_ID);
    expect(assertAccessible).toHaveBeenNthCalledWith(2, 'u1', ROOM_ID);
  });

  it('passes payloads without a usable room id on to validation', async () => {
    for (const payload of [undefined, {}, { roomId: 5 }, { roomId: 'lobby' }]) {
      await expect(guard.canActivate(contextFor(Date.now() + 60_000, payload))).resolves.toBe(true);
    }
    expect(assertAccessible).not.toHaveBeenCalled();
  });

  it('lets the room lookup refuse', async () => {
    assertAccessible.mockRejectedValue(AppException.notFound('Room not found'));
    await expect(
      guard.canActivate(contextFor(Date.now() + 60_000, { roomId: ROOM_ID })),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
