import { WsCloseCode, WsServerFrameType, type WsServerFrame } from '../../src/contract/ws-frames';

export {
  WsClientFrameType,
  WsCloseCode,
  WsServerFrameType,
  type WsClientFrame,
  type WsErrorRequest,
  type WsServerFrame,
} from '../../src/contract/ws-frames';

/** Close code of a refused token. */
export const WS_UNAUTHORIZED_CLOSE = WsCloseCode.Unauthorized;

const SERVER_FRAME_TYPES: ReadonlySet<string> = new Set(Object.values(WsServerFrameType));

/** Parses a text frame from the server; `undefined` for anything that is not a known frame. */
export function parseServerFrame(data: unknown): WsServerFrame | undefined {
  if (typeof data !== 'string') return undefined;
  try {
    const frame = JSON.parse(data) as { type?: unknown } | null;
    if (typeof frame?.type !== 'string' || !SERVER_FRAME_TYPES.has(frame.type)) return undefined;
    return frame as WsServerFrame;
  } catch {
    return undefined;
  }
}
