// The only way the UI talks to Rust: typed wrappers over the app's Tauri commands.
// Types come from ./bindings, generated from the Rust types (see crates/engine/tests/bindings.rs).
import { Channel, invoke } from "@tauri-apps/api/core";
import type { AuditView } from "../bindings/AuditView";
import type { BackupAnswer } from "../bindings/BackupAnswer";
import type { RecoveryPhraseView } from "../bindings/RecoveryPhraseView";
import type { Change } from "../bindings/Change";
import type { ChainStatusView } from "../bindings/ChainStatusView";
import type { ErrorView } from "../bindings/ErrorView";
import type { GroupView } from "../bindings/GroupView";
import type { HistoryEntryView } from "../bindings/HistoryEntryView";
import type { IdentityView } from "../bindings/IdentityView";
import type { ReputationView } from "../bindings/ReputationView";
import type { SessionView } from "../bindings/SessionView";

/** A failure as the UI shows it: the engine's own errors, or the app failing to answer at all. */
export type Problem = Omit<ErrorView, "kind"> & { kind: ErrorView["kind"] | "ipc" };

export type Outcome<T> = { ok: true; value: T } | { ok: false; problem: Problem };

function isErrorView(value: unknown): value is ErrorView {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as ErrorView).kind === "string" &&
    typeof (value as ErrorView).title === "string" &&
    typeof (value as ErrorView).action === "string"
  );
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await invoke<T>(command, args) };
  } catch (error) {
    if (isErrorView(error)) return { ok: false, problem: error };
    return {
      ok: false,
      problem: {
        kind: "ipc",
        title: "The app did not answer",
        message: String(error),
        action: "Restart Lotus Cosigner. If this keeps happening, report it with the message above.",
      },
    };
  }
}

/** The signer identity; on a failed start the engine retries opening the keychain. */
export const getIdentity = () => call<IdentityView>("get_identity");

/**
 * The recovery phrase: the one secret this window ever receives, for the person to write down.
 * Keep it only while the backup dialog shows it.
 */
export const revealRecoveryPhrase = () => call<RecoveryPhraseView>("reveal_recovery_phrase");
/** Records the backup once the words typed back match. */
export const confirmBackup = (answers: BackupAnswer[]) =>
  call<IdentityView>("confirm_backup", { answers });
/** Puts the key of this phrase into the keychain and starts again with it. */
export const restoreKey = (phrase: string) => call<IdentityView>("restore_key", { phrase });

export const listGroups = () => call<GroupView[]>("list_groups");
export const getGroup = (id: string) => call<GroupView>("get_group", { id });
export const groupHistory = (id: string) => call<HistoryEntryView[]>("group_history", { id });
/** Asks the chain backends now (otherwise the engine's chain task keeps coins current). */
export const refreshGroup = (id: string) => call<GroupView>("refresh_group", { id });
/** Joins a group from the invite text; the key signs the acceptance inside the engine. */
export const acceptInvite = (invite: string) => call<GroupView>("accept_invite", { invite });
export const listSessions = () => call<SessionView[]>("list_sessions");
export const getSession = (id: string) => call<SessionView>("get_session", { id });
/** Approves exactly the review shown: `digest` is the `review_digest` of the view on screen. */
export const approveSession = (id: string, digest: string) =>
  call<SessionView>("approve_session", { id, digest });
export const rejectSession = (id: string, reason: string) =>
  call<SessionView>("reject_session", { id, reason });
export const chainStatus = () => call<ChainStatusView>("chain_status");
/** Verifies the audit log now: intact, or the first broken entry. */
export const audit = () => call<AuditView>("audit");
export const reputation = () => call<ReputationView[]>("reputation");

/** Calls `onChange` with every "X changed" notice; fetch the fresh view of X in response. */
export async function watchChanges(onChange: (change: Change) => void): Promise<Outcome<null>> {
  const channel = new Channel<Change>();
  channel.onmessage = onChange;
  return call<null>("watch_changes", { onChange: channel });
}
