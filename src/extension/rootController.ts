import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { describeNotice, describeState } from '../core/describe';
import { levelOf, type Notice, type SessionState } from '../core/events';
import type { OtaOptions } from '../core/options';
import type { MergePlan, MergeProblem } from '../core/mergePlan';
import { RootOwnedError } from '../core/ownership';
import { resolvePython } from '../core/program';
import { TracebackParser } from '../core/traceback';
import { Session, type UpdateOutcome } from '../core/session';
import type { Journal, RollbackResult } from '../core/transaction';
import type { InterpreterChoice, Interpreters } from './interpreter';
import { OutputBatcher } from './outputBatcher';
import { StatusItem } from './statusItem';
import { tracebackDiagnostics } from './tracebackLinks';

const t = vscode.l10n.t;

/** Tells whether two option sets run the program with the same interpreter and environment. */
function sameRun(a: OtaOptions, b: OtaOptions): boolean {
	return a.python === b.python && JSON.stringify(a.env) === JSON.stringify(b.env);
}

const CHANNEL_LEVELS = { INFO: 'info', DEBUG: 'info', WARNING: 'warn', ERROR: 'error' } as const;

/** The part of a root that changed: its state, the deposit's content or outlook, or main/. */
export type RootChange = 'state' | 'deposit' | 'main';

export interface RootInfo {
	folder: vscode.WorkspaceFolder;
	/** Absolute path of the OTA root. */
	root: string;
	options: OtaOptions;
}

/**
 * One OTA root in the editor: owns its engine session and status-bar item, renders the
 * session's events into the shared output channel, and shows the few notifications
 * worth interrupting for (a crash, a rejected update, a missing interpreter).
 */
export class RootController implements vscode.Disposable {
	private session: Session;
	private readonly status: StatusItem;
	private unsubscribe: Array<() => void> = [];
	/** Set when settings changed while supervising; the next start or restart applies them. */
	private settingsPending = false;
	/** The interpreter chosen for the last start, and where it came from. */
	private interpreter: InterpreterChoice | undefined;
	/** The interpreter the next start uses, as found on disk; undefined when there is none. */
	private plannedPython: string | undefined;
	/** Versions of the interpreters seen, by path. */
	private readonly versions = new Map<string, string | undefined>();
	private disposed = false;
	/** The program's stderr, read for Python tracebacks. */
	private readonly tracebacks = new TracebackParser();
	/** Frames of the last crash, until a run lasts the minimum uptime or exits cleanly. */
	private readonly crashProblems = vscode.languages.createDiagnosticCollection('pythonOta.crash');
	private crashClearTimer: ReturnType<typeof setTimeout> | undefined;
	/** Set when the crash problems belong to an update that was rolled back. */
	private crashOfRejectedUpdate = false;
	private startedAt: Date | undefined;
	/** Set when the last update was rolled back because its new version failed, until the next update. */
	private rolledBack = false;
	/** Set while files in the deposit wait for it to settle. */
	private depositWaiting = false;
	/** Set when the last batch was rejected, until an update applies; shown in the status bar. */
	private lastUpdateRejected = false;
	private python: string | undefined;
	/** Set when no interpreter could be found, until a program starts. */
	private pythonMissingValue = false;
	private readonly changeEmitter = new vscode.EventEmitter<RootChange>();
	/** Fires when the engine changed the state, the deposit's outlook or main/. */
	readonly onDidChange = this.changeEmitter.event;

	constructor(
		private info: RootInfo,
		private readonly output: OutputBatcher,
		private readonly diagnostics: vscode.DiagnosticCollection,
		private readonly label: string,
		showLabel: boolean,
		private readonly interpreters: Interpreters,
	) {
		this.status = new StatusItem(info.root, showLabel ? label : undefined);
		this.session = this.createSession(info.options);
		this.render('stopped');
		void this.refreshInterpreter();
	}

	get root(): string {
		return this.info.root;
	}

	get folder(): vscode.WorkspaceFolder {
		return this.info.folder;
	}

	get name(): string {
		return this.label;
	}

	get state(): SessionState {
		return this.session.state;
	}

	get logFilePath(): string | undefined {
		return this.session.logFilePath;
	}

	get options(): OtaOptions {
		return this.info.options;
	}

	get rootUri(): vscode.Uri {
		return vscode.Uri.file(this.info.root);
	}

	get pythonMissing(): boolean {
		return this.pythonMissingValue;
	}

	/** Deposit files (relative, with `/`) that wait for the deposit to settle. */
	get waitingFiles(): readonly string[] {
		return this.session.waitingFiles;
	}

	/** Problems of the last rejected batch, until an update applies. */
	get lastProblems(): readonly MergeProblem[] {
		return this.session.lastProblems;
	}

	ignores(relativePath: string, isFolder: boolean): boolean {
		return this.session.ignores(relativePath, isFolder);
	}

	previewDeposit(): Promise<MergePlan & { hasDeletionList: boolean }> {
		return this.session.previewDeposit();
	}

	/** Returns the newest update if it is still applied. */
	async lastUpdate(): Promise<Journal | undefined> {
		const newest = (await this.session.history())[0];
		return newest?.status === 'applied' ? newest : undefined;
	}

	private createSession(options: OtaOptions): Session {
		const session = new Session({ root: this.info.root, options, ownerKind: t('a VS Code window') });
		this.unsubscribe = [
			session.on('state', (state) => {
				this.render(state);
				this.changeEmitter.fire('state');
			}),
			session.on('depositWaiting', (waiting) => {
				this.depositWaiting = waiting;
				this.render(session.state);
				this.changeEmitter.fire('deposit');
			}),
			// A failure in rendering must never break the engine's own handling of the event.
			session.on('notice', (notice) => this.guarded(() => this.onNotice(notice))),
			session.on('output', (stream, line) => this.guarded(() => {
				this.output.add(stream === 'stdout' ? 'info' : 'warn', `[${this.label}] [${stream}] ${line}`);
				if (stream === 'stderr') {
					this.tracebacks.push(line);
				}
			})),
		];
		return session;
	}

	/** Runs an event handler of the editor side; an error is logged instead of reaching the engine. */
	private guarded(handler: () => void): void {
		try {
			handler();
		} catch (error) {
			this.output.add('error', `[${this.label}] ${t('Showing an engine event failed: {0}', (error as Error).stack ?? String(error))}`);
		}
	}

	/** Takes new settings: at once when stopped, otherwise at the next start or restart. */
	updateOptions(options: OtaOptions): void {
		this.info = { ...this.info, options };
		this.settingsPending = true;
		if (this.session.isSupervising) {
			this.output.add('info', `[${this.label}] ${t('Settings changed; they apply at the next restart.')}`);
		} else {
			void this.refreshInterpreter();
		}
	}

	/**
	 * Returns the settings with the interpreter and environment variables to run: the
	 * `pythonOta.pythonPath` setting, else the Python extension's selection for the folder.
	 * Variables from the settings win over those of the Python extension.
	 */
	private async effectiveOptions(): Promise<OtaOptions> {
		const options = this.info.options;
		const choice = await this.interpreters.choose(this.info.folder, this.configuredPython(options.python));
		this.interpreter = choice;
		const resolved = resolvePython(choice.python).python;
		this.setPythonMissing(resolved === undefined);
		if (resolved !== this.plannedPython) {
			// The tooltip names the interpreter before the first start too.
			this.plannedPython = resolved;
			this.render(this.session.state);
			if (resolved !== undefined && !this.versions.has(resolved)) {
				void this.interpreters.version(resolved).then((version) => {
					this.versions.set(resolved, version);
					this.render(this.session.state);
				});
			}
		}
		return { ...options, python: choice.python, env: { ...choice.env, ...options.env } };
	}

	/**
	 * Resolves the `pythonOta.pythonPath` setting as people write it in settings.json:
	 * `${workspaceFolder}` stands for the folder, and a relative path such as
	 * `.venv/bin/python` is taken from the folder. A bare name is looked up on PATH.
	 */
	private configuredPython(setting: string | undefined): string | undefined {
		if (setting === undefined) {
			return undefined;
		}
		const folder = this.info.folder.uri.fsPath;
		const expanded = setting.replace(/\$\{workspaceFolder\}/g, folder);
		const isBareName = !expanded.includes('/') && !expanded.includes('\\');
		return isBareName || path.isAbsolute(expanded) ? expanded : path.resolve(folder, expanded);
	}

	private setPythonMissing(missing: boolean): void {
		if (missing !== this.pythonMissingValue) {
			this.pythonMissingValue = missing;
			this.changeEmitter.fire('state');
		}
	}

	/**
	 * Reads the interpreter again after a change in the Python extension or the settings. A
	 * stopped session takes it at once; a running program keeps its interpreter until the
	 * next start or restart, as with settings.
	 */
	async refreshInterpreter(): Promise<void> {
		const effective = await this.effectiveOptions();
		if (this.disposed) {
			return;
		}
		if (!this.session.isSupervising) {
			if (this.settingsPending || !sameRun(effective, this.session.options)) {
				await this.replaceSession(effective);
			}
			return;
		}
		if (!sameRun(effective, this.session.options) && !this.settingsPending) {
			this.settingsPending = true;
			this.output.add('info', `[${this.label}] ${t('The interpreter or its environment changed to {0}; the change applies at the next restart.', effective.python ?? 'python3')}`);
		}
	}

	/** Replaces the session when the settings or the interpreter changed; stops the old one first. */
	private async takeNewOptions(): Promise<void> {
		const effective = await this.effectiveOptions();
		if (this.settingsPending || !sameRun(effective, this.session.options)) {
			await this.session.stop();
			await this.replaceSession(effective);
		}
	}

	private async replaceSession(options: OtaOptions): Promise<void> {
		this.settingsPending = false;
		const old = this.session;
		for (const remove of this.unsubscribe) {
			remove();
		}
		this.session = this.createSession(options);
		// New ignore patterns or a new marker file change what the deposit's entries will do.
		this.changeEmitter.fire('deposit');
		await old.dispose();
	}

	async start(): Promise<void> {
		if (this.session.isSupervising && this.session.pid !== undefined && !this.settingsPending) {
			void vscode.window.showInformationMessage(t('{0} is already running (pid {1}). Use Restart to start it again.', this.label, this.session.pid));
			return;
		}
		await this.takeNewOptions();
		try {
			await this.session.start();
		} catch (error) {
			if (!(error instanceof RootOwnedError)) {
				throw error;
			}
			this.status.renderOwnedElsewhere(t('supervised elsewhere'), t('{0} is supervised by {1} (pid {2} on {3}). Stop it there first.', this.info.root, error.owner.kind, error.owner.pid, error.owner.hostname));
			void vscode.window.showWarningMessage(t('{0} is supervised by {1} (pid {2} on {3}). Stop it there first.', this.label, error.owner.kind, error.owner.pid, error.owner.hostname));
		}
	}

	/** Rolls back the last update, or every update down to and including `id`. */
	rollBack(id?: string): Promise<RollbackResult[]> {
		return this.session.rollBack(id);
	}

	history(): Promise<Journal[]> {
		return this.session.history();
	}

	stop(): Promise<void> {
		return this.session.stop();
	}

	async restart(): Promise<void> {
		const effective = await this.effectiveOptions();
		if (this.settingsPending || !sameRun(effective, this.session.options)) {
			return this.start();
		}
		await this.session.restart();
	}

	async applyNow(): Promise<UpdateOutcome> {
		if (!this.session.isSupervising) {
			// The compile check runs in the program's interpreter, so it must be the current one.
			await this.takeNewOptions();
		}
		return this.session.applyNow();
	}

	private onNotice(notice: Notice): void {
		const channelLevel = CHANNEL_LEVELS[levelOf(notice)];
		for (const line of describeNotice(notice, t).split('\n')) {
			this.output.add(channelLevel, `[${this.label}] [supervisor] ${line}`);
		}
		this.fireChangesOf(notice);
		switch (notice.code) {
			case 'PROGRAM_STARTED':
				this.tracebacks.clear();
				this.scheduleCrashClear();
				this.startedAt = new Date();
				this.python = notice.python;
				this.setPythonMissing(false);
				void this.logInterpreter(notice.python);
				break;
			case 'PROGRAM_EXITED':
				this.onProgramExited(notice.exitCode);
				break;
			case 'PROGRAM_STOPPED':
				clearTimeout(this.crashClearTimer);
				break;
			case 'CRASHED':
				this.output.flush();
				void this.showCrash();
				break;
			case 'UPDATE_REJECTED':
				this.lastUpdateRejected = true;
				this.render(this.session.state);
				this.showSyntaxErrors(notice.problems);
				void this.showError(t('{0}: the update was rejected and nothing was moved. The log names each path and what to do.', this.label));
				break;
			case 'UPDATE_APPLIED':
				void vscode.commands.executeCommand('setContext', 'pythonOta.updated', true);
				this.clearRejection();
				this.crashOfRejectedUpdate = false;
				this.crashProblems.clear();
				break;
			case 'REJECTION_CLEARED':
				this.clearRejection();
				break;
			case 'ROLLED_BACK':
				this.lastUpdateRejected = false;
				this.diagnostics.clear();
				if (notice.reason === 'crash') {
					this.rolledBack = true;
					this.keepCrashOfRejectedUpdate(notice.rejectedFolder);
					this.render(this.session.state);
					void this.showError(t('{0}: the new version failed {1} s after it started, so the update was rolled back and the previous version runs again. Its files are in {2}.', this.label, ((notice.uptimeMs ?? 0) / 1000).toFixed(1), notice.rejectedFolder));
				}
				break;
			case 'MERGE_FAILED':
				void this.showError(t('{0}: the merge failed: {1}', this.label, notice.message));
				break;
			case 'PYTHON_NOT_FOUND':
				this.setPythonMissing(true);
				this.python = undefined;
				this.plannedPython = undefined;
				this.render(this.session.state);
				void this.showMissingPython(notice.tried);
				break;
		}
	}

	private clearRejection(): void {
		this.lastUpdateRejected = false;
		this.rolledBack = false;
		this.diagnostics.clear();
		this.render(this.session.state);
	}

	private fireChangesOf(notice: Notice): void {
		switch (notice.code) {
			case 'UPDATE_APPLIED':
			case 'ROLLED_BACK':
			case 'UPDATE_RECOVERED':
				this.changeEmitter.fire('main');
				this.changeEmitter.fire('deposit');
				break;
			case 'UPDATE_REJECTED':
			case 'REJECTION_CLEARED':
			case 'UNSETTLED_LEFT':
			case 'BATCH_CHANGED_DURING_STOP':
				this.changeEmitter.fire('deposit');
				break;
			case 'PYTHON_NOT_FOUND':
			case 'PROGRAM_STARTED':
				this.changeEmitter.fire('state');
				break;
		}
	}

	/** Puts syntax errors of deposited files into the Problems panel, until the next update. */
	private showSyntaxErrors(problems: readonly MergeProblem[]): void {
		this.diagnostics.clear();
		const byFile = new Map<string, vscode.Diagnostic[]>();
		for (const problem of problems) {
			if (problem.code !== 'SYNTAX_ERROR' || problem.file === undefined) {
				continue;
			}
			const line = Math.max(0, (problem.line ?? 1) - 1);
			const diagnostic = new vscode.Diagnostic(new vscode.Range(line, 0, line, Number.MAX_SAFE_INTEGER), problem.detail ?? t('syntax error'), vscode.DiagnosticSeverity.Error);
			diagnostic.source = t('Python OTA Update');
			byFile.set(problem.file, [...(byFile.get(problem.file) ?? []), diagnostic]);
		}
		for (const [file, diagnostics] of byFile) {
			this.diagnostics.set(vscode.Uri.file(file), diagnostics);
		}
	}

	/**
	 * Lists the innermost frames in main/ of a failed run's traceback in the Problems panel;
	 * a clean exit clears them.
	 */
	private onProgramExited(exitCode: number | undefined): void {
		clearTimeout(this.crashClearTimer);
		if (exitCode === 0) {
			this.crashProblems.clear();
			return;
		}
		const traceback = this.tracebacks.last;
		if (traceback !== undefined) {
			this.crashOfRejectedUpdate = false;
			this.crashProblems.clear();
			this.crashProblems.set(tracebackDiagnostics(traceback, path.join(this.info.root, 'main')));
		}
	}

	/** Clears the last crash's problems once the new run has lasted the minimum uptime. */
	private scheduleCrashClear(): void {
		clearTimeout(this.crashClearTimer);
		if (!this.crashOfRejectedUpdate) {
			this.crashClearTimer = setTimeout(() => this.crashProblems.clear(), this.session.options.minUptimeMs);
		}
	}

	/**
	 * Points the crash's problems at the rolled-back files in `rejected/<id>/`, because main/
	 * contains the previous version again. They stay until the next update, because the
	 * restored version running well proves nothing about the rejected one.
	 */
	private keepCrashOfRejectedUpdate(rejectedFolder: string): void {
		const mainFolder = path.join(this.info.root, 'main');
		const moved: Array<[vscode.Uri, vscode.Diagnostic[]]> = [];
		this.crashProblems.forEach((uri, diagnostics) => {
			const relative = path.relative(mainFolder, uri.fsPath);
			const rejected = path.join(rejectedFolder, relative);
			const inMain = relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
			moved.push([inMain && existsSync(rejected) ? vscode.Uri.file(rejected) : uri, [...diagnostics]]);
		});
		this.crashProblems.clear();
		this.crashProblems.set(moved);
		this.crashOfRejectedUpdate = true;
		clearTimeout(this.crashClearTimer);
	}

	/** Names the running interpreter, or else the one the next start uses, with its version once known. */
	private describePython(): string | undefined {
		const python = this.python ?? this.plannedPython;
		const version = python === undefined ? undefined : this.versions.get(python);
		if (python === undefined || version === undefined) {
			return python;
		}
		return t('{0} (Python {1})', python, version);
	}

	/** Logs which interpreter runs the program, its version and where the choice came from. */
	private async logInterpreter(python: string): Promise<void> {
		const version = await this.interpreters.version(python);
		this.versions.set(python, version);
		const source = this.interpreter?.source;
		const origin = source === 'setting'
			? t('set in pythonOta.pythonPath')
			: source === 'pythonExtension' ? t('selected in the Python extension') : t('found on PATH');
		const described = version === undefined ? python : t('{0} (Python {1})', python, version);
		this.output.add('info', `[${this.label}] [supervisor] ${t('Interpreter: {0}, {1}.', described, origin)}`);
		this.render(this.session.state);
	}

	private async showCrash(): Promise<void> {
		vscode.commands.executeCommand('pythonOta.showLog');
		const restart = t('Restart');
		const choice = await vscode.window.showErrorMessage(
			t('{0}: the program keeps failing soon after it starts, so it is no longer restarted. The output shows why.', this.label),
			restart,
		);
		if (choice === restart) {
			await this.restart();
		}
	}

	private async showError(message: string): Promise<void> {
		const showLog = t('Show Log');
		if (await vscode.window.showErrorMessage(message, showLog) === showLog) {
			await vscode.commands.executeCommand('pythonOta.showLog');
		}
	}

	private async showMissingPython(tried: string[]): Promise<void> {
		const openSettings = t('Open Settings');
		const select = t('Select Interpreter');
		const source = this.interpreter?.source;
		let message: string;
		if (source === 'setting') {
			message = t('{0}: pythonOta.pythonPath is {1}, which does not exist or is not an executable file. Correct the setting, or clear it to use the Python extension\'s interpreter or python3.', this.label, tried.join(', '));
		} else if (source === 'pythonExtension') {
			message = t('{0}: the interpreter selected in the Python extension, {1}, does not exist or is not an executable file. Select another one.', this.label, tried.join(', '));
		} else {
			message = t('{0}: no Python interpreter found (tried {1}). Install python3, or select the interpreter to use.', this.label, tried.join(', '));
		}
		const choice = await vscode.window.showErrorMessage(message, select, openSettings);
		if (choice === openSettings) {
			await vscode.commands.executeCommand('workbench.action.openSettings', 'pythonOta.pythonPath');
		} else if (choice === select) {
			await vscode.commands.executeCommand('pythonOta.selectInterpreter', this.info.root);
		}
	}

	private render(state: SessionState): void {
		if (state !== 'running') {
			this.startedAt = state === 'updating' || state === 'starting' ? this.startedAt : undefined;
		}
		if (state === 'stopped') {
			this.depositWaiting = false;
		}
		let stateText = describeState(state, t);
		if (this.depositWaiting && state !== 'updating' && state !== 'stopped') {
			stateText = t('{0}, deposit settling', stateText);
		} else if (this.lastUpdateRejected && state === 'running') {
			stateText = t('{0}, update rejected', stateText);
		} else if (this.rolledBack && state === 'running') {
			stateText = t('{0}, update rolled back', stateText);
		}
		this.status.render(state, stateText, {
			pid: this.session.pid,
			startedAt: state === 'running' ? this.startedAt : undefined,
			python: this.describePython(),
			entry: path.join(this.info.root, 'main', this.info.options.entry),
		});
		void vscode.commands.executeCommand('setContext', 'pythonOta.state', state);
	}

	killNow(): void {
		this.session.killNow();
	}

	signalNow(): void {
		this.session.signalNow();
	}

	async dispose(graceMs?: number): Promise<void> {
		this.disposed = true;
		await this.session.dispose(graceMs);
		for (const remove of this.unsubscribe) {
			remove();
		}
		this.status.dispose();
		this.changeEmitter.dispose();
		clearTimeout(this.crashClearTimer);
		this.crashProblems.dispose();
	}
}
