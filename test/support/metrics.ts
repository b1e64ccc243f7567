/** The line of one series (`name{labels}`, as written) in a `/metrics` text. */
function lineOf(text: string, series: string): string | undefined {
  return text.split('\n').find((entry) => entry.startsWith(`${series} `));
}

/** The value of one series of a node's `/metrics`, 0 when absent. */
export async function metricValue(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(lineOf(text, series)?.split(' ')[1] ?? 0);
}

/** The value of one series in a `/metrics` text that must hold it. */
export function requiredSeries(text: string, series: string): number {
  const line = lineOf(text, series);
  if (line === undefined) throw new Error(`${series} is missing from /metrics`);
  return Number(line.split(' ')[1]);
}
