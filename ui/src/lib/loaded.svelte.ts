import type { Outcome, Problem } from "./api";

/** One view fetched from the engine: its latest value, or why it could not be fetched. Call
 * `reload` on every change notice (screens do it in an effect on the notice counter). */
export class Loaded<T> {
  value = $state<T | null>(null);
  problem = $state<Problem | null>(null);
  loading = $state(false);

  constructor(private readonly fetch: () => Promise<Outcome<T>>) {}

  reload = async () => {
    this.loading = true;
    const outcome = await this.fetch();
    this.loading = false;
    if (outcome.ok) {
      this.value = outcome.value;
      this.problem = null;
    } else this.problem = outcome.problem;
  };
}
