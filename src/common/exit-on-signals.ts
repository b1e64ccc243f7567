/** The exit codes of a process ended by these signals, as a shell reports them. */
const SIGNAL_EXIT_CODES: Readonly<Partial<Record<NodeJS.Signals, number>>> = {
  SIGINT: 130,
  SIGTERM: 143,
};

/**
 * Ends the process on SIGTERM or SIGINT until the returned function is
 * called. As PID 1 of a container, Node acts on no signal it has no handler
 * for: a start-up still waiting (for the database, or another node's
 * migrations) could then only be killed.
 */
export function exitOnSignals(what: string): () => void {
  const exit = (signal: NodeJS.Signals) => {
    console.error(`${signal} received ${what}: exiting`);
    process.exit(SIGNAL_EXIT_CODES[signal] ?? 1);
  };
  const signals = Object.keys(SIGNAL_EXIT_CODES) as NodeJS.Signals[];
  for (const signal of signals) process.on(signal, exit);
  return () => {
    for (const signal of signals) process.off(signal, exit);
  };
}
