import { isUtf8 } from 'node:buffer';
import { isUUID } from 'class-validator';
import type { RawData } from 'ws';
import { MAX_TOKEN_LENGTH } from '@app/auth/dto/renew-token.dto';
import { AppException } from '@app/common/errors/app.exception';
import { createValidationPipe } from '@app/common/pipes/validation.pipe';
import { WsClientFrameType, type WsErrorRequest } from '@app/contract/ws-frames';
import {
  AuthFrameDto,
  BroadcastFrameDto,
  FrameTypeDto,
  PingFrameDto,
  RoomFrameDto,
} from './dto/frames.dto';

export type ClientFrame = RoomFrameDto | BroadcastFrameDto | PingFrameDto | AuthFrameDto;

const validation = createValidationPipe();

function validate<T>(value: unknown, metatype: new () => T): Promise<T> {
  return validation.transform(value, { type: 'body', metatype }) as Promise<T>;
}

/**
 * The frame's text. `ws` is told not to check UTF-8 itself, which would
 * close the connection (1007): the contract answers any bad frame with an
 * error and keeps it. Decoding alone would turn bad bytes into U+FFFD and
 * pass them on to others.
 */
function textOf(data: RawData): string {
  const bytes = bytesOf(data);
  if (!isUtf8(bytes)) throw AppException.validation('Text frames must be UTF-8');
  return bytes.toString('utf8');
}

function bytesOf(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

/** The bytes a received frame holds. */
export function byteLengthOf(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((total, part) => total + part.byteLength, 0);
  return data.byteLength;
}

function parseJson(data: RawData, isBinary: boolean): unknown {
  if (isBinary) throw AppException.validation('Frames must be JSON text');
  const text = textOf(data);
  try {
    return JSON.parse(text) as unknown;
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
  [WsClientFrameType.Auth]: AuthFrameDto,
};

function dtoOf(type: unknown): (new () => ClientFrame) | undefined {
  return typeof type === 'string' && Object.hasOwn(FRAME_DTOS, type)
    ? FRAME_DTOS[type as WsClientFrameType]
    : undefined;
}

/** A received frame as a JSON object, not yet validated; VALIDATION_FAILED if it is none. */
export function readFrame(data: RawData, isBinary: boolean): Record<string, unknown> {
  const value = parseJson(data, isBinary);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw AppException.validation('Frame must be a JSON object');
  }
  return value as Record<string, unknown>;
}

/**
 * Past this, a frame is no token renewal worth reading early: the token's
 * longest, with room for the envelope (JSON escapes and whitespace).
 */
const MAX_AUTH_FRAME_BYTES = 2 * MAX_TOKEN_LENGTH;

/**
 * Whether the frame reads as a token renewal (valid or not): a frame that
 * cannot be read is not, nor is one longer than any renewal needs, which is
 * not parsed twice.
 */
export function isAuthFrame(data: RawData, isBinary: boolean): boolean {
  if (byteLengthOf(data) > MAX_AUTH_FRAME_BYTES) return false;
  try {
    return readFrame(data, isBinary).type === WsClientFrameType.Auth;
  } catch {
    return false;
  }
}

/** Turns a frame into a validated command, or throws VALIDATION_FAILED saying why. */
export async function validateFrame(value: Record<string, unknown>): Promise<ClientFrame> {
  const dto = dtoOf(value.type);
  if (dto) return validate(value, dto);
  // Fails, naming the known types.
  await validate({ type: value.type }, FrameTypeDto);
  throw AppException.validation('Unknown frame type');
}

/**
 * What an error answering this frame names: its type when known, then its
 * room once that is a valid id, whatever else the frame got wrong.
 */
export function requestOf(value: Record<string, unknown>, frame?: ClientFrame): WsErrorRequest {
  if (!dtoOf(value.type)) return {};
  const request = value.type as WsClientFrameType;
  const room = frame ? (frame as { room?: string }).room : value.room;
  return typeof room === 'string' && isUUID(room, 'all')
    ? { request, room: room.toLowerCase() }
    : { request };
}
