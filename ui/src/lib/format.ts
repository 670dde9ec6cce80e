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
