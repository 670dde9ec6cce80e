import type { SessionView } from "../bindings/SessionView";

/** Waiting for my approval: still open and not approved by me. */
export function needsMe(s: SessionView): boolean {
  return s.outcome === null && !s.approved_by_me && s.phase !== "signed" && s.phase !== "closed";
}

/** What a session is doing, in words a co-signer understands (never "nonce"). */
export function statusText(s: SessionView): string {
  if (s.outcome === "confirmed") return "Confirmed";
  if (s.outcome === "aborted") return "Stopped";
  if (s.phase === "signed") return "Signed, broadcasting";
  const waiting = s.members.filter((m) => m.waiting_for.length > 0).length;
  if (!s.approved_by_me) return "Needs your review";
  return waiting > 0
    ? `Waiting for ${waiting} of ${s.members.length} co-signers`
    : "Signing";
}

/** Where the money goes, change excluded. */
export function recipients(s: SessionView): string[] {
  return s.outputs.filter((o) => !o.is_change).map((o) => o.address ?? "an output that cannot be read");
}
