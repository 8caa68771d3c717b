import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { PVSC_EXTENSION_ID, PythonExtension, type EnvironmentPath, type ResolvedEnvironment, type VersionInfo } from '@vscode/python-extension';
import { execa } from 'execa';
import * as vscode from 'vscode';
import { SETTINGS_SECTION } from '../core/layout';
import { findExecutable } from '../core/program';

const t = vscode.l10n.t;

/** Command of the Python extension that shows its interpreter picker. */
const PYTHON_SELECT_INTERPRETER_COMMAND = 'python.setInterpreter';
/** Time the Python extension gets to activate and resolve `ready`, which usually takes a few
 * seconds (an estimate, not measured here). Only the first caller waits this long, so a hung
 * extension delays one start. Later callers use the API once it has arrived. */
const API_TIMEOUT_MS = 20_000;
/** Time one call into the Python extension may take. Resolving an environment can start the
 * interpreter, which on a Raspberry Pi with an SD card can take a few seconds. */
const CALL_TIMEOUT_MS = 10_000;
/** Time `<python> --version` may take, for the same reason. */
const VERSION_TIMEOUT_MS = 10_000;

const TIMED_OUT = Symbol('timed out');

export type InterpreterSource = 'setting' | 'pythonExtension' | 'path';

export interface InterpreterChoice {
	/** Interpreter to run; undefined means the engine's own fallback (python3, then python on PATH). */
	python: string | undefined;
	/** Variables of the Python extension for this folder (its .env file) that differ from process.env; {} otherwise. */
	env: Record<string, string>;
	source: InterpreterSource;
}

/** The link to one installed copy of the Python extension, from activation to uninstall. */
interface Connection {
	/** Settles with the API once the extension is active and `ready` has resolved. */
	readonly api: Promise<PythonExtension>;
	/** The API, once `api` has resolved. */
	resolved: PythonExtension | undefined;
	/** Set when activation or `ready` rejected. */
	failed: boolean;
	/** Set when a caller waited API_TIMEOUT_MS for `api` in vain. */
	timedOut: boolean;
	disposed: boolean;
	readonly subscriptions: vscode.Disposable[];
}

/**
 * Chooses the interpreter and the extra environment variables for the program of a workspace
 * folder, and reports when the Python extension's selection for a folder changes.
 */
export class Interpreters implements vscode.Disposable {
	private readonly changeEmitter = new vscode.EventEmitter<vscode.WorkspaceFolder | undefined>();
	/** Fires with the workspace folder whose interpreter or environment variables changed in the Python extension (undefined: any/all). */
	readonly onDidChange: vscode.Event<vscode.WorkspaceFolder | undefined> = this.changeEmitter.event;

	private connection: Connection | undefined;
	/** Identity (version and folder) of the installed Python extension; undefined when none is installed. */
	private installedPythonExtension: string | undefined;
	private readonly extensionsListener: vscode.Disposable;
	/** Versions read by running the interpreter, by executable path, modification time and size. */
	private readonly versionCache = new Map<string, Promise<string | undefined>>();
	private readonly loggedMessages = new Set<string>();

	/** `log` receives a warning for each distinct failure of the Python extension, once. */
	constructor(private readonly log: (message: string) => void) {
		this.installedPythonExtension = describeInstalledPythonExtension();
		this.extensionsListener = vscode.extensions.onDidChange(() => this.onExtensionsChanged());
	}

	/**
	 * Chooses the interpreter for `folder`. Order: the explicit pythonOta.pythonPath setting
	 * (`configured`), then the Python extension's active environment for the folder, then the
	 * engine's PATH lookup. The Python extension's environment variables apply whichever
	 * interpreter is chosen, as they do for the Python extension's own runs. A failing Python
	 * extension is logged once and treated as absent, so this method does not throw.
	 */
	async choose(folder: vscode.WorkspaceFolder, configured: string | undefined): Promise<InterpreterChoice> {
		const api = await this.pythonApi();
		const env = api === undefined ? {} : this.environmentVariables(api, folder);
		if (configured !== undefined && configured.trim() !== '') {
			return { python: configured, env, source: 'setting' };
		}
		const python = api === undefined ? undefined : await this.activeInterpreter(api, folder);
		if (python !== undefined) {
			return { python, env, source: 'pythonExtension' };
		}
		return { python: undefined, env, source: 'path' };
	}

	/**
	 * Returns the version of an interpreter, such as "3.11.7": from the Python extension's
	 * `resolveEnvironment` when it can resolve the path, otherwise by running `<python>
	 * --version` once per executable file. Undefined when neither source reports a version.
	 */
	async version(python: string): Promise<string | undefined> {
		const api = await this.pythonApi();
		if (api !== undefined) {
			const resolved = await this.resolveEnvironment(api, python);
			const fromExtension = resolved?.version === undefined ? undefined : formatVersion(resolved.version);
			if (fromExtension !== undefined) {
				return fromExtension;
			}
		}
		return this.versionFromInterpreter(python);
	}

	dispose(): void {
		this.disconnect();
		this.extensionsListener.dispose();
		this.changeEmitter.dispose();
	}

	/**
	 * Returns the Python extension's API, activating the extension on first use. Undefined when
	 * the extension is not installed, failed to activate, or is still activating after a caller
	 * already waited API_TIMEOUT_MS.
	 */
	private async pythonApi(): Promise<PythonExtension | undefined> {
		const connection = this.connect();
		if (connection === undefined || connection.failed) {
			return undefined;
		}
		if (connection.resolved !== undefined) {
			return connection.resolved;
		}
		if (connection.timedOut) {
			return undefined;
		}
		const result = await withDeadline(connection.api, API_TIMEOUT_MS).catch(() => undefined);
		if (result !== TIMED_OUT) {
			return result;
		}
		if (!connection.disposed && connection.resolved === undefined && !connection.failed) {
			connection.timedOut = true;
			this.logOnce(t('The Python extension did not become ready within {0} s, so its selected interpreter is not used until it does.', API_TIMEOUT_MS / 1000));
		}
		return connection.resolved;
	}

	/** Returns the connection to the installed Python extension, creating it on first use; undefined when none is installed. */
	private connect(): Connection | undefined {
		if (this.connection !== undefined) {
			return this.connection;
		}
		if (vscode.extensions.getExtension(PVSC_EXTENSION_ID) === undefined) {
			return undefined;
		}
		const connection: Connection = {
			api: activatePythonExtension(),
			resolved: undefined,
			failed: false,
			timedOut: false,
			disposed: false,
			subscriptions: [],
		};
		connection.api.then(
			(api) => this.onConnected(connection, api),
			(error: unknown) => {
				connection.failed = true;
				if (!connection.disposed) {
					this.logOnce(t('The Python extension failed to activate, so its selected interpreter is not used: {0}', errorMessage(error)));
				}
			},
		);
		this.connection = connection;
		return connection;
	}

	private onConnected(connection: Connection, api: PythonExtension): void {
		if (connection.disposed) {
			return;
		}
		connection.resolved = api;
		try {
			connection.subscriptions.push(
				api.environments.onDidChangeActiveEnvironmentPath((event) => this.changeEmitter.fire(workspaceFolderOf(event.resource))),
				api.environments.onDidEnvironmentVariablesChange((event) => this.changeEmitter.fire(workspaceFolderOf(event.resource))),
			);
		} catch (error) {
			this.logOnce(t('Listening to the Python extension\'s interpreter changes failed, so a new selection applies only from the next start: {0}', errorMessage(error)));
		}
		if (connection.timedOut) {
			// A caller gave up waiting and fell back to PATH; its choice can now be made again.
			this.changeEmitter.fire(undefined);
		}
	}

	private disconnect(): void {
		const connection = this.connection;
		this.connection = undefined;
		if (connection === undefined) {
			return;
		}
		connection.disposed = true;
		for (const subscription of connection.subscriptions) {
			subscription.dispose();
		}
	}

	/** Drops the connection when the Python extension is installed, updated or removed, so the next choice uses the new state. */
	private onExtensionsChanged(): void {
		const installed = describeInstalledPythonExtension();
		if (installed === this.installedPythonExtension) {
			return;
		}
		this.installedPythonExtension = installed;
		this.disconnect();
		this.loggedMessages.clear();
		this.changeEmitter.fire(undefined);
	}

	/**
	 * Returns the executable of the environment that the Python extension selected for
	 * `folder`, or undefined when it selected none. A bare command name such as `python` is
	 * the Python extension's default when nothing is selected, so it counts as no selection.
	 */
	private async activeInterpreter(api: PythonExtension, folder: vscode.WorkspaceFolder): Promise<string | undefined> {
		let active: EnvironmentPath;
		try {
			active = api.environments.getActiveEnvironmentPath(folder.uri);
		} catch (error) {
			this.logOnce(t('The Python extension failed to report the interpreter for {0}: {1}', folder.name, errorMessage(error)));
			return undefined;
		}
		if (!path.isAbsolute(active.path)) {
			return undefined;
		}
		const executable = (await this.resolveEnvironment(api, active))?.executable.uri?.fsPath;
		if (executable !== undefined) {
			return executable;
		}
		// An environment that the extension cannot resolve may still be a usable executable file.
		if (findExecutable(active.path) !== undefined) {
			return active.path;
		}
		this.logOnce(t('The interpreter selected in the Python extension for {0} was not found: {1}. python3 or python from PATH runs the program instead.', folder.name, active.path));
		return undefined;
	}

	private async resolveEnvironment(api: PythonExtension, environment: EnvironmentPath | string): Promise<ResolvedEnvironment | undefined> {
		const name = typeof environment === 'string' ? environment : environment.path;
		try {
			const result = await withDeadline(Promise.resolve(api.environments.resolveEnvironment(environment)), CALL_TIMEOUT_MS);
			if (result === TIMED_OUT) {
				this.logOnce(t('The Python extension did not resolve the environment {0} within {1} s.', name, CALL_TIMEOUT_MS / 1000));
				return undefined;
			}
			return result;
		} catch (error) {
			this.logOnce(t('The Python extension failed to resolve the environment {0}: {1}', name, errorMessage(error)));
			return undefined;
		}
	}

	/** Returns the variables of the Python extension for `folder` that differ from the extension host's own environment. */
	private environmentVariables(api: PythonExtension, folder: vscode.WorkspaceFolder): Record<string, string> {
		let variables: Readonly<Record<string, string | undefined>>;
		try {
			variables = api.environments.getEnvironmentVariables(folder.uri);
		} catch (error) {
			this.logOnce(t('The Python extension failed to report the environment variables for {0}: {1}', folder.name, errorMessage(error)));
			return {};
		}
		const differing: Record<string, string> = {};
		for (const [name, value] of Object.entries(variables ?? {})) {
			if (typeof value === 'string' && process.env[name] !== value) {
				differing[name] = value;
			}
		}
		return differing;
	}

	private async versionFromInterpreter(python: string): Promise<string | undefined> {
		const executable = findExecutable(python);
		if (executable === undefined) {
			return undefined;
		}
		let key: string;
		try {
			// stat follows symbolic links, so an environment whose link now points to another
			// interpreter gets a new key and is run again.
			const stats = await fs.stat(executable);
			key = `${executable}\0${stats.mtimeMs}\0${stats.size}`;
		} catch {
			return undefined;
		}
		let version = this.versionCache.get(key);
		if (version === undefined) {
			version = readVersion(executable);
			this.versionCache.set(key, version);
		}
		return version;
	}

	private logOnce(message: string): void {
		if (!this.loggedMessages.has(message)) {
			this.loggedMessages.add(message);
			this.log(message);
		}
	}
}

/**
 * Runs the interpreter picker: the Python extension's own one when it is installed, otherwise
 * a file picker whose choice is written to `pythonOta.pythonPath` of `folder`.
 */
export async function selectInterpreter(folder: vscode.WorkspaceFolder): Promise<void> {
	if (vscode.extensions.getExtension(PVSC_EXTENSION_ID) === undefined) {
		await selectInterpreterFile(folder);
		return;
	}
	try {
		await vscode.commands.executeCommand(PYTHON_SELECT_INTERPRETER_COMMAND);
	} catch (error) {
		const browse = t('Browse...');
		const choice = await vscode.window.showErrorMessage(
			t('The Python extension\'s interpreter picker failed: {0}. Browse for the interpreter file instead?', errorMessage(error)),
			browse,
		);
		if (choice === browse) {
			await selectInterpreterFile(folder);
		}
		return;
	}
	await warnIfSettingOverrides(folder);
}

/** Warns when pythonOta.pythonPath is set, because the setting wins over any selection in the Python extension. */
async function warnIfSettingOverrides(folder: vscode.WorkspaceFolder): Promise<void> {
	const configured = vscode.workspace.getConfiguration(SETTINGS_SECTION, folder.uri).get<string>('pythonPath', '');
	if (configured.trim() === '') {
		return;
	}
	const openSettings = t('Open Settings');
	const choice = await vscode.window.showWarningMessage(
		t('{0}: pythonOta.pythonPath is set to {1}, and it takes precedence over the interpreter selected in the Python extension. Clear the setting to use the selection.', folder.name, configured),
		openSettings,
	);
	if (choice === openSettings) {
		await vscode.commands.executeCommand('workbench.action.openSettings', `${SETTINGS_SECTION}.pythonPath`);
	}
}

async function selectInterpreterFile(folder: vscode.WorkspaceFolder): Promise<void> {
	const uris = await vscode.window.showOpenDialog({
		canSelectFiles: true,
		canSelectFolders: false,
		canSelectMany: false,
		defaultUri: folder.uri,
		openLabel: t('Select Interpreter'),
		title: t('Python interpreter for {0}', folder.name),
		filters: process.platform === 'win32' ? { [t('Executables')]: ['exe'] } : undefined,
	});
	const picked = uris?.[0];
	if (picked === undefined) {
		return;
	}
	const python = picked.fsPath;
	if (findExecutable(python) === undefined) {
		void vscode.window.showErrorMessage(t('{0} is not an executable file. Select a Python interpreter, such as /usr/bin/python3 or bin/python in a virtual environment.', python));
		return;
	}
	await vscode.workspace
		.getConfiguration(SETTINGS_SECTION, folder.uri)
		.update('pythonPath', python, vscode.ConfigurationTarget.WorkspaceFolder);
}

async function activatePythonExtension(): Promise<PythonExtension> {
	const api = await PythonExtension.api();
	await api.ready;
	return api;
}

/** Returns the installed Python extension's version and folder, or undefined when it is not installed. */
function describeInstalledPythonExtension(): string | undefined {
	const extension = vscode.extensions.getExtension(PVSC_EXTENSION_ID);
	if (extension === undefined) {
		return undefined;
	}
	const version: unknown = extension.packageJSON?.version;
	return `${String(version)}\0${extension.extensionPath}`;
}

/** Maps the folder of a Python extension event to the workspace's own folder object, so that listeners can compare by identity. */
function workspaceFolderOf(resource: vscode.WorkspaceFolder | vscode.Uri | undefined): vscode.WorkspaceFolder | undefined {
	if (resource === undefined) {
		return undefined;
	}
	const uri = resource instanceof vscode.Uri ? resource : resource.uri;
	return vscode.workspace.getWorkspaceFolder(uri) ?? (resource instanceof vscode.Uri ? undefined : resource);
}

/** Formats a version such as 3.11.7 or 3.13.0rc1; undefined when a part is unknown. */
function formatVersion(version: VersionInfo): string | undefined {
	const { major, minor, micro, release } = version;
	if (major === undefined || minor === undefined || micro === undefined) {
		return undefined;
	}
	const suffixes: Record<string, string> = { alpha: 'a', beta: 'b', candidate: 'rc' };
	const suffix = release !== undefined && release.level in suffixes ? `${suffixes[release.level]}${release.serial}` : '';
	return `${major}.${minor}.${micro}${suffix}`;
}

/** Runs `<python> --version`; Python 2 prints the version to stderr, Python 3 to stdout. */
async function readVersion(executable: string): Promise<string | undefined> {
	try {
		const result = await execa(executable, ['--version'], { timeout: VERSION_TIMEOUT_MS, reject: false, stdin: 'ignore' });
		return parseVersionOutput(`${result.stdout}\n${result.stderr}`);
	} catch {
		return undefined;
	}
}

/** Returns "3.11.7" from output such as "Python 3.11.7". */
function parseVersionOutput(output: string): string | undefined {
	return /^Python (\d+\.\d+(?:\.\d+)?\S*)/m.exec(output)?.[1];
}

/** Settles like `promise`, or with TIMED_OUT after `timeoutMs`. */
function withDeadline<T>(promise: Promise<T>, timeoutMs: number): Promise<T | typeof TIMED_OUT> {
	let timer: NodeJS.Timeout | undefined;
	const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
		timer = setTimeout(() => resolve(TIMED_OUT), timeoutMs);
	});
	return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function errorMessage(error: unknown): string {
	return error instanceof Error ? error.message : String(error);
}
