import type { Clock } from './clock';
import { sameSnapshot, type FileSnapshot } from './mergePlan';

/** Reads the current size and mtime of deposit files; `undefined` for a file that is gone. */
export type SnapshotReader = (paths: readonly string[]) => Promise<Map<string, FileSnapshot | undefined>>;

/**
 * Decides when the deposit has settled. Each watcher event records the file's size and
 * mtime and restarts the quiet timer. When the timer fires, every recorded file is read
 * again: if none changed since its last event, the deposit is settled and `onSettled`
 * runs; otherwise the new values are recorded and the timer starts over. No timer is
 * armed while nothing is recorded, so an idle deposit costs nothing.
 */
export class SettleTracker {
	private readonly pending = new Map<string, FileSnapshot | undefined>();
	private timer: unknown;
	private checking = false;
	private held = false;
	/** Deposit paths that the last update moved away; their removal events are its own. */
	private readonly expectedRemovals = new Set<string>();
	private disposed = false;

	constructor(
		private readonly clock: Clock,
		private readonly settleTimeMs: number,
		private readonly readSnapshots: SnapshotReader,
		private readonly onSettled: () => void,
		private readonly onError: (error: unknown) => void = () => undefined,
		/** Called when files start or stop waiting for the deposit to settle. */
		private readonly onWaitingChanged: (waiting: boolean) => void = () => undefined,
	) {}

	/** Records an event for a file (`undefined` when it was removed) and restarts the quiet time. */
	record(path: string, snapshot: FileSnapshot | undefined): void {
		if (this.disposed) {
			return;
		}
		if (snapshot === undefined && this.expectedRemovals.delete(path) && !this.pending.has(path)) {
			return; // the update moved it: nothing new to merge
		}
		const wasWaiting = this.pending.size > 0;
		this.pending.set(path, snapshot);
		if (!wasWaiting) {
			this.onWaitingChanged(true);
		}
		this.arm();
	}

	/**
	 * Restarts the quiet time without adding a candidate: activity that must delay a batch
	 * (an upload's temporary file growing) but must not start one.
	 */
	touch(): void {
		if (this.pending.size > 0 && !this.disposed) {
			this.arm();
		}
	}

	/** Paths with events not yet settled, such as those recorded during a hold. */
	pendingPaths(): string[] {
		return [...this.pending.keys()];
	}

	/** True while events wait for the deposit to settle. */
	get isWaiting(): boolean {
		return this.pending.size > 0;
	}

	get isTimerArmed(): boolean {
		return this.timer !== undefined;
	}

	/** Keeps recording events but reports nothing, while an update is running. */
	hold(): void {
		this.held = true;
		this.expectedRemovals.clear();
		this.disarm();
	}

	/**
	 * Records the paths that an update moved out of the deposit, so that their removal events
	 * start no empty batch. The next hold clears them.
	 */
	expectRemovals(paths: Iterable<string>): void {
		for (const path of paths) {
			this.expectedRemovals.add(path);
		}
	}

	/** Ends a hold; events that came in meanwhile start a new quiet time. */
	release(): void {
		this.held = false;
		if (this.pending.size > 0) {
			this.arm();
		}
	}

	dispose(): void {
		this.disposed = true;
		this.disarm();
		this.pending.clear();
	}

	private arm(): void {
		if (this.held || this.disposed) {
			return;
		}
		this.disarm();
		this.timer = this.clock.setTimeout(() => {
			this.timer = undefined;
			void this.check();
		}, this.settleTimeMs);
	}

	private disarm(): void {
		if (this.timer !== undefined) {
			this.clock.clearTimeout(this.timer);
			this.timer = undefined;
		}
	}

	private async check(): Promise<void> {
		if (this.checking || this.held || this.disposed) {
			return;
		}
		this.checking = true;
		const expected = new Map(this.pending);
		let current: Map<string, FileSnapshot | undefined>;
		try {
			current = await this.readSnapshots([...expected.keys()]);
		} catch (error) {
			this.checking = false;
			this.onError(error);
			this.arm();
			return;
		}
		this.checking = false;
		if (this.disposed || this.held) {
			return;
		}
		if (this.timer !== undefined) {
			return; // a newer event arrived while reading; its timer decides
		}
		let changed = false;
		for (const [path, before] of expected) {
			const now = current.get(path);
			const bothGone = before === undefined && now === undefined;
			if (!bothGone && !sameSnapshot(before, now)) {
				changed = true;
				this.pending.set(path, now);
			}
		}
		if (changed) {
			this.arm();
			return;
		}
		this.pending.clear();
		this.onWaitingChanged(false);
		this.onSettled();
	}
}
