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
import { applyPlan, changedSincePlan, DELETION_LIST, planDeposit, type BeforeMoveHook } from './merge';
import type { FileSnapshot, MergePlan, MergeProblem } from './mergePlan';
import { clearProgramRecord, findLeftoverProgram, OwnerLock, writeProgramRecord } from './ownership';
import { compileDeposited, runCheckCommand } from './preflight';
import { ProcessTree, stopTree } from './processTree';
import {
	listJournals, MergeFailedError, pruneHistory, recoverInterruptedUpdates, REJECTED_FOLDER, rollBackUpdate,
	type Journal, type OperationHook, type RollbackResult,
} from './transaction';
import type { OtaOptions } from './options';
import { ProgramRun, resolvePython, type OutputSink, type OutputStream } from './program';
import { RestartPolicy } from './restartPolicy';
import { SettleTracker } from './settle';

export type UpdateOutcome = 'applied' | 'nothing' | 'rejected' | 'changed' | 'failed' | 'waitingForMarker';

/** While this file exists in `main/`, the program postpones updates (up to a maximum wait). */
export const PROGRAM_LOCK_FILE = '.ota-update.lock';
/** Times Apply Deposit Now waits for files that are still changing before it leaves them. */
const MANUAL_SETTLE_ROUNDS = 5;
/** Apply Deposit Now skips the settle time but still waits for a file modified within this
 * window (or the settle time, if shorter): long enough to see a writer that is still busy. */
const MANUAL_FRESHNESS_MS = 1000;
/** Slack for timer and file-system clock granularity when judging a file's age. */
const SETTLE_CLOCK_TOLERANCE_MS = 50;
/** How often the program's lock file is checked while an update waits for it. */
const PROGRAM_LOCK_POLL_MS = 250;

export interface SessionConfig {
	root: string;
	options: OtaOptions;
	clock?: Clock;
	/** Name of the supervisor, as the owner lock shows it to a second supervisor. */
	ownerKind?: string;
	/** Test hook, called before each file of a merge moves. */
	beforeMove?: BeforeMoveHook;
	/** Test hook, called before each file system change of a merge or rollback. */
	beforeOperation?: OperationHook;
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
	private readonly ownerLock: OwnerLock;
	/** The update whose new version has not yet run for the minimum uptime. */
	private lastUpdateId: string | undefined;

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
		this.ownerLock = new OwnerLock(this.layout.root, config.ownerKind ?? 'a supervisor');
	}

	/** Finishes updates that an earlier supervisor left half done, from their journals. */
	private async recover(): Promise<void> {
		for (const result of await recoverInterruptedUpdates(this.layout, this.config.beforeOperation)) {
			this.notice({ code: 'UPDATE_RECOVERED', id: result.id, finished: result.finished.length, restored: result.restored.length, rollback: result.rollback });
		}
	}

	/** Stops a program that an earlier supervisor started and did not stop (it was killed). */
	private async stopLeftoverProgram(): Promise<void> {
		const leftover = await findLeftoverProgram(this.layout.root);
		if (leftover !== undefined) {
			await stopTree(new ProcessTree(leftover.pid), this.config.options.stopSignal, this.config.options.stopTimeoutMs);
			this.notice({ code: 'LEFTOVER_STOPPED', pid: leftover.pid });
		}
		await clearProgramRecord(this.layout.root);
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

	/** Deposit files (relative, with `/`) whose changes wait for the deposit to settle. */
	get waitingFiles(): readonly string[] {
		return this.tracker?.pendingPaths() ?? [];
	}

	/** Returns whether the ignore patterns (and the marker file) keep a deposit path out of updates. */
	ignores(relativePath: string, isFolder: boolean): boolean {
		return this.isIgnored(relativePath, isFolder);
	}

	/** Plans an update of the deposit as it is now. It only reads and moves nothing. */
	previewDeposit(): Promise<MergePlan & { hasDeletionList: boolean }> {
		return planDeposit(this.layout, this.isIgnored);
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
			await this.ownerLock.acquire();
			this.supervising = true;
			this.setState('starting');
			await this.openLog();
			await this.stopLeftoverProgram();
			await this.recover();
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
			await this.ownerLock.release();
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
				await this.ownerLock.acquire();
				await this.openLog();
				await this.recover();
			}
			try {
				return await this.update('manual');
			} finally {
				if (!this.supervising) {
					await this.closeLog();
					await this.ownerLock.release();
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
			await this.ownerLock.release();
		}, true);
		return stopping.finally(() => this.emitter.removeAllListeners());
	}

	/** SIGKILL to the program's whole tree, synchronously; for process exit handlers. */
	killNow(): void {
		this.run?.killNow();
	}

	/** Sends the stop signal to the program's whole tree synchronously, for a host that is ending. */
	signalNow(): void {
		this.run?.signalNow(this.config.options.stopSignal);
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
		this.notice({ code: 'SUPERVISOR_STARTED', root: this.layout.root, logFile: this.logFile.path, applyOnly: !this.supervising });
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
			(waiting) => this.emitter.emit('depositWaiting', waiting),
		);
		const watcher = new DepositWatcher(this.layout.deposit, this.isIgnoredByWatcher, {
			onChange: (file, snapshot) => tracker.record(file, snapshot),
			onActivity: () => tracker.touch(),
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

	/** Returns the state to show when nothing is in progress. */
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
		let outcome: UpdateOutcome = 'failed';
		try {
			outcome = await this.merge(trigger);
			return outcome;
		} catch (error) {
			// Planning failed before anything moved (main/ or the deposit vanished, no permission).
			const failure = error as NodeJS.ErrnoException;
			this.notice({ code: 'MERGE_FAILED', path: failure.path, errorCode: failure.code, message: failure.message, undone: true });
			return 'failed';
		} finally {
			tracker?.release();
			if (this.supervising && this.wantRunning && this.run === undefined && this.restartTimer === undefined) {
				await this.startProgram();
			} else {
				this.setState(this.restingState());
			}
			if (outcome === 'applied') {
				// Pruning can take a while with large backups, so it runs after the program has started.
				await pruneHistory(this.layout, this.config.options.maxHistory);
			}
		}
	}

	private async merge(trigger: 'settled' | 'manual'): Promise<UpdateOutcome> {
		let plan = await planDeposit(this.layout, this.isIgnored);
		// Apply Deposit Now skips the quiet time, but not for a file that is still being written:
		// it waits until the newest file is one settle time old, a few times at most.
		for (let round = 0; trigger === 'manual' && round < MANUAL_SETTLE_ROUNDS; round++) {
			const waitMs = this.youngestFileWaitMs(plan);
			if (waitMs === 0) {
				break;
			}
			await new Promise((resolve) => this.clock.setTimeout(() => resolve(undefined), waitMs));
			plan = await planDeposit(this.layout, this.isIgnored);
		}
		const unsettled = trigger === 'settled' ? this.leaveUnsettledFiles(plan) : this.leaveFreshFiles(plan);
		if (trigger === 'manual' && unsettled.length > 0) {
			this.notice({ code: 'UNSETTLED_LEFT', paths: unsettled, settleTimeMs: Math.min(this.config.options.settleTimeMs, MANUAL_FRESHNESS_MS) });
		}
		// Folders alone (an empty folder, or one holding only ignored names) are created with
		// the next files; they are no reason to stop the program.
		const fileCount = plan.files.length + plan.deletions.length;
		if (fileCount === 0 && plan.problems.length === 0) {
			if (plan.hasDeletionList) {
				await fs.promises.rm(path.join(this.layout.deposit, DELETION_LIST), { force: true });
			}
			if (trigger === 'manual') {
				this.notice({ code: 'NOTHING_TO_MERGE' });
			}
			if (this.lastProblemsValue.length > 0) {
				this.lastProblemsValue = [];
				this.notice({ code: 'REJECTION_CLEARED' });
			}
			return 'nothing';
		}
		const marker = this.markerPath();
		if (marker !== undefined && trigger === 'settled' && !fs.existsSync(marker)) {
			this.notice({ code: 'MARKER_MISSING', marker: this.config.options.markerFile!, files: fileCount });
			return 'waitingForMarker';
		}
		this.notice({ code: 'DEPOSIT_SETTLED', files: fileCount + plan.problems.length });
		const problems = plan.problems.length > 0 ? plan.problems : await this.preflight(plan);
		if (problems.length > 0) {
			this.lastProblemsValue = problems;
			this.notice({ code: 'UPDATE_REJECTED', problems });
			return 'rejected';
		}
		await this.waitForProgramLock();

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
			const result = await applyPlan(this.layout, plan, this.config.beforeMove, this.config.beforeOperation);
			const left = new Set(result.changed);
			const moved = [...plan.files.map((file) => file.path).filter((file) => !left.has(file)), ...plan.depositFolders];
			this.tracker?.expectRemovals(this.config.options.markerFile === undefined ? moved : [...moved, this.config.options.markerFile]);
			if (marker !== undefined) {
				await fs.promises.rm(marker, { force: true });
			}
			this.lastProblemsValue = [];
			this.lastUpdateId = result.id;
			this.notice({ code: 'UPDATE_APPLIED', id: result.id, added: result.added, replaced: result.replaced, deleted: result.deleted, leftInDeposit: result.changed });
			for (const file of result.changed) {
				this.tracker?.record(file, undefined);
			}
			this.wantRunning = this.supervising;
			this.policy.reset();
			return 'applied';
		} catch (error) {
			if (!(error instanceof MergeFailedError)) {
				throw error;
			}
			this.notice({ code: 'MERGE_FAILED', path: error.path, errorCode: error.errorCode, message: error.message, undone: error.undone });
			return 'failed';
		}
	}

	/** Takes out of a manual plan the files still changing after the waits; returns their paths. */
	private leaveFreshFiles(plan: MergePlan): string[] {
		const fresh = plan.files.filter((file) => this.youngestFileWaitMs({ ...plan, files: [file] }) > 0).map((file) => file.path);
		const left = new Set(fresh);
		plan.files = plan.files.filter((file) => !left.has(file.path));
		return fresh;
	}

	/** Milliseconds until the plan's newest file is old enough for Apply Deposit Now; 0 when all are. */
	private youngestFileWaitMs(plan: MergePlan): number {
		const now = Date.now();
		const windowMs = Math.min(this.config.options.settleTimeMs, MANUAL_FRESHNESS_MS);
		let waitMs = 0;
		for (const file of plan.files) {
			const age = now - file.mtimeMs;
			if (age >= 0 && age < windowMs) {
				waitMs = Math.max(waitMs, windowMs - age);
			}
		}
		return waitMs;
	}

	/**
	 * Takes out of the plan each file that did not settle on its own: one whose events came
	 * in after the settle check (it appeared while the deposit was scanned), or whose mtime is
	 * more recent than the settle time. They stay in the deposit and start the next quiet time.
	 */
	private leaveUnsettledFiles(plan: MergePlan): string[] {
		const now = Date.now(); // compared with file mtimes, which are wall-clock time
		const settleTimeMs = this.config.options.settleTimeMs;
		const recent = new Set(this.tracker?.pendingPaths() ?? []);
		const unsettled = plan.files.filter((file) => {
			const age = now - file.mtimeMs;
			// A clock ahead of the file system's (a network share) makes mtimes look old, never young.
			// A mtime in the future is left alone, so that clock skew cannot hold files back for good.
			return recent.has(file.path) || (age >= 0 && age < settleTimeMs - SETTLE_CLOCK_TOLERANCE_MS);
		});
		const left = new Set(unsettled.map((file) => file.path));
		plan.files = plan.files.filter((file) => !left.has(file.path));
		for (const file of unsettled) {
			this.tracker?.record(file.path, { size: file.size, mtimeMs: file.mtimeMs });
		}
		return [...left];
	}

	/** Compiles the deposited Python files and runs the check command, before anything stops. */
	private async preflight(plan: MergePlan): Promise<MergeProblem[]> {
		const options = this.config.options;
		const { python } = resolvePython(options.python);
		const problems = python === undefined ? [] : await compileDeposited(this.layout, plan, python);
		if (problems.length > 0 || options.checkCommand === undefined) {
			return problems;
		}
		const failure = await runCheckCommand(this.layout, plan, options.checkCommand, options.checkTimeoutMs, options.env);
		return failure === undefined ? [] : [failure];
	}

	/**
	 * Waits while the program holds its lock file in `main/`, so that it can postpone an
	 * update (during a write it must not interrupt), for at most the configured time.
	 */
	private async waitForProgramLock(): Promise<void> {
		const lockFile = path.join(this.layout.main, PROGRAM_LOCK_FILE);
		if (this.run === undefined || !fs.existsSync(lockFile)) {
			return;
		}
		const maxWaitMs = this.config.options.programLockMaxWaitMs;
		this.notice({ code: 'WAITING_FOR_PROGRAM', lockFile, maxWaitMs });
		this.setState('waitingForProgram');
		const deadline = this.clock.now() + maxWaitMs;
		while (fs.existsSync(lockFile) && this.run !== undefined && !this.disposed) {
			if (this.clock.now() >= deadline) {
				this.notice({ code: 'PROGRAM_LOCK_TIMEOUT', lockFile, maxWaitMs });
				return;
			}
			await new Promise((resolve) => this.clock.setTimeout(() => resolve(undefined), PROGRAM_LOCK_POLL_MS));
		}
	}

	/** Rolls back the newest updates down to and including `id` (default: the last one). */
	rollBack(id?: string): Promise<RollbackResult[]> {
		return this.enqueue(async () => {
			const journals = (await listJournals(this.layout)).filter((journal) => journal.status === 'applied');
			const stopAt = id === undefined ? 0 : journals.findIndex((journal) => journal.id === id);
			if (journals.length === 0 || stopAt === -1) {
				throw new Error(id === undefined ? 'There is no applied update to roll back.' : `Update ${id} is not in the history or was already rolled back.`);
			}
			if (!this.supervising) {
				await this.ownerLock.acquire();
			}
			this.setState('updating');
			this.clearRestartTimer();
			const shouldRun = this.wantRunning || this.run !== undefined;
			await this.stopProgram('update');
			const results: RollbackResult[] = [];
			try {
				for (const journal of journals.slice(0, stopAt + 1)) {
					results.push(await this.rollBackOne(journal, 'manual'));
				}
			} finally {
				if (!this.supervising) {
					await this.ownerLock.release();
				}
				this.wantRunning = this.supervising && shouldRun;
				this.policy.reset();
				if (this.wantRunning) {
					await this.startProgram();
				} else {
					this.setState(this.restingState());
				}
			}
			return results;
		});
	}

	private async rollBackOne(journal: Journal, reason: 'crash' | 'manual', uptimeMs?: number): Promise<RollbackResult> {
		const note = reason === 'crash' ? 'rolled back: the new version failed soon after it started' : 'rolled back by request';
		const result = await rollBackUpdate(this.layout, journal, note, this.config.beforeOperation);
		this.lastUpdateId = undefined;
		this.notice({
			code: 'ROLLED_BACK', id: journal.id, reason, uptimeMs,
			restored: result.restored.length, rejected: result.rejected.length,
			rejectedFolder: path.join(this.layout.root, REJECTED_FOLDER, journal.id),
		});
		return result;
	}

	/** Journals of past updates, newest first, for the history view. */
	history(): Promise<Journal[]> {
		return listJournals(this.layout);
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
		if (run.pid !== undefined) {
			await writeProgramRecord(this.layout.root, run.pid);
		}
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
				if (await run.stopRemains(this.config.options.stopSignal, this.config.options.stopTimeoutMs)) {
					this.notice({ code: 'REMAINS_STOPPED', pid: run.pid });
				}
				await clearProgramRecord(this.layout.root);
				const failed = exit.code !== 0 || exit.signal !== undefined || exit.spawnError !== undefined;
				if (await this.rollBackFailedUpdate(failed, exit.uptimeMs)) {
					return;
				}
				this.afterExit(failed, exit.uptimeMs);
			});
		});
	}

	/**
	 * Rolls the last update back when its new version failed within the minimum uptime,
	 * and starts the previous version. Returns true when it did.
	 */
	private async rollBackFailedUpdate(failed: boolean, uptimeMs: number): Promise<boolean> {
		const id = this.lastUpdateId;
		if (uptimeMs >= this.config.options.minUptimeMs) {
			this.lastUpdateId = undefined; // the new version proved itself
		}
		if (!failed || id === undefined || uptimeMs >= this.config.options.minUptimeMs || !this.config.options.autoRollback) {
			return false;
		}
		const journal = (await listJournals(this.layout)).find((candidate) => candidate.id === id);
		if (journal === undefined || journal.status !== 'applied') {
			return false;
		}
		this.setState('updating');
		await this.rollBackOne(journal, 'crash', uptimeMs);
		this.policy.reset();
		if (this.supervising) {
			await this.startProgram();
		}
		return true;
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
		if (reason !== 'update') {
			this.setState('stopping');
		}
		const exit = await run.stop(options.stopSignal, timeoutMs);
		this.run = undefined;
		await clearProgramRecord(this.layout.root);
		this.notice({
			code: 'PROGRAM_STOPPED', pid: run.pid, reason, exitCode: exit.code, signal: exit.signal,
			killed: exit.killed, stopSignal: options.stopSignal, stopTimeoutMs: timeoutMs,
		});
	}
}
