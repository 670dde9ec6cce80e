// The only way the UI talks to Rust: typed wrappers over the app's Tauri commands.
// Types come from ./bindings, generated from the Rust types (see crates/engine/tests/bindings.rs).
import { Channel, invoke } from "@tauri-apps/api/core";
import type { AuditEntryView } from "../bindings/AuditEntryView";
import type { AuditView } from "../bindings/AuditView";
import type { EvidenceView } from "../bindings/EvidenceView";
import type { BackupAnswer } from "../bindings/BackupAnswer";
import type { ChainTestView } from "../bindings/ChainTestView";
import type { CreateGroupRequest } from "../bindings/CreateGroupRequest";
import type { NetworkView } from "../bindings/NetworkView";
import type { PaymentForm } from "../bindings/PaymentForm";
import type { PaymentPreviewView } from "../bindings/PaymentPreviewView";
import type { ProposalView } from "../bindings/ProposalView";
import type { SavedFileView } from "../bindings/SavedFileView";
import type { SettingsForm } from "../bindings/SettingsForm";
import type { SettingsView } from "../bindings/SettingsView";
import type { RecoveryPhraseView } from "../bindings/RecoveryPhraseView";
import type { Change } from "../bindings/Change";
import type { ChainStatusView } from "../bindings/ChainStatusView";
import type { ErrorView } from "../bindings/ErrorView";
import type { GroupView } from "../bindings/GroupView";
import type { HistoryEntryView } from "../bindings/HistoryEntryView";
import type { IdentityView } from "../bindings/IdentityView";
import type { ReputationView } from "../bindings/ReputationView";
import type { SessionView } from "../bindings/SessionView";
import type { DemoView } from "../bindings/DemoView";
import type { TransactionView } from "../bindings/TransactionView";

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

/**
 * What the window received, kept only when a test (or someone in the inspector) put an array
 * at `window.__lotusIpcLog`: the end-to-end tests scan it for secrets. Tauri's own IPC object
 * is frozen, so this is the one place that sees every answer and event.
 */
function logIpc(what: string, value: unknown) {
  const log = (globalThis as { __lotusIpcLog?: unknown }).__lotusIpcLog;
  if (Array.isArray(log)) log.push([what, JSON.stringify(value)]);
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<Outcome<T>> {
  try {
    const value = await invoke<T>(command, args);
    logIpc(command, value);
    return { ok: true, value };
  } catch (error) {
    logIpc(command, error);
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

/** The invite link the app was opened with, once (then `null`). */
export const takeLaunchInvite = () => call<string | null>("take_launch_invite");
export const takeOpenSession = () => call<string | null>("take_open_session");

export const listGroups = () => call<GroupView[]>("list_groups");
export const getGroup = (id: string) => call<GroupView>("get_group", { id });
export const groupHistory = (id: string) => call<HistoryEntryView[]>("group_history", { id });
/** Asks the chain backends now (otherwise the engine's chain task keeps coins current). */
export const refreshGroup = (id: string) => call<GroupView>("refresh_group", { id });
/** Joins a group from the invite text; the key signs the acceptance inside the engine. */
export const acceptInvite = (invite: string) => call<GroupView>("accept_invite", { invite });
/** Creates a group from members' keys (yours among them); the others join by its invite. */
export const createGroup = (form: CreateGroupRequest) => call<GroupView>("create_group", { form });
/** Saves the group's backup file (no secret) in the documents folder. */
export const saveGroupBackup = (id: string) => call<SavedFileView>("save_group_backup", { id });
/** Exactly what co-signers would review, from the group's coins; nothing is proposed. */
export const previewPayment = (form: PaymentForm) =>
  call<PaymentPreviewView>("preview_payment", { form });
export const proposePayment = (form: PaymentForm) =>
  call<ProposalView>("propose_payment", { form });
export const networkView = () => call<NetworkView>("network_view");
export const settingsView = () => call<SettingsView>("settings_view");
/** Saves the settings whole (a bad field changes nothing); the engine restarts with them. */
export const saveSettings = (form: SettingsForm) => call<SettingsView>("save_settings", { form });
export const testChainBackend = (spec: string) => call<ChainTestView>("test_chain_backend", { spec });
/** Saves the audit log (JSON Lines) in the documents folder. */
export const exportAuditLog = () => call<SavedFileView>("export_audit_log");

/** Saves the session (signed proposal, and the signed transaction once there is one). */
export const saveSessionFile = (id: string) => call<SavedFileView>("save_session_file", { id });

/** A session file's text (picked by the person): validated like a proposal from a co-signer. */
export const importSessionFile = (text: string) => call<SessionView>("import_session_file", { text });

/** A signed session's transaction as this member's chain backends see it. */
export const transactionStatus = (id: string) => call<TransactionView>("transaction_status", { id });

/** Proposes spending a coin of a signed transaction nobody has seen: that cancels it. */
export const cancelUnseen = (id: string) => call<ProposalView>("cancel_unseen", { id });
export const auditEntries = () => call<AuditEntryView[]>("audit_entries");
/** Blame records against a signer, each verified again by the engine now. */
export const evidenceAgainst = (signer: string) =>
  call<EvidenceView[]>("evidence_against", { signer });
export const saveEvidence = (signer: string, id: string) =>
  call<SavedFileView>("save_evidence", { signer, id });

export const listSessions = () => call<SessionView[]>("list_sessions");
export const getSession = (id: string) => call<SessionView>("get_session", { id });
/** Approves exactly the review shown: `digest` is the `review_digest` of the view on screen. */
/** `code`: the proposer's confirmation code, for a payment above the limit in Settings. */
export const approveSession = (id: string, digest: string, code: string | null = null) =>
  call<SessionView>("approve_session", { id, digest, code });
export const rejectSession = (id: string, reason: string) =>
  call<SessionView>("reject_session", { id, reason });
export const chainStatus = () => call<ChainStatusView>("chain_status");
/** Verifies the audit log now: intact, or the first broken entry. */
export const audit = () => call<AuditView>("audit");
export const reputation = () => call<ReputationView[]>("reputation");

/** Calls `onChange` with every "X changed" notice; fetch the fresh view of X in response. */
export async function watchChanges(onChange: (change: Change) => void): Promise<Outcome<null>> {
  const channel = new Channel<Change>();
  channel.onmessage = (change) => {
    logIpc("change", change);
    onChange(change);
  };
  return call<null>("watch_changes", { onChange: channel });
}

/** The demo's guide, in a demo window only (`null` in the person's own window). */
export const demoGuide = () => call<DemoView | null>("demo_guide");
/** Opens the demo in a window of its own; answers once it is up, or why it could not start. */
export const startDemo = () => call<null>("start_demo");
