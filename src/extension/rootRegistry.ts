import * as path from 'node:path';
import * as vscode from 'vscode';
import { SETTINGS_SECTION } from '../core/layout';
import { readFolderSettings } from './configuration';
import type { Interpreters } from './interpreter';
import { OutputBatcher } from './outputBatcher';
import { RootController } from './rootController';
import { describeOptionsError, findRoots } from './roots';
import { OptionsError } from '../core/options';

const t = vscode.l10n.t;

/** Wait after a new deposit/ or main/main.py before the roots are found again. */
const NEW_ROOT_DELAY_MS = 300;

/**
 * The controllers of every OTA root in the workspace. Rebuilt when workspace folders or
 * `pythonOta.root` change; other setting changes go to the controller of that folder.
 */
export class RootRegistry implements vscode.Disposable {
	private controllers: RootController[] = [];
	private readonly disposables: vscode.Disposable[] = [];
	private readonly reportedProblems = new Set<string>();

	private readonly diagnostics = vscode.languages.createDiagnosticCollection('pythonOta');
	private readonly rootsEmitter = new vscode.EventEmitter<void>();
	/** Fires when roots were added or removed. */
	readonly onDidChangeRoots = this.rootsEmitter.event;
	private stateListeners: vscode.Disposable[] = [];

	constructor(
		private readonly output: OutputBatcher,
		private readonly channel: vscode.LogOutputChannel,
		private readonly interpreters: Interpreters,
	) {
		this.disposables.push(this.diagnostics, this.rootsEmitter);
		this.disposables.push(
			vscode.workspace.onDidChangeWorkspaceFolders(() => void this.refresh()),
			vscode.workspace.onDidChangeConfiguration((event) => this.onConfigurationChanged(event)),
			this.watchForNewRoots(),
			interpreters.onDidChange((folder) => {
				for (const controller of this.controllers) {
					if (folder === undefined || folder.uri.toString() === controller.folder.uri.toString()) {
						void controller.refreshInterpreter();
					}
				}
			}),
		);
	}

	get all(): readonly RootController[] {
		return this.controllers;
	}

	/** Finds the roots again; keeps the controllers of roots that are still there. */
	async refresh(): Promise<void> {
		const { roots, problems } = findRoots();
		for (const problem of problems) {
			this.channel.error(problem.message);
			if (!this.reportedProblems.has(problem.message)) {
				this.reportedProblems.add(problem.message);
				const openSettings = t('Open Settings');
				void vscode.window.showErrorMessage(problem.message, openSettings).then((choice) => {
					if (choice === openSettings) {
						void vscode.commands.executeCommand('workbench.action.openSettings', SETTINGS_SECTION);
					}
				});
			}
		}
		const kept: RootController[] = [];
		const gone: RootController[] = [];
		for (const controller of this.controllers) {
			(roots.some((info) => info.root === controller.root) ? kept : gone).push(controller);
		}
		const showLabels = roots.length > 1;
		const added = roots
			.filter((info) => !kept.some((controller) => controller.root === info.root))
			.map((info) => new RootController(info, this.output, this.diagnostics, this.labelOf(info.folder, info.root), showLabels, this.interpreters));
		this.controllers = [...kept, ...added];
		void vscode.commands.executeCommand('setContext', 'pythonOta.hasRoot', this.controllers.length > 0);
		this.listenToStates();
		await Promise.all(gone.map((controller) => controller.dispose()));
		if (added.length > 0 || gone.length > 0) {
			this.rootsEmitter.fire();
		}
		if (vscode.workspace.isTrusted) {
			await Promise.all(added.map((controller) => this.autoStart(controller)));
		}
	}

	/**
	 * Finds roots again when a deposit/ or main/main.py appears, so that an OTA folder made in
	 * a terminal or by an upload shows up without a reload. The refresh waits for the burst of
	 * events that creating a layout makes.
	 */
	private watchForNewRoots(): vscode.Disposable {
		const watcher = vscode.workspace.createFileSystemWatcher('{deposit,*/deposit,main/main.py,*/main/main.py}', false, true, true);
		let timer: ReturnType<typeof setTimeout> | undefined;
		watcher.onDidCreate(() => {
			clearTimeout(timer);
			timer = setTimeout(() => void this.refresh(), NEW_ROOT_DELAY_MS);
		});
		return { dispose: () => {
			clearTimeout(timer);
			watcher.dispose();
		} };
	}

	/** Keeps the context keys that choose the view's title actions in step with every root's state. */
	private listenToStates(): void {
		for (const listener of this.stateListeners) {
			listener.dispose();
		}
		const update = (): void => {
			const states = this.controllers.map((controller) => controller.state);
			void vscode.commands.executeCommand('setContext', 'pythonOta.canStart', states.some((state) => state === 'stopped'));
			void vscode.commands.executeCommand('setContext', 'pythonOta.canStop', states.some((state) => state !== 'stopped'));
		};
		this.stateListeners = this.controllers.map((controller) => controller.onDidChange((change) => {
			if (change === 'state') {
				update();
			}
		}));
		update();
	}

	private labelOf(folder: vscode.WorkspaceFolder, root: string): string {
		const relative = path.relative(folder.uri.fsPath, root);
		return relative === '' ? folder.name : `${folder.name}/${relative.split(path.sep).join('/')}`;
	}

	/** Starts the roots whose `pythonOta.autoStart` is on; called at activation and on trust. */
	async autoStartAll(): Promise<void> {
		await Promise.all(this.controllers.map((controller) => this.autoStart(controller)));
	}

	private async autoStart(controller: RootController): Promise<void> {
		if (readFolderSettings(controller.folder).autoStart && controller.state === 'stopped') {
			await controller.start();
		}
	}

	private onConfigurationChanged(event: vscode.ConfigurationChangeEvent): void {
		if (!event.affectsConfiguration(SETTINGS_SECTION)) {
			return;
		}
		if (event.affectsConfiguration(`${SETTINGS_SECTION}.root`)) {
			void this.refresh();
			return;
		}
		for (const controller of this.controllers) {
			if (!event.affectsConfiguration(SETTINGS_SECTION, controller.folder.uri)) {
				continue;
			}
			try {
				controller.updateOptions(readFolderSettings(controller.folder).options);
			} catch (error) {
				if (!(error instanceof OptionsError)) {
					throw error;
				}
				this.channel.error(describeOptionsError(error, controller.name));
			}
		}
	}

	/** Sends the stop signal to every program's tree synchronously, without waiting. */
	signalNow(): void {
		for (const controller of this.controllers) {
			controller.signalNow();
		}
	}

	/** SIGKILL to every program's tree, synchronously. */
	killNow(): void {
		for (const controller of this.controllers) {
			controller.killNow();
		}
	}

	/** Stops every program, waiting at most `graceMs` after the stop signal before SIGKILL. */
	async dispose(graceMs?: number): Promise<void> {
		for (const disposable of this.disposables) {
			disposable.dispose();
		}
		for (const listener of this.stateListeners) {
			listener.dispose();
		}
		const controllers = this.controllers;
		this.controllers = [];
		await Promise.all(controllers.map((controller) => controller.dispose(graceMs)));
	}
}
