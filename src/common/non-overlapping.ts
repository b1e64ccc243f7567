/**
 * `run` as a timer's tick: a tick that comes while the last run is still
 * under way is skipped, so that runs do not pile up (each holding its
 * commands and their arguments) behind a dependency that stopped answering.
 * `run` handles its own failures.
 */
export function nonOverlapping(run: () => Promise<void>): () => void {
  let running = false;
  const done = () => {
    running = false;
  };
  return () => {
    if (running) return;
    running = true;
    run().then(done, done);
  };
}
