import type { RoomPlan, RunCommand, Target } from '../common/protocol';
import type { BenchContext } from '../lib/context';
import type { LoaderKind } from '../lib/loader-client';
import { fanoutRuns, runScenario, type LoadMeasurement } from '../lib/measure';
import type { ServerHandle } from '../lib/servers';
import { baselineRooms, serviceRooms, type Placement, type RoomShape } from '../lib/topology';

function fanoutShape(ctx: BenchContext): RoomShape {
  const { rooms, members, sendersPerRoom } = ctx.config;
  return { rooms, members, sendersPerRoom };
}

function roomsFor(
  ctx: BenchContext,
  target: Target,
  placement: Placement,
  shape: RoomShape,
): Promise<RoomPlan[]> {
  if (target === 'service') return serviceRooms(placement, shape, ctx.config.users);
  return Promise.resolve(baselineRooms(placement.senderUrl, shape));
}

function onOneNode(server: ServerHandle): Placement {
  return { senderUrl: server.urls[0], receiverUrl: server.urls[0] };
}

async function scenario(
  name: string,
  ctx: BenchContext,
  server: ServerHandle,
  loader: LoaderKind,
  target: Target,
  shape: RoomShape,
  runs: RunCommand[],
  placement = onOneNode(server),
): Promise<LoadMeasurement[]> {
  const rooms = await roomsFor(ctx, target, placement, shape);
  return runScenario(ctx, server, { name, loader, target, rooms, runs });
}

/** Socket.IO fan-out: R rooms × M members, at a fixed rate and then at the max rate. */
export function measureFanout(
  ctx: BenchContext,
  server: ServerHandle,
  target: Target,
): Promise<LoadMeasurement[]> {
  return scenario('fanout', ctx, server, 'socketio', target, fanoutShape(ctx), fanoutRuns(ctx));
}

/** Raw WebSocket broadcast fan-out, same shape and runs. */
export function measureRawWs(
  ctx: BenchContext,
  server: ServerHandle,
  target: Target,
): Promise<LoadMeasurement[]> {
  return scenario('rawws', ctx, server, 'ws', target, fanoutShape(ctx), fanoutRuns(ctx));
}

/** Durable sends: N senders, each alone in its room, sending the next message once the last is acked. */
export async function measureDurable(
  ctx: BenchContext,
  server: ServerHandle,
  target: Target,
): Promise<LoadMeasurement> {
  const shape = { rooms: ctx.config.durableSenders, members: 1, sendersPerRoom: 1 };
  const { ratePerSec, durationMs, drainMs } = ctx.config;
  const run: RunCommand = { type: 'run', mode: 'max', window: 1, ratePerSec, durationMs, drainMs };
  const [measurement] = await scenario('durable', ctx, server, 'socketio', target, shape, [run]);
  return measurement;
}

export interface ClusterResult {
  oneNode: LoadMeasurement;
  crossNode: LoadMeasurement;
}

/** Two nodes over Redis: fixed-rate fan-out with everything on node A, then senders on A and receivers on B. */
export async function measureCluster(
  ctx: BenchContext,
  cluster: ServerHandle,
): Promise<ClusterResult> {
  const [fixed] = fanoutRuns(ctx);
  fixed.ratePerSec = ctx.config.clusterRatePerSec;
  const [a, b] = cluster.urls;
  const shape = fanoutShape(ctx);
  const withReceiversOn = (name: string, receiverUrl: string) =>
    scenario(name, ctx, cluster, 'socketio', 'service', shape, [fixed], {
      senderUrl: a,
      receiverUrl,
    });
  const [oneNode] = await withReceiversOn('cluster-one-node', a);
  const [crossNode] = await withReceiversOn('cluster-cross-node', b);
  return { oneNode, crossNode };
}
