/**
 * The engine's settings as one typed object. Both the extension (from VS Code's
 * configuration) and the headless command (from `.vscode/settings.json` and flags)
 * produce a `RawOptions` and pass it through `resolveOptions`, so both validate the
 * same way and report the same errors.
 */

/** Quiet time after the last deposit event before a batch may be taken: long enough
 * for an FTP or scp client to move on to its next file, short enough to feel prompt. */
export const DEFAULT_SETTLE_TIME_MS = 2000;
/** Time between the stop signal and SIGKILL; a Python program that handles SIGTERM
 * usually finishes its `finally` blocks well within it. */
export const DEFAULT_STOP_TIMEOUT_MS = 5000;
/** A run shorter than this that ends in failure counts as a quick failure. */
export const DEFAULT_MIN_UPTIME_MS = 10_000;
/** Time a check command may take before it counts as failed. */
export const DEFAULT_CHECK_TIMEOUT_MS = 60_000;
/** Maximum time a program's lock file postpones an update. */
export const DEFAULT_PROGRAM_LOCK_MAX_WAIT_MS = 10 * 60_000;
/** Past updates whose journal and backup are kept for rollback. */
export const DEFAULT_MAX_HISTORY = 10;
/** Log files kept in `logs/`, oldest removed first. */
export const DEFAULT_MAX_LOG_FILES = 30;
/** Total size of `logs/` above which the oldest files are removed. */
export const DEFAULT_MAX_LOG_BYTES = 100 * 1024 * 1024;

export interface OtaOptions {
	/** Script started in `main/`, relative to it. */
	entry: string;
	/** Interpreter path or command; undefined means "look it up". */
	python: string | undefined;
	args: string[];
	env: Record<string, string>;
	settleTimeMs: number;
	stopTimeoutMs: number;
	stopSignal: NodeJS.Signals;
	minUptimeMs: number;
	/** Patterns added to (or, with a leading `!`, removed from) the default ignore list. */
	ignore: string[];
	/** When set, a batch is taken only once a file of this name is in the deposit. */
	markerFile: string | undefined;
	maxLogFiles: number;
	maxLogBytes: number;
	/** Roll an update back when the new version fails within the minimum uptime. */
	autoRollback: boolean;
	/** Shell command run on a staged copy of the merged tree before the switch. */
	checkCommand: string | undefined;
	checkTimeoutMs: number;
	programLockMaxWaitMs: number;
	maxHistory: number;
}

/** Options as they come from a settings file, VS Code's configuration or flags. */
export type RawOptions = { [K in keyof OtaOptions]?: unknown };

export class OptionsError extends Error {
	constructor(
		readonly key: keyof OtaOptions,
		readonly value: unknown,
		readonly expected: string,
	) {
		super(`Invalid value for ${key}: ${JSON.stringify(value)}; expected ${expected}.`);
		this.name = 'OptionsError';
	}
}

const SIGNAL_NAMES = new Set([
	'SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGKILL', 'SIGABRT',
]);

/** Largest delay a Node.js timer takes (about 24.8 days); longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function nonNegativeInteger(raw: RawOptions, key: keyof OtaOptions, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
	const value = raw[key];
	if (value === undefined || value === null) {
		return fallback;
	}
	if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
		throw new OptionsError(key, value, `a whole number from 0 to ${max}`);
	}
	return value;
}

function markerName(raw: RawOptions): string | undefined {
	const marker = optionalString(raw, 'markerFile');
	if (marker !== undefined && (/[\\/]/.test(marker) || marker === '.' || marker === '..')) {
		throw new OptionsError('markerFile', marker, 'a file name at the top of deposit/, without "/"');
	}
	return marker;
}

function optionalString(raw: RawOptions, key: keyof OtaOptions): string | undefined {
	const value = raw[key];
	if (value === undefined || value === null || value === '') {
		return undefined;
	}
	if (typeof value !== 'string') {
		throw new OptionsError(key, value, 'a string');
	}
	return value;
}

function stringList(raw: RawOptions, key: keyof OtaOptions): string[] {
	const value = raw[key];
	if (value === undefined || value === null) {
		return [];
	}
	if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) {
		throw new OptionsError(key, value, 'a list of strings');
	}
	return [...value] as string[];
}

function stringMap(raw: RawOptions, key: keyof OtaOptions): Record<string, string> {
	const value = raw[key];
	if (value === undefined || value === null) {
		return {};
	}
	if (typeof value !== 'object' || Array.isArray(value)
		|| Object.values(value).some((item) => typeof item !== 'string')) {
		throw new OptionsError(key, value, 'an object whose values are strings');
	}
	return { ...(value as Record<string, string>) };
}

function entryPath(raw: RawOptions): string {
	const entry = optionalString(raw, 'entry') ?? 'main.py';
	const parts = entry.split(/[\\/]/);
	if (entry.startsWith('/') || /^[A-Za-z]:/.test(entry) || parts.includes('..')) {
		throw new OptionsError('entry', entry, 'a path inside main/, such as "main.py"');
	}
	return entry;
}

function stopSignal(raw: RawOptions): NodeJS.Signals {
	const value = optionalString(raw, 'stopSignal') ?? 'SIGTERM';
	const name = value.toUpperCase().startsWith('SIG') ? value.toUpperCase() : `SIG${value.toUpperCase()}`;
	if (!SIGNAL_NAMES.has(name)) {
		throw new OptionsError('stopSignal', value, `one of ${[...SIGNAL_NAMES].join(', ')}`);
	}
	return name as NodeJS.Signals;
}

function booleanOption(raw: RawOptions, key: keyof OtaOptions, fallback: boolean): boolean {
	const value = raw[key];
	if (value === undefined || value === null) {
		return fallback;
	}
	if (typeof value !== 'boolean') {
		throw new OptionsError(key, value, 'true or false');
	}
	return value;
}

/** Validates raw settings and fills in defaults; throws `OptionsError` naming the key. */
export function resolveOptions(raw: RawOptions): OtaOptions {
	return {
		entry: entryPath(raw),
		python: optionalString(raw, 'python'),
		args: stringList(raw, 'args'),
		env: stringMap(raw, 'env'),
		settleTimeMs: nonNegativeInteger(raw, 'settleTimeMs', DEFAULT_SETTLE_TIME_MS, MAX_TIMER_MS),
		stopTimeoutMs: nonNegativeInteger(raw, 'stopTimeoutMs', DEFAULT_STOP_TIMEOUT_MS, MAX_TIMER_MS),
		stopSignal: stopSignal(raw),
		minUptimeMs: nonNegativeInteger(raw, 'minUptimeMs', DEFAULT_MIN_UPTIME_MS, MAX_TIMER_MS),
		ignore: stringList(raw, 'ignore'),
		markerFile: markerName(raw),
		maxLogFiles: nonNegativeInteger(raw, 'maxLogFiles', DEFAULT_MAX_LOG_FILES),
		maxLogBytes: nonNegativeInteger(raw, 'maxLogBytes', DEFAULT_MAX_LOG_BYTES),
		autoRollback: booleanOption(raw, 'autoRollback', true),
		checkCommand: optionalString(raw, 'checkCommand'),
		checkTimeoutMs: nonNegativeInteger(raw, 'checkTimeoutMs', DEFAULT_CHECK_TIMEOUT_MS, MAX_TIMER_MS),
		programLockMaxWaitMs: nonNegativeInteger(raw, 'programLockMaxWaitMs', DEFAULT_PROGRAM_LOCK_MAX_WAIT_MS, MAX_TIMER_MS),
		maxHistory: nonNegativeInteger(raw, 'maxHistory', DEFAULT_MAX_HISTORY),
	};
}
