/** Splits a hex string into groups that people can read aloud and compare. */
export function groupHex(hex: string, size = 6): string[] {
  const groups: string[] = [];
  for (let i = 0; i < hex.length; i += size) groups.push(hex.slice(i, i + size));
  return groups;
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "long", timeStyle: "short" });

export function formatUnixMillis(ms: number): string {
  return dateFormat.format(new Date(ms));
}

const SATS_PER_XPI = 1_000_000;

/** Satoshis as XPI with all six decimals (as the command line shows them): never rounded. */
export function xpi(sats: number): string {
  const sign = sats < 0 ? "-" : "";
  const abs = Math.abs(sats);
  const whole = Math.floor(abs / SATS_PER_XPI).toLocaleString("en-US");
  const frac = String(abs % SATS_PER_XPI).padStart(6, "0");
  return `${sign}${whole}.${frac} XPI`;
}

/** "in 3 h 20 min", "2 min ago": time left or passed, in words. */
export function relative(ms: number, now: number = Date.now()): string {
  const delta = ms - now;
  const minutes = Math.round(Math.abs(delta) / 60_000);
  const words =
    minutes < 1
      ? "less than a minute"
      : minutes < 60
        ? `${minutes} min`
        : minutes < 48 * 60
          ? `${Math.floor(minutes / 60)} h ${minutes % 60} min`
          : `${Math.round(minutes / (24 * 60))} days`;
  return delta >= 0 ? `in ${words}` : `${words} ago`;
}

/** A long hex id shortened for lists only (never used for addresses, which are shown whole). */
export function shortId(hex: string): string {
  return hex.length > 16 ? `${hex.slice(0, 8)}…${hex.slice(-8)}` : hex;
}
