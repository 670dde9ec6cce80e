// Security counters over time: the Network screen samples the engine's counters while the app
// runs and keeps the last hour here, so the chart survives leaving and reopening the screen.
import type { NetStatusView } from "../bindings/NetStatusView";

export type Sample = { at: number; rejected: number; rateLimited: number; refused: number };

/** One sample every poll (5 s): an hour. */
const KEEP = 720;

export const netHistory = $state<{ samples: Sample[] }>({ samples: [] });

export function record(status: NetStatusView, at: number = Date.now()) {
  const rejected = Object.values(status.rejected).reduce((total, n) => total + n, 0);
  netHistory.samples.push({
    at,
    rejected,
    rateLimited: status.rate_limited,
    refused: status.connections_refused,
  });
  if (netHistory.samples.length > KEEP) netHistory.samples.splice(0, netHistory.samples.length - KEEP);
}
