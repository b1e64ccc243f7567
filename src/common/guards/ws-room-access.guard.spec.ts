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
  const knownAccessible = jest.fn();
  const guard = new WsRoomAccessGuard({
    assertAccessible,
    knownAccessible,
  } as unknown as RoomsService);
  const inAMinute = () => Date.now() + 60_000;

  beforeEach(() => {
    assertAccessible.mockReset().mockResolvedValue(ROOM_ID);
    knownAccessible.mockReset().mockReturnValue(undefined);
  });

  it('refuses a token that expired since the handshake, before any lookup', () => {
    expect(() => guard.canActivate(contextFor(Date.now() - 1, { roomId: ROOM_ID }))).toThrow(
      expect.objectContaining({ code: 'UNAUTHORIZED' }),
    );
    expect(knownAccessible).not.toHaveBeenCalled();
    expect(assertAccessible).not.toHaveBeenCalled();
  });

  it('checks access to the named room, from an object or a bare id', async () => {
    await expect(guard.canActivate(contextFor(inAMinute(), { roomId: ROOM_ID }))).resolves.toBe(
      true,
    );
    await expect(guard.canActivate(contextFor(inAMinute(), ROOM_ID))).resolves.toBe(true);
    expect(assertAccessible).toHaveBeenNthCalledWith(1, 'u1', ROOM_ID);
    expect(assertAccessible).toHaveBeenNthCalledWith(2, 'u1', ROOM_ID);
  });

  it('answers at once, with nothing to await, when the caches already know', () => {
    knownAccessible.mockReturnValue(ROOM_ID);
    expect(guard.canActivate(contextFor(inAMinute(), { roomId: ROOM_ID }))).toBe(true);
    expect(knownAccessible).toHaveBeenCalledWith('u1', ROOM_ID);
    expect(assertAccessible).not.toHaveBeenCalled();
  });

  it('passes payloads without a usable room id on to validation', () => {
    for (const payload of [undefined, {}, { roomId: 5 }, { roomId: 'lobby' }]) {
      expect(guard.canActivate(contextFor(inAMinute(), payload))).toBe(true);
    }
    expect(assertAccessible).not.toHaveBeenCalled();
  });

  it('lets the room lookup refuse', async () => {
    assertAccessible.mockRejectedValue(AppException.notFound('Room not found'));
    await expect(
      guard.canActivate(contextFor(inAMinute(), { roomId: ROOM_ID })),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
