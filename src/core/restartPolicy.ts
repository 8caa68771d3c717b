/** First delay before restarting a program that failed; doubled after each quick failure. */
export const RESTART_BASE_DELAY_MS = 1000;
/** Maximum delay between restarts, a cap on the doubling. With `MAX_QUICK_FAILURES` at 5
 * the longest delay reached is 8 s, because the fifth quick failure means "crashed". */
export const RESTART_MAX_DELAY_MS = 30_000;
/** Failures in a row, each within the minimum uptime, after which the program is "crashed". */
export const MAX_QUICK_FAILURES = 5;

export type RestartDecision =
	| { action: 'wait' }
	| { action: 'restart'; delayMs: number; failures: number }
	| { action: 'crashed'; failures: number };

/**
 * Decides what follows an exit: a clean exit waits for the next update or a manual start;
 * a failure restarts with a growing delay; after `MAX_QUICK_FAILURES` failures in a row
 * that each ran less than the minimum uptime, it gives up until an update or a manual start.
 */
export class RestartPolicy {
	private quickFailures = 0;

	constructor(private readonly minUptimeMs: number) {}

	onExit(uptimeMs: number, failed: boolean): RestartDecision {
		if (!failed) {
			this.quickFailures = 0;
			return { action: 'wait' };
		}
		this.quickFailures = uptimeMs >= this.minUptimeMs ? 1 : this.quickFailures + 1;
		if (this.quickFailures >= MAX_QUICK_FAILURES) {
			return { action: 'crashed', failures: this.quickFailures };
		}
		const delayMs = Math.min(RESTART_BASE_DELAY_MS * 2 ** (this.quickFailures - 1), RESTART_MAX_DELAY_MS);
		return { action: 'restart', delayMs, failures: this.quickFailures };
	}

	/** Forgets past failures: an update or a manual start gives the program a fresh chance. */
	reset(): void {
		this.quickFailures = 0;
	}
}
