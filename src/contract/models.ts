/** Wire shapes of the contract, as JSON: shared by server, SDK and tests. */
export interface UserSummaryJson {
  id: string;
  username: string;
}

export interface RoomJson {
  id: string;
  name: string;
  isPrivate: boolean;
  ownerId: string;
  createdAt: string;
  lastSeq: number;
}

/** A room's membership, as listed (`GET /api/rooms/:id/members`) and as added. */
export interface MemberJson extends UserSummaryJson {
  roomId: string;
  joinedAt: string;
}

export interface MessageJson {
  id: string;
  roomId: string;
  seq: number;
  userId: string;
  username: string;
  text: string;
  clientMsgId: string | null;
  createdAt: string;
}

export type NotificationJson =
  | { type: 'mention'; message: MessageJson }
  | { type: 'room:invited'; room: RoomJson; by: UserSummaryJson }
  /** `by` is missing when a node found the removal itself, after it had lost touch with the others. */
  | { type: 'room:removed'; room: RoomJson; by?: UserSummaryJson };

/** The first event of an event stream: `connected`. */
export interface StreamConnected {
  userId: string;
}

/**
 * The first event of a room's stream, with `id: <since>`: the stream's
 * messages are those after `since` (the resume point asked for, or the
 * room's last seq when none was, or when it is past the room's end).
 */
export interface RoomStreamConnected extends StreamConnected {
  roomId: string;
  since: number;
}

export interface UserJson extends UserSummaryJson {
  createdAt: string;
}

export interface AccessTokenJson {
  accessToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
}

/** A page of a listing: `nextCursor` is null exactly when there is nothing more. */
export interface PageJson<T, Cursor = string> {
  items: T[];
  nextCursor: Cursor | null;
}
