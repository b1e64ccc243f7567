import { io, type Socket } from 'socket.io-client';
import type { MessageJson, RoomJson } from '@app/contract/models';
import type { AckResponse, SendPayload } from '@app/contract/socket-events';
import { now } from '../common/clock';
import { readStamp, stampText, type Stamp } from '../common/message-text';
import type {
  ConnectCommand,
  ConnectResult,
  LoaderCommand,
  LoaderReply,
  MemberPlan,
  RoomPlan,
  SetupCommand,
  Target,
} from '../common/protocol';
import { summarize } from '../common/summary';
import { LoadEngine, type Receiver, type Sender } from './engine';
import { mapLimited, serveCommands } from './ipc';
import { StreamTracker } from './stream-tracker';

/** What the load generator reads of a delivered message: the service's, or the bare server's. */
type DeliveredMessage = Pick<MessageJson, 'roomId' | 'text'> & { seq?: number };

interface ServerEvents {
  'chat:message': (message: DeliveredMessage) => void;
}

interface ClientEvents {
  'chat:join': (
    payload: { roomId: string },
    ack: (response: AckResponse<{ room?: RoomJson }>) => void,
  ) => void;
  'chat:message': (
    payload: SendPayload,
    ack: (response: AckResponse<DeliveredMessage>) => void,
  ) => void;
}

type BenchSocket = Socket<ServerEvents, ClientEvents>;

const ACK_TIMEOUT_MS = 30_000;

let closing = false;
const sockets: BenchSocket[] = [];
/** Idle connections tried so far. */
let attempted = 0;
const engine = new LoadEngine();

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Opens one WebSocket-only connection (no reconnection, no multiplexing) and times it. */
function connect(
  url: string,
  auth: Record<string, string>,
  timeoutMs: number,
): Promise<{ socket: BenchSocket; ms: number }> {
  const started = now();
  const socket: BenchSocket = io(url, {
    auth,
    forceNew: true,
    reconnection: false,
    transports: ['websocket'],
    timeout: timeoutMs,
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => {
      sockets.push(socket);
      socket.on('disconnect', (reason) => {
        if (!closing) engine.disconnected(`socket.io disconnect: ${reason}`);
      });
      resolve({ socket, ms: now() - started });
    });
    socket.once('connect_error', (error) => {
      socket.close();
      reject(error);
    });
  });
}

/* ---------- idle connections ---------- */

async function connectIdle(command: ConnectCommand): Promise<ConnectResult> {
  const missing = Math.max(0, command.total - sockets.length);
  const times: number[] = [];
  let failed = 0;
  let firstError: string | undefined;
  // Past every credential tried before, failed ones included: each connection a user of its own.
  const offset = attempted;
  attempted += missing;
  await mapLimited(Array.from({ length: missing }), command.concurrency, async (_, index) => {
    // A user of its own each: none is taken twice, a failed connect's included.
    const credential = command.credentials[offset + index];
    try {
      if (credential === undefined) throw new Error('No user left for another connection');
      const { ms } = await connect(command.url, { token: credential }, command.timeoutMs);
      times.push(ms);
    } catch (error) {
      failed += 1;
      firstError ??= errorText(error);
    }
  });
  return {
    open: openSockets(),
    failed,
    dropped: engine.disconnects,
    connectMs: summarize(times),
    firstError,
  };
}

function openSockets(): number {
  return sockets.filter((socket) => socket.connected).length;
}

/* ---------- rooms: fan-out and durable sends ---------- */

interface Member {
  plan: MemberPlan;
  room: RoomPlan;
  key: string;
  receiver: Receiver;
  sender?: Sender;
}

function streamsOf(target: Target, room: RoomPlan, roomIndex: number): string[] {
  if (target === 'service') return [room.roomId];
  return room.members.flatMap((member, index) =>
    member.sender ? [senderKey(roomIndex, index)] : [],
  );
}

function senderKey(roomIndex: number, memberIndex: number): string {
  return `s${roomIndex}_${memberIndex}`;
}

function planMembers(command: SetupCommand): Member[] {
  return command.rooms.flatMap((room, roomIndex) => {
    const streams = streamsOf(command.target, room, roomIndex);
    return room.members.map((plan, index) => ({
      plan,
      room,
      key: senderKey(roomIndex, index),
      receiver: { tracker: new StreamTracker(streams), timed: !plan.sender },
    }));
  });
}

function listen(target: Target, socket: BenchSocket, member: Member): void {
  socket.on('chat:message', (message) => {
    const stamp = readStamp(message.text);
    if (!stamp) return;
    if (target === 'service')
      engine.delivered(member.receiver, message.roomId, message.seq ?? 0, stamp.sentAt);
    else engine.delivered(member.receiver, stamp.sender, stamp.n, stamp.sentAt);
  });
}

function join(
  target: Target,
  socket: BenchSocket,
  member: Member,
  timeoutMs: number,
): Promise<void> {
  const roomId = member.room.roomId;
  return new Promise((resolve, reject) => {
    socket.timeout(timeoutMs).emit('chat:join', { roomId }, (error, response) => {
      if (error) return reject(error);
      if (!response.ok)
        return reject(new Error(`chat:join: ${response.error.code} ${response.error.message}`));
      if (target === 'service')
        member.receiver.tracker.seed(roomId, response.data.room?.lastSeq ?? 0);
      resolve();
    });
  });
}

function makeSender(
  target: Target,
  socket: BenchSocket,
  member: Member,
  textBytes: number,
): Sender {
  const roomId = member.room.roomId;
  const sender: Sender = {
    key: member.key,
    audience: member.room.members.length,
    n: 0,
    outstanding: 0,
    transmit: (stamp: Stamp) => {
      const payload = { roomId, text: stampText(stamp, textBytes) };
      socket.timeout(ACK_TIMEOUT_MS).emit('chat:message', payload, (error, response) => {
        if (error) return engine.failed(sender, errorText(error));
        if (!response.ok)
          return engine.failed(sender, `${response.error.code} ${response.error.message}`);
        if (target === 'service')
          engine.acked(sender, roomId, response.data.seq ?? 0, stamp.sentAt);
        else engine.acked(sender, sender.key, stamp.n, stamp.sentAt);
      });
    },
  };
  return sender;
}

async function setUp(command: SetupCommand): Promise<LoaderReply> {
  const members = planMembers(command);
  const times: number[] = [];
  const connected = await mapLimited(members, command.concurrency, async (member) => {
    const { socket, ms } = await connect(
      member.plan.url,
      { token: member.plan.token },
      command.timeoutMs,
    );
    times.push(ms);
    listen(command.target, socket, member);
    return socket;
  });
  await mapLimited(members, command.concurrency, (member, index) =>
    join(command.target, connected[index], member, command.timeoutMs),
  );
  members.forEach((member, index) => {
    engine.receivers.push(member.receiver);
    if (member.plan.sender)
      engine.senders.push(makeSender(command.target, connected[index], member, command.textBytes));
  });
  return { type: 'ready', connectMs: summarize(times), connections: members.length };
}

function closeAll(): LoaderReply {
  closing = true;
  for (const socket of sockets) socket.disconnect();
  return { type: 'closed' };
}

async function handle(command: LoaderCommand): Promise<LoaderReply> {
  switch (command.type) {
    case 'connect':
      return { type: 'connected', result: await connectIdle(command) };
    case 'check':
      return { type: 'checked', open: openSockets(), dropped: engine.disconnects };
    case 'setup':
      return setUp(command);
    case 'run':
      return { type: 'result', result: await engine.run(command) };
    case 'close':
      return closeAll();
  }
}

serveCommands(handle);
