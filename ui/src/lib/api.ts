// The only way the UI talks to Rust: typed wrappers over the app's Tauri commands.
// Types come from ./bindings, generated from the Rust types (see crates/engine/tests/bindings.rs).
import { invoke } from "@tauri-apps/api/core";
import type { ErrorView } from "../bindings/ErrorView";
import type { IdentityView } from "../bindings/IdentityView";

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
