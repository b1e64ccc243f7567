import type { RoomPlan, RunCommand, Target } from '../common/protocol';
import type { BenchContext } from '../lib/context';
import {
  fanoutRuns,
  runInTurns,
  type Entrant,
  type LoadMeasurement,
  type Scenario,
} from '../lib/measure';
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
  return Promise.resolve(baselineRooms(placement.senderUrl, shape, ctx.config.users));
}

function onOneNode(server: ServerHandle): Placement {
  return { senderUrl: server.urls[0], receiverUrl: server.urls[0] };
}

/** A scenario on one server: its rooms planned, members placed on `placement`'s nodes. */
async function scenarioOn(
  ctx: BenchContext,
  server: ServerHandle,
  plan: Omit<Scenario, 'rooms'> & { shape: RoomShape },
  placement = onOneNode(server),
): Promise<Scenario> {
  const { shape, ...scenario } = plan;
  return { ...scenario, rooms: await roomsFor(ctx, plan.target, placement, shape) };
}

/** Socket.IO fan-out: R rooms × M members, at a fixed rate and then at the max rate. */
export function fanoutScenario(
  ctx: BenchContext,
  server: ServerHandle,
  target: Target,
): Promise<Scenario> {
  return scenarioOn(ctx, server, {
    name: 'fanout',
    loader: 'socketio',
    target,
    shape: fanoutShape(ctx),
    runs: fanoutRuns(ctx),
  });
}

/** Raw WebSocket broadcast fan-out, same shape and runs. */
export function rawWsScenario(
  ctx: BenchContext,
  server: ServerHandle,
  target: Target,
): Promise<Scenario> {
  return scenarioOn(ctx, server, {
    name: 'rawws',
    loader: 'ws',
    target,
    shape: fanoutShape(ctx),
    runs: fanoutRuns(ctx),
  });
}

/** Durable sends: N senders, each alone in its room, sending the next message once the last is acked. */
export function durableScenario(
  ctx: BenchContext,
  server: ServerHandle,
  target: Target,
): Promise<Scenario> {
  const { ratePerSec, durationMs, drainMs } = ctx.config;
  const run: RunCommand = { type: 'run', mode: 'max', window: 1, ratePerSec, durationMs, drainMs };
  return scenarioOn(ctx, server, {
    name: 'durable',
    loader: 'socketio',
    target,
    shape: { rooms: ctx.config.durableSenders, members: 1, sendersPerRoom: 1 },
    runs: [run],
    figure: (m: LoadMeasurement) => m.messagesPerSec,
  });
}

export interface ClusterResult {
  oneNode: LoadMeasurement;
  crossNode: LoadMeasurement;
}

/**
 * Two nodes over Redis: fixed-rate fan-out with senders on node A and
 * receivers on node B, against everything on node A of the same two, taking
 * turns with repeats as the other phases do, so that drift between the two
 * placements does not land in their ratio. Node B still hears every message
 * of the all-on-A placement (each node publishes its messages to Redis), as
 * a node of a cluster would.
 */
export async function measureCluster(
  ctx: BenchContext,
  cluster: ServerHandle,
): Promise<ClusterResult> {
  const [fixed] = fanoutRuns(ctx);
  fixed.ratePerSec = ctx.config.clusterRatePerSec;
  const [a, b] = cluster.urls;
  const shape = fanoutShape(ctx);
  const placedOn = async (name: string, receiverUrl: string): Promise<Entrant> => {
    const plan = { name, loader: 'socketio' as const, target: 'service' as const, shape };
    const placement = { senderUrl: a, receiverUrl };
    const latencyP50 = (m: LoadMeasurement) => m.latencyMs.p50;
    const scenario = await scenarioOn(
      ctx,
      cluster,
      { ...plan, runs: [fixed], figure: latencyP50 },
      placement,
    );
    return { server: cluster, scenario };
  };
  const entrants = [await placedOn('cluster-one-node', a), await placedOn('cluster-cross-node', b)];
  const [[oneNode], [crossNode]] = await runInTurns(ctx, entrants);
  return { oneNode, crossNode };
}
