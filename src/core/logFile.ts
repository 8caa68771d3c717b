import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LogLevel } from './events';

/** Matches the log files of `ota-update.py` and of this engine: `logfile_DD-MM-YY_HH.MM.SS.log`. */
const LOG_FILE_PATTERN = /^logfile_\d{2}-\d{2}-\d{2}_\d{2}\.\d{2}\.\d{2}\.log$/;
/** Write buffer of the log file; large enough that a flood of output is written in big chunks. */
const WRITE_BUFFER_BYTES = 1024 * 1024;

function twoDigits(value: number): string {
	return String(value).padStart(2, '0');
}

/** Returns the log file name of a run started at `date` (local time), as `ota-update.py` names it. */
export function logFileName(date: Date): string {
	const day = `${twoDigits(date.getDate())}-${twoDigits(date.getMonth() + 1)}-${twoDigits(date.getFullYear() % 100)}`;
	const time = `${twoDigits(date.getHours())}.${twoDigits(date.getMinutes())}.${twoDigits(date.getSeconds())}`;
	return `logfile_${day}_${time}.log`;
}

/** Formats one log line, `[DD/MM/YY HH:MM:SS] LEVEL : message`, in local time. */
export function formatLogLine(date: Date, level: LogLevel, message: string): string {
	const day = `${twoDigits(date.getDate())}/${twoDigits(date.getMonth() + 1)}/${twoDigits(date.getFullYear() % 100)}`;
	const time = `${twoDigits(date.getHours())}:${twoDigits(date.getMinutes())}:${twoDigits(date.getSeconds())}`;
	return `[${day} ${time}] ${level} : ${message}`;
}

/**
 * Removes the oldest log files until at most `maxFiles` remain (0 keeps any number) and
 * their total size is at most `maxBytes` (0: no limit). Only files named like log files
 * are touched. Returns the removed paths.
 */
export async function pruneLogFiles(folder: string, maxFiles: number, maxBytes: number, keep?: string): Promise<string[]> {
	const names = (await fs.promises.readdir(folder)).filter((name) => LOG_FILE_PATTERN.test(name));
	const files = await Promise.all(names.map(async (name) => {
		const file = path.join(folder, name);
		const stat = await fs.promises.stat(file);
		return { file, size: stat.size, mtimeMs: stat.mtimeMs };
	}));
	files.sort((a, b) => b.mtimeMs - a.mtimeMs); // newest first
	let total = 0;
	const removed: string[] = [];
	for (const [index, entry] of files.entries()) {
		total += entry.size;
		const tooMany = maxFiles > 0 && index >= maxFiles;
		const tooLarge = maxBytes > 0 && total > maxBytes && index > 0;
		if ((tooMany || tooLarge) && entry.file !== keep) {
			await fs.promises.rm(entry.file, { force: true });
			removed.push(entry.file);
		}
	}
	return removed;
}

/** The log file of one run of the supervisor. Lines are written in order; `write` returns
 * false when the buffer is full, and `onDrain` calls back when writing can go on. */
export class LogFile {
	private readonly stream: fs.WriteStream;
	private closed = false;

	private constructor(readonly path: string) {
		this.stream = fs.createWriteStream(path, { flags: 'a', highWaterMark: WRITE_BUFFER_BYTES });
		this.stream.on('error', () => {
			// NOTE: a log file that cannot be written (disk full, folder removed) must not stop
			// the program; the output channel and the headless command still get every line.
			this.closed = true;
			this.stream.emit('drain'); // wake up a program paused on this file
		});
	}

	static async open(folder: string, startedAt: Date, maxFiles: number, maxBytes: number): Promise<LogFile> {
		await fs.promises.mkdir(folder, { recursive: true });
		const file = path.join(folder, logFileName(startedAt));
		// The new file counts as one of the kept files.
		await pruneLogFiles(folder, maxFiles > 0 ? maxFiles - 1 : 0, maxBytes, file);
		return new LogFile(file);
	}

	write(date: Date, level: LogLevel, message: string): boolean {
		if (this.closed) {
			return true;
		}
		let text = '';
		for (const line of message.split('\n')) {
			text += formatLogLine(date, level, line) + '\n';
		}
		return this.stream.write(text);
	}

	onDrain(callback: () => void): void {
		if (this.closed || !this.stream.writableNeedDrain) {
			callback();
			return;
		}
		this.stream.once('drain', callback);
	}

	close(): Promise<void> {
		if (this.closed) {
			return Promise.resolve();
		}
		this.closed = true;
		return new Promise((resolve) => this.stream.end(resolve));
	}
}
