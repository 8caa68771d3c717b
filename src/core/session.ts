import * as fs from 'node:fs';
import * as path from 'node:path';
import { EventEmitter } from 'node:events';
import { systemClock, type Clock } from './clock';
import { DepositWatcher } from './depositWatcher';
import { describeNotice, english } from './describe';
import { levelOf, type Notice, type SessionEvents, type SessionState, type StopReason } from './events';
import { createIgnoreMatcher, type IgnoreMatcher } from './ignore';
import { ensureLayout, layoutOf, type OtaLayout } from './layout';
import { LogFile } from './logFile';
import { applyPlan, changedSincePlan, planDeposit, type BeforeMoveHook } from './merge';
import type { FileSnapshot, MergeProblem } from './mergePlan';
import type { OtaOptions } from './options';
import { ProgramRun, resolvePython, type OutputSink, type OutputStream } from './program';
import { RestartPolicy } from './restartPolicy';
import { SettleTracker } from './settle';

export type UpdateOutcome = 'applied' | 'nothing' | 'rejected' | 'changed' | 'failed' | 'waitingForMarker';

export interface SessionConfig {
	root: string;
	options: OtaOptions;
	clock?: Clock;
	/** Test hook, called before each file of a merge moves. */
	beforeMove?: BeforeMoveHook;
}

/**
 * One OTA root: watches the deposit, merges settled batches into `main/` and keeps the
 * program running. Public operations are queued and run one at a time, so an update
 * never overlaps a start or a stop. The session reports through typed events
 * (`state`, `notice`, `output`) and writes every one of them to the run's log file.
 */
export class Session {
	readonly layout: OtaLayout;
	private readonly emitter = new EventEmitter();
	private readonly clock: Clock;
	private readonly isIgnored: IgnoreMatcher;
	/** Like `isIgnored`, but lets the marker file through, so that its arrival starts a batch. */
	private readonly isIgnoredByWatcher: IgnoreMatcher;
	private readonly policy: RestartPolicy;
	private currentState: SessionState = 'stopped';
	/** The state shown while supervising with no program running and no restart pending. */
	private idleState: SessionState = 'exited';
	private supervising = false;
	/** True while the program should be running: after a start or an update, until it exits
	 * cleanly, crashes or is stopped. */
	private wantRunning = false;
	private run: ProgramRun | undefined;
	private watcher: DepositWatcher | undefined;
	private tracker: SettleTracker | undefined;
	private logFile: LogFile | undefined;
	private restartTimer: unknown;
	private queue: Promise<unknown> = Promise.resolve();
	private lastProblemsValue: MergeProblem[] = [];
	private disposed = false;

	constructor(private readonly config: SessionConfig) {
		this.layout = layoutOf(config.root);
		this.clock = config.clock ?? systemClock;
		const marker = config.options.markerFile === undefined ? [] : [config.options.markerFile];
		this.isIgnored = createIgnoreMatcher(config.options.ignore, marker);
		// The marker is never merged, but the watcher must report it. Files that settled
		// before it arrived wait for one more event, and the marker is the last to come.
		// Its name may match an ignore pattern, as ".upload-done" does, so it is let through first.
		this.isIgnoredByWatcher = (relativePath, isFolder) =>
			relativePath !== config.options.markerFile && this.isIgnored(relativePath, isFolder);
		this.policy = new RestartPolicy(config.options.minUptimeMs);
	}

	get options(): OtaOptions {
		return this.config.options;
	}

	get state(): SessionState {
		return this.currentState;
	}

	get isSupervising(): boolean {
		return this.supervising;
	}

	get pid(): number | undefined {
		return this.run?.pid;
	}

	get logFilePath(): string | undefined {
		return this.logFile?.path;
	}

	/** Conflicts of the last rejected batch; empty after a successful update. */
	get lastProblems(): readonly MergeProblem[] {
		return this.lastProblemsValue;
	}

	/** True when no timer of the session is armed: what an idle session must look like. */
	get isIdle(): boolean {
		return this.restartTimer === undefined && !(this.tracker?.isTimerArmed ?? false);
	}

	on<E extends keyof SessionEvents>(event: E, listener: SessionEvents[E]): () => void {
		this.emitter.on(event, listener);
		return () => this.emitter.off(event, listener);
	}

	/** Turns supervision on; starts the program, or merges waiting files first. */
	start(): Promise<void> {
		return this.enqueue(async () => {
			this.wantRunning = true;
			this.policy.reset();
			if (this.supervising) {
				if (this.run === undefined) {
					this.clearRestartTimer();
					await this.startProgram();
				}
				return;
			}
			this.supervising = true;
			this.setState('starting');
			await this.openLog();
			await this.startWatching();
			if (this.tracker?.isWaiting) {
				return; // files already in the deposit are merged first; the update starts the program
			}
			await this.startProgram();
		});
	}

	/** Turns supervision off: stops the program and the watcher. */
	stop(): Promise<void> {
		return this.enqueue(async () => {
			if (!this.supervising) {
				return;
			}
			this.wantRunning = false;
			await this.stopWatching();
			this.clearRestartTimer();
			await this.stopProgram('stop');
			this.supervising = false;
			this.notice({ code: 'SUPERVISION_STOPPED' });
			this.setState('stopped');
			await this.closeLog();
		});
	}

	/** Stops the program and starts it again, turning supervision on if it was off. */
	async restart(): Promise<void> {
		if (!this.supervising) {
			return this.start();
		}
		return this.enqueue(async () => {
			this.wantRunning = true;
			this.policy.reset();
			this.clearRestartTimer();
			await this.stopProgram('restart');
			await this.startProgram();
		});
	}

	/** Merges the deposit now, without waiting for it to settle. */
	applyNow(): Promise<UpdateOutcome> {
		return this.enqueue(async () => {
			if (!this.supervising) {
				await this.openLog();
			}
			try {
				return await this.update('manual');
			} finally {
				if (!this.supervising) {
					await this.closeLog();
				}
			}
		});
	}

	/**
	 * Stops everything for good. `graceMs` caps the wait after the stop signal, so that an
	 * editor that is shutting down does not wait for the full stop timeout.
	 */
	dispose(graceMs?: number): Promise<void> {
		this.disposed = true;
		this.clearRestartTimer();
		const stopping = this.enqueue(async () => {
			await this.stopWatching();
			await this.stopProgram('shutdown', graceMs);
			this.supervising = false;
			this.setState('stopped');
			await this.closeLog();
		}, true);
		return stopping.finally(() => this.emitter.removeAllListeners());
	}

	/** SIGKILL to the program's whole tree, synchronously; for process exit handlers. */
	killNow(): void {
		this.run?.killNow();
	}

	private enqueue<T>(operation: () => Promise<T>, evenIfDisposed = false): Promise<T> {
		const next = this.queue.then(() => (this.disposed && !evenIfDisposed ? (undefined as T) : operation()));
		this.queue = next.catch(() => undefined);
		return next;
	}

	private setState(state: SessionState): void {
		if (state !== this.currentState) {
			this.currentState = state;
			this.emitter.emit('state', state);
		}
	}

	private notice(notice: Notice): void {
		this.logFile?.write(new Date(this.clock.now()), levelOf(notice), describeNotice(notice, english));
		this.emitter.emit('notice', notice);
	}

	private async openLog(): Promise<void> {
		if (this.logFile !== undefined) {
			return;
		}
		const created = await ensureLayout(this.layout);
		const options = this.config.options;
		this.logFile = await LogFile.open(this.layout.logs, new Date(this.clock.now()), options.maxLogFiles, options.maxLogBytes);
		this.notice({ code: 'SUPERVISOR_STARTED', root: this.layout.root, logFile: this.logFile.path });
		if (created.length > 0) {
			this.notice({ code: 'FOLDERS_CREATED', folders: created });
		}
	}

	private async closeLog(): Promise<void> {
		const logFile = this.logFile;
		this.logFile = undefined;
		await logFile?.close();
	}

	private async startWatching(): Promise<void> {
		const tracker = new SettleTracker(
			this.clock,
			this.config.options.settleTimeMs,
			(paths) => this.readSnapshots(paths),
			() => void this.enqueue(() => this.update('settled')),
			(error) => this.notice({ code: 'WATCHER_ERROR', message: String(error) }),
		);
		const watcher = new DepositWatcher(this.layout.deposit, this.isIgnoredByWatcher, {
			onChange: (file, snapshot) => tracker.record(file, snapshot),
			onPollingFallback: (error) => this.notice({ code: 'WATCHER_POLLING', errorCode: error.code ?? 'unknown' }),
			onError: (error) => this.notice({ code: 'WATCHER_ERROR', message: error.message }),
		});
		this.tracker = tracker;
		this.watcher = watcher;
		await watcher.start();
	}

	private async stopWatching(): Promise<void> {
		this.tracker?.dispose();
		this.tracker = undefined;
		await this.watcher?.close();
		this.watcher = undefined;
	}

	private async readSnapshots(paths: readonly string[]): Promise<Map<string, FileSnapshot | undefined>> {
		const snapshots = new Map<string, FileSnapshot | undefined>();
		for (const file of paths) {
			const stat = await fs.promises.lstat(path.join(this.layout.deposit, ...file.split('/'))).catch(() => undefined);
			snapshots.set(file, stat?.isFile() ? { size: stat.size, mtimeMs: stat.mtimeMs } : undefined);
		}
		return snapshots;
	}

	/** The state to show when nothing is in progress. */
	private restingState(): SessionState {
		if (!this.supervising) {
			return 'stopped';
		}
		if (this.run !== undefined) {
			return 'running';
		}
		if (this.restartTimer !== undefined) {
			return 'restarting';
		}
		return this.idleState;
	}

	private markerPath(): string | undefined {
		const marker = this.config.options.markerFile;
		return marker === undefined ? undefined : path.join(this.layout.deposit, marker);
	}

	private async update(trigger: 'settled' | 'manual'): Promise<UpdateOutcome> {
		const tracker = this.tracker;
		tracker?.hold();
		try {
			return await this.merge(trigger);
		} finally {
			tracker?.release();
			if (this.supervising && this.wantRunning && this.run === undefined && this.restartTimer === undefined) {
				await this.startProgram();
			} else {
				this.setState(this.restingState());
			}
		}
	}

	private async merge(trigger: 'settled' | 'manual'): Promise<UpdateOutcome> {
		const plan = await planDeposit(this.layout, this.isIgnored);
		const fileCount = plan.files.length + plan.folders.length;
		if (fileCount === 0 && plan.problems.length === 0) {
			if (trigger === 'manual') {
				this.notice({ code: 'NOTHING_TO_MERGE' });
			}
			return 'nothing';
		}
		const marker = this.markerPath();
		if (marker !== undefined && trigger === 'settled' && !fs.existsSync(marker)) {
			this.notice({ code: 'MARKER_MISSING', marker: this.config.options.markerFile!, files: fileCount });
			return 'waitingForMarker';
		}
		this.notice({ code: 'DEPOSIT_SETTLED', files: fileCount });
		if (plan.problems.length > 0) {
			this.lastProblemsValue = plan.problems;
			this.notice({ code: 'UPDATE_REJECTED', problems: plan.problems });
			return 'rejected';
		}

		this.setState('updating');
		if (this.restartTimer !== undefined) {
			this.clearRestartTimer();
			this.wantRunning = true;
		}
		await this.stopProgram('update');
		const changed = await changedSincePlan(this.layout, plan.files);
		if (changed.length > 0) {
			this.notice({ code: 'BATCH_CHANGED_DURING_STOP', paths: changed });
			for (const file of changed) {
				this.tracker?.record(file, undefined);
			}
			return 'changed';
		}

		try {
			const result = await applyPlan(this.layout, plan, this.config.beforeMove);
			if (marker !== undefined) {
				await fs.promises.rm(marker, { force: true });
			}
			this.lastProblemsValue = [];
			this.notice({ code: 'UPDATE_APPLIED', added: result.added, replaced: result.replaced, leftInDeposit: result.changed });
			for (const file of result.changed) {
				this.tracker?.record(file, undefined);
			}
			this.wantRunning = this.supervising;
			this.policy.reset();
			return 'applied';
		} catch (error) {
			const failure = error as NodeJS.ErrnoException;
			this.notice({ code: 'MERGE_FAILED', path: failure.path, errorCode: failure.code, message: failure.message });
			return 'failed';
		}
	}

	private sink(): OutputSink {
		return {
			write: (stream: OutputStream, line: string) => {
				this.emitter.emit('output', stream, line);
				return this.logFile?.write(new Date(), stream === 'stdout' ? 'INFO' : 'WARNING', `[${stream}] ${line}`) ?? true;
			},
			onDrain: (callback) => (this.logFile === undefined ? callback() : this.logFile.onDrain(callback)),
		};
	}

	private async startProgram(): Promise<void> {
		const options = this.config.options;
		const entry = path.join(this.layout.main, ...options.entry.split('/'));
		const entryStat = await fs.promises.stat(entry).catch(() => undefined);
		if (!entryStat?.isFile()) {
			this.notice({ code: 'ENTRY_MISSING', entry: options.entry, mainFolder: this.layout.main });
			this.idleState = 'waitingForEntry';
			this.setState('waitingForEntry');
			return;
		}
		const { python, tried } = resolvePython(options.python);
		if (python === undefined) {
			this.notice({ code: 'PYTHON_NOT_FOUND', tried });
			this.wantRunning = false;
			this.idleState = 'crashed';
			this.setState('crashed');
			return;
		}
		this.setState('starting');
		const run = new ProgramRun({ python, entry: options.entry, args: options.args, env: options.env, cwd: this.layout.main }, this.sink());
		this.run = run;
		this.notice({ code: 'PROGRAM_STARTED', pid: run.pid, python, entry: options.entry, args: [...options.args] });
		this.setState('running');
		void run.exited.then((exit) => {
			if (exit.stopped || this.run !== run) {
				return;
			}
			void this.enqueue(async () => {
				if (this.run !== run) {
					return;
				}
				this.run = undefined;
				if (exit.spawnError !== undefined) {
					this.notice({ code: 'PROGRAM_SPAWN_FAILED', python, message: exit.spawnError });
				} else {
					this.notice({ code: 'PROGRAM_EXITED', pid: run.pid, exitCode: exit.code, signal: exit.signal, uptimeMs: exit.uptimeMs });
				}
				this.afterExit(exit.code !== 0 || exit.signal !== undefined || exit.spawnError !== undefined, exit.uptimeMs);
			});
		});
	}

	private afterExit(failed: boolean, uptimeMs: number): void {
		const decision = this.policy.onExit(uptimeMs, failed);
		switch (decision.action) {
			case 'wait':
				this.wantRunning = false;
				this.idleState = 'exited';
				this.setState('exited');
				break;
			case 'crashed':
				this.wantRunning = false;
				this.notice({ code: 'CRASHED', failures: decision.failures });
				this.idleState = 'crashed';
				this.setState('crashed');
				break;
			case 'restart':
				this.notice({ code: 'RESTART_SCHEDULED', delayMs: decision.delayMs, failures: decision.failures });
				this.restartTimer = this.clock.setTimeout(() => {
					this.restartTimer = undefined;
					void this.enqueue(async () => {
						if (this.supervising && this.run === undefined) {
							await this.startProgram();
						}
					});
				}, decision.delayMs);
				this.setState('restarting');
				break;
		}
	}

	private clearRestartTimer(): void {
		if (this.restartTimer !== undefined) {
			this.clock.clearTimeout(this.restartTimer);
			this.restartTimer = undefined;
		}
	}

	private async stopProgram(reason: StopReason, graceMs?: number): Promise<void> {
		const run = this.run;
		if (run === undefined) {
			return;
		}
		const options = this.config.options;
		const timeoutMs = graceMs === undefined ? options.stopTimeoutMs : Math.min(graceMs, options.stopTimeoutMs);
		const exit = await run.stop(options.stopSignal, timeoutMs);
		this.run = undefined;
		this.notice({
			code: 'PROGRAM_STOPPED', pid: run.pid, reason, exitCode: exit.code, signal: exit.signal,
			killed: exit.killed, stopSignal: options.stopSignal, stopTimeoutMs: timeoutMs,
		});
	}
}
