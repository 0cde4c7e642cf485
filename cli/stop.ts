// Stopping a run early: SIGINT/SIGTERM or a spent time budget. One RunStop lives for the whole of
// `check` (the suites, then the golden section), so a stop signal ends whichever part is running
// and the report is still written, marked incomplete. A second signal exits at once (130).
import type { StopReason } from '../reports/report.js';

export const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

export class RunStop {
  private readonly controller = new AbortController();
  private why: StopReason | undefined;

  get reason(): StopReason | undefined {
    return this.why;
  }

  /** aborts once, with the first reason */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  stop(why: StopReason): void {
    if (this.why) return;
    this.why = why;
    this.controller.abort(why);
  }

  /** Handles SIGINT/SIGTERM until the returned function is called. */
  handleSignals(): () => void {
    const onSignal = () => (this.why ? process.exit(130) : this.stop('interrupted'));
    for (const s of STOP_SIGNALS) process.on(s, onSignal);
    return () => {
      for (const s of STOP_SIGNALS) process.off(s, onSignal);
    };
  }

  /** Stops the run after `seconds`, until the returned function is called. */
  budget(seconds: number | undefined): () => void {
    if (seconds === undefined) return () => {};
    const t = setTimeout(() => this.stop('time-budget'), seconds * 1000);
    return () => clearTimeout(t);
  }
}
