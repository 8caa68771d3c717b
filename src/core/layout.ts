import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseJsonc, printParseErrorCode, type ParseError } from 'jsonc-parser';
import type { OtaOptions, RawOptions } from './options';

/** The three folders of an OTA root, with the names the original `ota-update.py` used. */
export interface OtaLayout {
	root: string;
	deposit: string;
	main: string;
	logs: string;
}

export function layoutOf(root: string): OtaLayout {
	const absolute = path.resolve(root);
	return {
		root: absolute,
		deposit: path.join(absolute, 'deposit'),
		main: path.join(absolute, 'main'),
		logs: path.join(absolute, 'logs'),
	};
}

export class LayoutError extends Error {
	constructor(
		readonly code: 'NOT_A_FOLDER',
		readonly path: string,
	) {
		super(`${path} exists but is not a folder; rename or remove it so that the OTA folder can be created.`);
		this.name = 'LayoutError';
	}
}

/** Creates whichever of `deposit/`, `main/` and `logs/` is missing; returns the ones created. */
export async function ensureLayout(layout: OtaLayout): Promise<string[]> {
	const created: string[] = [];
	for (const folder of [layout.deposit, layout.main, layout.logs]) {
		const stat = await fs.promises.lstat(folder).catch((error: NodeJS.ErrnoException) => {
			if (error.code === 'ENOENT') {
				return undefined;
			}
			throw error;
		});
		if (stat === undefined) {
			await fs.promises.mkdir(folder, { recursive: true });
			created.push(folder);
		} else if (!stat.isDirectory()) {
			throw new LayoutError('NOT_A_FOLDER', folder);
		}
	}
	return created;
}

/** True when the folder looks like an OTA root: it has `deposit/` or `main/<entry>`. */
export function looksLikeOtaRoot(folder: string, entry = 'main.py'): boolean {
	const layout = layoutOf(folder);
	return fs.existsSync(layout.deposit) || fs.existsSync(path.join(layout.main, entry));
}

/**
 * VS Code setting names (without the `pythonOta.` prefix) and the option each one sets.
 * The extension and the headless command read the same names, so a folder configured
 * in the editor runs the same way from a systemd unit.
 */
export const SETTING_KEYS: ReadonlyArray<readonly [setting: string, option: keyof OtaOptions]> = [
	['entry', 'entry'],
	['pythonPath', 'python'],
	['args', 'args'],
	['env', 'env'],
	['settleTime', 'settleTimeMs'],
	['stopTimeout', 'stopTimeoutMs'],
	['stopSignal', 'stopSignal'],
	['minUptime', 'minUptimeMs'],
	['ignore', 'ignore'],
	['markerFile', 'markerFile'],
	['logs.maxFiles', 'maxLogFiles'],
	['logs.maxTotalBytes', 'maxLogBytes'],
	['rollback.automatic', 'autoRollback'],
	['check.command', 'checkCommand'],
	['check.timeout', 'checkTimeoutMs'],
	['programLock.maxWait', 'programLockMaxWaitMs'],
	['history.maxUpdates', 'maxHistory'],
];

export const SETTINGS_SECTION = 'pythonOta';

export class SettingsFileError extends Error {
	constructor(
		readonly path: string,
		readonly detail: string,
	) {
		super(`Cannot read ${path}: ${detail}. Fix the file or remove the pythonOta settings from it.`);
		this.name = 'SettingsFileError';
	}
}

/** Reads the `pythonOta.*` settings of `<folder>/.vscode/settings.json`, if the file exists. */
export async function readWorkspaceSettings(folder: string): Promise<RawOptions> {
	const file = path.join(folder, '.vscode', 'settings.json');
	let text: string;
	try {
		text = await fs.promises.readFile(file, 'utf8');
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
			return {};
		}
		throw new SettingsFileError(file, (error as Error).message);
	}
	const errors: ParseError[] = [];
	const settings: unknown = parseJsonc(text, errors, { allowTrailingComma: true });
	if (errors.length > 0) {
		const first = errors[0];
		const line = text.slice(0, first.offset).split('\n').length;
		throw new SettingsFileError(file, `${printParseErrorCode(first.error)} at line ${line}`);
	}
	if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
		throw new SettingsFileError(file, 'the top level is not an object');
	}
	const values = settings as Record<string, unknown>;
	const raw: RawOptions = {};
	for (const [setting, option] of SETTING_KEYS) {
		const value = values[`${SETTINGS_SECTION}.${setting}`];
		if (value !== undefined) {
			raw[option] = value;
		}
	}
	return raw;
}
