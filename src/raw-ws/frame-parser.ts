import type { RawData } from 'ws';
import { AppException } from '@app/common/errors/app.exception';
import { createValidationPipe } from '@app/common/pipes/validation.pipe';
import { WsClientFrameType } from '@app/contract/ws-frames';
import { BroadcastFrameDto, FrameTypeDto, PingFrameDto, RoomFrameDto } from './dto/frames.dto';

export type ClientFrame = RoomFrameDto | BroadcastFrameDto | PingFrameDto;

const validation = createValidationPipe();

function validate<T>(value: unknown, metatype: new () => T): Promise<T> {
  return validation.transform(value, { type: 'body', metatype }) as Promise<T>;
}

function textOf(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  return (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)).toString('utf8');
}

function parseJson(data: RawData, isBinary: boolean): unknown {
  if (isBinary) throw AppException.validation('Frames must be JSON text');
  try {
    return JSON.parse(textOf(data)) as unknown;
  } catch {
    throw AppException.validation('Frame is not valid JSON');
  }
}

/** The DTO that validates each frame type. */
const FRAME_DTOS: Record<WsClientFrameType, new () => ClientFrame> = {
  [WsClientFrameType.Join]: RoomFrameDto,
  [WsClientFrameType.Leave]: RoomFrameDto,
  [WsClientFrameType.Broadcast]: BroadcastFrameDto,
  [WsClientFrameType.Ping]: PingFrameDto,
};

function dtoOf(type: unknown): (new () => ClientFrame) | undefined {
  return typeof type === 'string' && Object.hasOwn(FRAME_DTOS, type)
    ? FRAME_DTOS[type as WsClientFrameType]
    : undefined;
}

/** Turns a received frame into a validated command, or throws VALIDATION_FAILED saying why. */
export async function parseFrame(data: RawData, isBinary: boolean): Promise<ClientFrame> {
  const value = parseJson(data, isBinary);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw AppException.validation('Frame must be a JSON object');
  }
  const type = (value as { type?: unknown }).type;
  const dto = dtoOf(type);
  if (dto) return validate(value, dto);
  // Fails, naming the known types.
  await validate({ type }, FrameTypeDto);
  throw AppException.validation('Unknown frame type');
}
