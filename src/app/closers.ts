/**
 * What start-up has opened, in the order it was opened — the one list both a failed start-up and
 * `close()` undo, in reverse, so the two can never disagree about the order (a listener drained before
 * the stores it uses, background checks settled before the keyring and upstream they write to).
 */
export class Closers {
  readonly #steps: Array<() => unknown> = [];
  #closing: Promise<void> | undefined;

  /** Registers how to undo what was just opened. */
  add(step: () => unknown): void {
    this.#steps.push(step);
  }

  /**
   * Runs every step, newest first, each awaited; a failing step does not stop the rest. Rejects with
   * the first failure once all ran. Runs once: later calls get the same promise.
   */
  closeAll(): Promise<void> {
    this.#closing ??= (async () => {
      let failure: { error: unknown } | undefined;
      for (const step of this.#steps.splice(0).reverse()) {
        try {
          await step();
        } catch (error) {
          failure ??= { error };
        }
      }
      if (failure !== undefined) throw failure.error;
    })();
    return this.#closing;
  }
}
