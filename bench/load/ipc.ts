import type { LoaderCommand, LoaderReply } from '../common/protocol';

export type CommandHandler = (command: LoaderCommand) => Promise<LoaderReply>;

function reply(message: LoaderReply): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

/** Answers the orchestrator's commands one at a time; exits when the orchestrator goes away. */
export function serveCommands(handler: CommandHandler): void {
  if (!process.send) throw new Error('A load generator runs as a child process with IPC');
  let queue = Promise.resolve();
  process.on('message', (command: LoaderCommand) => {
    queue = queue.then(async () => {
      try {
        await reply(await handler(command));
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        await reply({ type: 'error', message });
      }
      if (command.type === 'close') process.exit(0);
    });
  });
  process.on('disconnect', () => process.exit(0));
}

/** Runs `work` over `items` with at most `limit` in flight. */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
