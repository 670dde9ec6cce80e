// Which screen the window shows. One small store: screens ask to open another one (a session
// from the inbox, a group from the list) without knowing how the shell lays them out.

export type Screen =
  | { name: "identity" }
  | { name: "groups"; invite?: string }
  | { name: "group"; id: string }
  | { name: "pay"; group: string }
  | { name: "inbox" }
  | { name: "session"; id: string }
  | { name: "audit" }
  | { name: "cosigners" }
  | { name: "network" }
  | { name: "settings" };

export const nav = $state<{ screen: Screen }>({ screen: { name: "identity" } });

export function open(screen: Screen) {
  nav.screen = screen;
}

/** The sidebar section a screen belongs to. */
export function section(screen: Screen): Screen["name"] {
  if (screen.name === "group" || screen.name === "pay") return "groups";
  if (screen.name === "session") return "inbox";
  return screen.name;
}
