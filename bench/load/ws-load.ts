import { WebSocket, type RawData } from 'ws';
import { now } from '../common/clock';
import type { Stamp } from '../common/message-text';
import type {
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
import { textOf } from '../common/ws-text';

/** The payload of a broadcast: sender, counter, send time, padding. */
interface StampPayload {
  s: string;
  n: number;
  t: number;
  p: string;
}

type ServerFrame =
  | { type: 'connected'; userId: string }
  | { type: 'joined'; room: string }
  | { type: 'message'; room: string; payload: StampPayload }
  | { type: 'error'; code?: string; message?: string }
  | { type: string };

interface Member {
  plan: MemberPlan;
  room: RoomPlan;
  key: string;
  receiver: Receiver;
  probe: boolean;
  socket?: WebSocket;
  joined?: () => void;
}

let closing = false;
const engine = new LoadEngine();
const sendersByKey = new Map<string, Sender>();
const members: Member[] = [];

function urlOf(target: Target, plan: MemberPlan): string {
  const base = plan.url.replace(/^http/, 'ws');
  const path = target === 'service' ? '/ws' : '/';
  return `${base}${path}?token=${encodeURIComponent(plan.token)}`;
}

function planMembers(command: SetupCommand): Member[] {
  return command.rooms.flatMap((room, roomIndex) => {
    const keys = room.members.map((_, index) => `s${roomIndex}_${index}`);
    const senderKeys = keys.filter((_, index) => room.members[index].sender);
    const probeIndex = room.members.length - 1;
    return room.members.map((plan, index) => ({
      plan,
      room,
      key: keys[index],
      probe: index === probeIndex && !plan.sender,
      receiver: {
        tracker: new StreamTracker(senderKeys.filter((key) => key !== keys[index])),
        timed: !plan.sender,
      },
    }));
  });
}

function onFrame(member: Member, frame: ServerFrame): void {
  if (frame.type === 'message' && 'payload' in frame) {
    const { s, n, t } = frame.payload;
    // A duplicate settles nothing: releasing on it would let its sender have more in flight.
    const first = engine.delivered(member.receiver, s, n, t);
    const sender = member.probe && first ? sendersByKey.get(s) : undefined;
    if (sender) engine.release(sender);
  } else if (frame.type === 'joined') {
    member.joined?.();
  } else if (frame.type === 'error') {
    refused(member, frame as { code?: string; message?: string });
  }
}

/** An error frame: the refusal of the member's last broadcast when it sends, counted either way. */
function refused(member: Member, { code, message }: { code?: string; message?: string }): void {
  const error = `error frame ${code ?? ''}: ${message ?? ''}`;
  const sender = sendersByKey.get(member.key);
  if (sender) engine.failed(sender, error);
  else engine.refused(error);
}

function parse(data: RawData): ServerFrame | undefined {
  try {
    return JSON.parse(textOf(data)) as ServerFrame;
  } catch {
    return undefined;
  }
}

/** Opens the connection and waits for `{type:"connected"}`; resolves to the time it took. */
function connect(target: Target, member: Member, timeoutMs: number): Promise<number> {
  const started = now();
  const socket = new WebSocket(urlOf(target, member.plan), { perMessageDeflate: false });
  member.socket = socket;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error('connect timeout'));
    }, timeoutMs);
    socket.on('error', (error) => reject(error));
    socket.once('close', (code, reason) => {
      clearTimeout(timer);
      const role = member.plan.sender ? 'sender' : member.probe ? 'probe' : 'receiver';
      if (!closing) engine.disconnected(`ws close ${code} ${reason.toString()} (${role})`);
      reject(new Error(`closed ${code} ${reason.toString()}`));
    });
    socket.once('message', (data) => {
      clearTimeout(timer);
      const frame = parse(data);
      if (frame?.type !== 'connected') return reject(new Error(`first frame: ${textOf(data)}`));
      socket.on('message', (next) => {
        const parsed = parse(next);
        if (parsed) onFrame(member, parsed);
      });
      resolve(now() - started);
    });
  });
}

function join(member: Member, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('join timeout')), timeoutMs);
    member.joined = () => {
      clearTimeout(timer);
      resolve();
    };
    member.socket?.send(JSON.stringify({ type: 'join', room: member.room.roomId }));
  });
}

function makeSender(member: Member, textBytes: number): Sender {
  const padding = 'x'.repeat(Math.max(1, textBytes - 40));
  const sender: Sender = {
    key: member.key,
    audience: member.room.members.length - 1,
    n: 0,
    outstanding: 0,
    transmit: (stamp: Stamp) => {
      const payload: StampPayload = { s: stamp.sender, n: stamp.n, t: stamp.sentAt, p: padding };
      member.socket?.send(JSON.stringify({ type: 'broadcast', room: member.room.roomId, payload }));
      engine.sentUnacked(sender, stamp.sender, stamp.n);
    },
  };
  return sender;
}

async function setUp(command: SetupCommand): Promise<LoaderReply> {
  const planned = planMembers(command);
  members.push(...planned);
  const times = await mapLimited(planned, command.concurrency, (member) =>
    connect(command.target, member, command.timeoutMs),
  );
  await mapLimited(planned, command.concurrency, (member) => join(member, command.timeoutMs));
  for (const member of planned) {
    engine.receivers.push(member.receiver);
    if (!member.plan.sender) continue;
    const sender = makeSender(member, command.textBytes);
    engine.senders.push(sender);
    sendersByKey.set(sender.key, sender);
  }
  return { type: 'ready', connectMs: summarize(times), connections: planned.length };
}

function closeAll(): LoaderReply {
  closing = true;
  for (const member of members) member.socket?.close();
  return { type: 'closed' };
}

async function handle(command: LoaderCommand): Promise<LoaderReply> {
  switch (command.type) {
    case 'setup':
      return setUp(command);
    case 'run':
      return { type: 'result', result: await engine.run(command) };
    case 'close':
      return closeAll();
    default:
      throw new Error(`The raw WebSocket load generator does not do "${command.type}"`);
  }
}

serveCommands(handle);
