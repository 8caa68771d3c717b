#!/usr/bin/env node
/**
 * `ota-update`: the engine without an editor, for devices that start the program at boot.
 * It prints the same lines as the log file on stdout.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { describeNotice, english } from './core/describe';
import { levelOf } from './core/events';
import { ensureLayout, layoutOf, LayoutError, readWorkspaceSettings, SETTING_KEYS, SETTINGS_SECTION, SettingsFileError } from './core/layout';
import { formatLogLine } from './core/logFile';
import { OptionsError, resolveOptions, type RawOptions } from './core/options';
import { RootOwnedError } from './core/ownership';
import { Session } from './core/session';

const USAGE = `Usage:
  ota-update run   [ROOT] [--settle MS] [--stop-timeout MS] [--stop-signal SIG]
                          [--python PATH] [--entry FILE] [-- PROGRAM ARGS...]
  ota-update apply [ROOT]   merge the deposit once without running anything
  ota-update init  [ROOT]   create deposit/, main/ and logs/
  ota-update history  [ROOT]            list past updates, newest first
  ota-update rollback [ROOT] [--to ID]  roll back the last update, or every update down to ID
ROOT defaults to the current folder. Settings in ROOT/.vscode/settings.json apply; flags win.`;

/** Exit codes: 0 done, 1 the deposit was rejected or a run failed, 2 bad arguments or settings. */
const EXIT_USAGE = 2;

class UsageError extends Error {}

function settingNameOf(option: keyof RawOptions): string {
	return `${SETTINGS_SECTION}.${SETTING_KEYS.find(([, key]) => key === option)?.[0] ?? option}`;
}

interface Command {
	name: 'run' | 'apply' | 'init' | 'history' | 'rollback';
	/** For rollback: the oldest update to roll back. */
	to?: string;
	root: string;
	flags: RawOptions;
}

function parseMilliseconds(flag: string, value: string | undefined): number | undefined {
	if (value === undefined) {
		return undefined;
	}
	if (!/^\d+$/.test(value)) {
		throw new UsageError(`--${flag} must be a whole number of milliseconds, got "${value}"`);
	}
	return Number(value);
}

function parseCommand(argv: string[]): Command {
	const separator = argv.indexOf('--');
	const own = separator === -1 ? argv : argv.slice(0, separator);
	const programArgs = separator === -1 ? undefined : argv.slice(separator + 1);
	let parsed;
	try {
		parsed = parseArgs({
			args: own,
			allowPositionals: true,
			strict: true,
			options: {
				settle: { type: 'string' },
				'stop-timeout': { type: 'string' },
				'stop-signal': { type: 'string' },
				python: { type: 'string' },
				entry: { type: 'string' },
				to: { type: 'string' },
				help: { type: 'boolean', short: 'h' },
			},
		});
	} catch (error) {
		throw new UsageError((error as Error).message);
	}
	const { values, positionals } = parsed;
	if (values.help) {
		process.stdout.write(USAGE + '\n');
		process.exit(0);
	}
	const [name, root, ...extra] = positionals;
	if (name !== 'run' && name !== 'apply' && name !== 'init' && name !== 'history' && name !== 'rollback') {
		throw new UsageError(name === undefined ? 'missing command' : `unknown command "${name}"`);
	}
	if (extra.length > 0) {
		throw new UsageError(`unexpected argument "${extra[0]}"; program arguments go after "--"`);
	}
	const runOnly = ['settle', 'stop-timeout', 'stop-signal', 'python', 'entry'].filter((flag) => (values as Record<string, unknown>)[flag] !== undefined);
	if (name !== 'run' && (runOnly.length > 0 || programArgs !== undefined)) {
		throw new UsageError(`"${name}" takes no ${runOnly.length > 0 ? `--${runOnly[0]}` : 'program arguments'}`);
	}
	const flags: RawOptions = {};
	const settle = parseMilliseconds('settle', values.settle);
	const stopTimeout = parseMilliseconds('stop-timeout', values['stop-timeout']);
	if (settle !== undefined) flags.settleTimeMs = settle;
	if (stopTimeout !== undefined) flags.stopTimeoutMs = stopTimeout;
	if (values['stop-signal'] !== undefined) flags.stopSignal = values['stop-signal'];
	if (values.python !== undefined) flags.python = values.python;
	if (values.entry !== undefined) flags.entry = values.entry;
	if (programArgs !== undefined) flags.args = programArgs;
	if (values.to !== undefined && name !== 'rollback') {
		throw new UsageError(`"${name}" takes no --to`);
	}
	return { name, root: path.resolve(root ?? '.'), flags, to: values.to };
}

/** Bytes waiting for a slow reader of stdout (a pipe to `less`, a stalled journal) after
 * which lines are counted instead of queued. The log file still gets every line. */
const MAX_QUEUED_STDOUT_BYTES = 8 * 1024 * 1024;
let skippedLines = 0;

function print(level: Parameters<typeof formatLogLine>[1], message: string): void {
	const now = new Date();
	if (process.stdout.writableLength > MAX_QUEUED_STDOUT_BYTES) {
		skippedLines += message.split('\n').length;
		return;
	}
	if (skippedLines > 0) {
		process.stdout.write(formatLogLine(now, 'WARNING', `${skippedLines} lines not shown here because stdout was not read fast enough; the log file has them all`) + '\n');
		skippedLines = 0;
	}
	for (const line of message.split('\n')) {
		process.stdout.write(formatLogLine(now, level, line) + '\n');
	}
}

function attach(session: Session): void {
	session.on('notice', (notice) => print(levelOf(notice), describeNotice(notice, english)));
	session.on('output', (stream, line) => print(stream === 'stdout' ? 'INFO' : 'WARNING', `[${stream}] ${line}`));
}

async function runSupervisor(session: Session): Promise<number> {
	attach(session);
	let stopping = false;
	const onSignal = (signal: NodeJS.Signals): void => {
		if (stopping) {
			// A second Ctrl-C does not wait for the stop timeout.
			session.killNow();
			process.exit(130);
		}
		stopping = true;
		print('INFO', `Received ${signal}; stopping the program`);
		void session.stop().then(() => session.dispose()).then(() => process.exit(0));
	};
	process.on('SIGINT', onSignal);
	process.on('SIGTERM', onSignal);
	process.on('SIGHUP', onSignal);
	process.on('exit', () => session.killNow());
	await session.start();
	return new Promise<number>(() => undefined); // runs until a signal ends it
}

/** Errors of the file system (a root that cannot be read or written) get a message, not a stack. */
function isFileSystemError(error: unknown): error is NodeJS.ErrnoException {
	const code = (error as NodeJS.ErrnoException | undefined)?.code;
	return typeof code === 'string' && ['EACCES', 'EPERM', 'ENOTDIR', 'ENOENT', 'EROFS', 'ENOSPC', 'EEXIST', 'EISDIR'].includes(code);
}

const FLAG_NAMES: Partial<Record<keyof RawOptions, string>> = {
	settleTimeMs: '--settle', stopTimeoutMs: '--stop-timeout', stopSignal: '--stop-signal', python: '--python', entry: '--entry',
};

async function main(argv: string[]): Promise<number> {
	let command: Command;
	let session: Session;
	try {
		command = parseCommand(argv);
		if (command.name === 'init') {
			const created = await ensureLayout(layoutOf(command.root)).catch((error: unknown) => {
				throw isFileSystemError(error) ? new UsageError(`cannot create the OTA folder: ${error.message}`) : error;
			});
			process.stdout.write(created.length === 0
				? `${command.root} already has deposit/, main/ and logs/\n`
				: `Created ${created.join(', ')}\n`);
			return 0;
		}
		const settings = await readWorkspaceSettings(command.root);
		let options;
		try {
			options = resolveOptions({ ...settings, ...command.flags });
		} catch (error) {
			if (!(error instanceof OptionsError)) {
				throw error;
			}
			const flag = command.flags[error.key] !== undefined ? FLAG_NAMES[error.key] : undefined;
			const where = flag ?? `${settingNameOf(error.key)} in ${path.join(command.root, '.vscode', 'settings.json')}`;
			throw new UsageError(`invalid value ${JSON.stringify(error.value)} for ${where}: expected ${error.expected}`);
		}
		session = new Session({ root: command.root, options, ownerKind: `ota-update ${command.name}` });
	} catch (error) {
		if (error instanceof UsageError) {
			process.stderr.write(`ota-update: ${error.message}\n${USAGE}\n`);
			return EXIT_USAGE;
		}
		if (error instanceof OptionsError || error instanceof SettingsFileError || error instanceof LayoutError) {
			process.stderr.write(`ota-update: ${error.message}\n`);
			return EXIT_USAGE;
		}
		throw error;
	}

	try {
		if (command.name === 'history') {
			const statusWords: Record<string, string> = {
				applying: 'interrupted', applied: 'applied', failed: 'failed, undone', rollingBack: 'rollback interrupted', rolledBack: 'rolled back',
			};
			for (const journal of await session.history()) {
				const added = journal.files.filter((file) => file.action === 'add').length;
				const replaced = journal.files.length - added;
				const started = formatLogLine(new Date(journal.startedAt), 'INFO', '').slice(1, 18);
				const files = journal.files.slice(0, 3).map((file) => file.path).join(', ') + (journal.files.length > 3 ? ', …' : '');
				process.stdout.write(`${journal.id}  ${started}  ${(statusWords[journal.status] ?? journal.status).padEnd(14)}  ${added} added, ${replaced} replaced, ${journal.deletions.length} deleted  ${files}${journal.note === undefined ? '' : `  (${journal.note})`}\n`);
			}
			return 0;
		}
		if (command.name === 'rollback') {
			attach(session);
			try {
				await session.rollBack(command.to);
			} catch (error) {
				if (error instanceof RootOwnedError) {
					throw error;
				}
				process.stderr.write(`ota-update: ${(error as Error).message}\n`);
				return 1;
			} finally {
				await session.dispose();
			}
			return 0;
		}
		if (command.name === 'apply') {
			attach(session);
			const outcome = await session.applyNow();
			await session.dispose();
			return outcome === 'rejected' || outcome === 'failed' ? 1 : 0;
		}
		return await runSupervisor(session);
	} catch (error) {
		if (error instanceof RootOwnedError || error instanceof LayoutError || isFileSystemError(error)) {
			process.stderr.write(`ota-update: ${error.message}\n`);
			await session.dispose();
			return 1;
		}
		throw error;
	}
}

main(process.argv.slice(2)).then(
	(code) => process.exit(code),
	(error: unknown) => {
		process.stderr.write(`ota-update: ${(error as Error).stack ?? String(error)}\n`);
		process.exit(1);
	},
);
