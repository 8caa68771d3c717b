import * as path from 'node:path';
import type { Stats } from 'node:fs';
import { watch, type FSWatcher } from 'chokidar';
import type { IgnoreMatcher } from './ignore';
import type { FileSnapshot } from './mergePlan';

/** Polling interval when the native watcher cannot be used: a settled upload is still
 * noticed within a second or two, at a small cost per file. */
const POLLING_INTERVAL_MS = 1000;

/** Errors that mean the native watcher cannot work here: inotify limits, or no inotify. */
const FALLBACK_ERROR_CODES = new Set(['ENOSPC', 'EMFILE', 'ENOSYS', 'EPERM', 'EINVAL']);

export interface DepositWatcherEvents {
	/** A file or folder was added, changed or removed (`snapshot` undefined when removed). */
	onChange(relativePath: string, snapshot: FileSnapshot | undefined): void;
	/** A file with an ignored name changed: not a candidate, but a sign that an upload is
	 * still running (rsync and Syncthing write each file under a temporary dot-name). */
	onActivity(relativePath: string): void;
	/** The native watcher failed and the watcher now polls; reported once. */
	onPollingFallback(error: NodeJS.ErrnoException): void;
	onError(error: Error): void;
}

/** Adapts chokidar to deposit events: paths relative to the deposit, ignored names left out. */
export class DepositWatcher {
	private watcher: FSWatcher | undefined;
	private polling = false;
	private closed = false;

	constructor(
		private readonly deposit: string,
		private readonly isIgnored: IgnoreMatcher,
		private readonly events: DepositWatcherEvents,
	) {}

	/** Starts watching; resolves once the initial scan has reported every existing file. */
	start(): Promise<void> {
		return this.open(false);
	}

	get isPolling(): boolean {
		return this.polling;
	}

	private relative(absolute: string): string {
		return path.relative(this.deposit, absolute).split(path.sep).join('/');
	}

	private open(usePolling: boolean): Promise<void> {
		this.polling = usePolling;
		const watcher = watch(this.deposit, {
			ignoreInitial: false,
			alwaysStat: true,
			followSymlinks: false,
			usePolling,
			interval: POLLING_INTERVAL_MS,
			binaryInterval: POLLING_INTERVAL_MS,
			// Ignored folders (`.git/`, `__pycache__/`) are not watched at all; ignored files are,
			// because their changes tell that an upload is in progress.
			ignored: (absolute: string, stats?: Stats) => stats?.isDirectory() === true && this.isIgnored(this.relative(absolute), true),
		});
		this.watcher = watcher;
		const report = (absolute: string, stats?: Stats): void => {
			const relativePath = this.relative(absolute);
			if (relativePath === '' || this.closed) {
				return;
			}
			if (this.isIgnored(relativePath, stats?.isDirectory() ?? false)) {
				this.events.onActivity(relativePath);
				return;
			}
			this.events.onChange(relativePath, stats === undefined ? undefined : { size: stats.size, mtimeMs: stats.mtimeMs });
		};
		watcher.on('add', report);
		watcher.on('change', report);
		// A folder's size and mtime change with its contents, whose own events follow; comparing
		// them would only restart the quiet time.
		watcher.on('addDir', (absolute) => report(absolute));
		watcher.on('unlink', (absolute) => report(absolute));
		watcher.on('unlinkDir', (absolute) => report(absolute));
		return new Promise((resolve) => {
			watcher.on('ready', () => resolve());
			watcher.on('error', (error: unknown) => {
				const code = (error as NodeJS.ErrnoException).code;
				if (!this.polling && code !== undefined && FALLBACK_ERROR_CODES.has(code)) {
					this.events.onPollingFallback(error as NodeJS.ErrnoException);
					void watcher.close();
					void this.open(true).then(resolve);
					return;
				}
				this.events.onError(error as Error);
			});
		});
	}

	async close(): Promise<void> {
		this.closed = true;
		await this.watcher?.close();
		this.watcher = undefined;
	}
}
