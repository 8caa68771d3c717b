import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { execa } from 'execa';
import { ProcessTree, stopTree, killTreeNow } from './processTree';

/** A line longer than this is passed on in pieces, so a program that never writes a
 * newline cannot make the engine buffer without bound. */
const MAX_LINE_CHARS = 64 * 1024;
/** Quiet time on the pipes after the program exited, after which they are closed even if
 * an escaped descendant still has them open. Output that is still flowing keeps them open. */
const OUTPUT_IDLE_AFTER_EXIT_MS = 500;

export type OutputStream = 'stdout' | 'stderr';

/** Where the program's lines go. `write` returns false when the receiver is full; the
 * program's pipes are then paused until `onDrain` calls back, so a flood of output
 * blocks the program's writes instead of filling the engine's memory. */
export interface OutputSink {
	write(stream: OutputStream, line: string): boolean;
	onDrain(callback: () => void): void;
}

export interface ProgramSpec {
	python: string;
	entry: string;
	args: readonly string[];
	env: Readonly<Record<string, string>>;
	cwd: string;
}

export interface ProgramExit {
	/** Exit code, or undefined when a signal ended the program. */
	code: number | undefined;
	signal: NodeJS.Signals | undefined;
	uptimeMs: number;
	/** Set when the engine stopped the program (update, Stop, shutdown). */
	stopped: boolean;
	/** Set when the program outlived the stop timeout and got SIGKILL. */
	killed: boolean;
	/** Set when the interpreter could not be started at all. */
	spawnError?: string;
}

/** Finds an executable by path, or by name on PATH; undefined when there is none. */
export function findExecutable(command: string, envPath = process.env.PATH ?? ''): string | undefined {
	const extensions = process.platform === 'win32' ? (process.env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';') : [''];
	const isExecutable = (file: string): boolean => {
		try {
			fs.accessSync(file, fs.constants.X_OK);
			return fs.statSync(file).isFile();
		} catch {
			return false;
		}
	};
	if (command.includes('/') || command.includes('\\')) {
		return isExecutable(command) ? path.resolve(command) : undefined;
	}
	for (const folder of envPath.split(path.delimiter)) {
		if (folder === '') {
			continue;
		}
		for (const extension of extensions) {
			const candidate = path.join(folder, command + extension);
			if (isExecutable(candidate)) {
				return candidate;
			}
		}
	}
	return undefined;
}

/** Finds the interpreter: the configured one, else `python3`, else `python` from PATH. */
export function resolvePython(configured: string | undefined): { python: string | undefined; tried: string[] } {
	const tried = configured !== undefined ? [configured] : ['python3', 'python'];
	for (const candidate of tried) {
		const found = findExecutable(candidate);
		if (found !== undefined) {
			return { python: found, tried };
		}
	}
	return { python: undefined, tried };
}

/** Shared by the stdout and stderr readers of one run. */
interface PipeState {
	/** Set while both pipes are paused for a full sink. */
	waiting: boolean;
	/** When the last chunk of output arrived (ms since the epoch). */
	lastDataAt: number;
}

/** Cuts `text` at most `limit` characters long without splitting a UTF-16 surrogate pair. */
function cutPoint(text: string, limit: number): number {
	const code = text.charCodeAt(limit - 1);
	return code >= 0xd800 && code <= 0xdbff ? limit - 1 : limit;
}

function pipeLines(stream: Readable, name: OutputStream, sink: OutputSink, streams: Readable[], state: PipeState): Promise<void> {
	const decoder = new StringDecoder('utf8');
	let partial = '';
	const resumeAll = (): void => {
		state.waiting = false;
		for (const each of streams) {
			each.resume();
		}
	};
	const emit = (line: string): void => {
		// The rest of a chunk that was already read still goes out while paused. Only the
		// first rejected line registers for the drain, so a flood adds one listener, not one per line.
		if (!sink.write(name, line) && !state.waiting) {
			state.waiting = true;
			for (const each of streams) {
				each.pause();
			}
			sink.onDrain(resumeAll);
		}
	};
	const take = (text: string): void => {
		partial += text;
		let newline = partial.indexOf('\n');
		while (newline !== -1) {
			emit(partial.slice(0, newline).replace(/\r$/, ''));
			partial = partial.slice(newline + 1);
			newline = partial.indexOf('\n');
		}
		while (partial.length > MAX_LINE_CHARS) {
			const cut = cutPoint(partial, MAX_LINE_CHARS);
			emit(partial.slice(0, cut));
			partial = partial.slice(cut);
		}
	};
	return new Promise((resolve) => {
		const finish = (): void => {
			take(decoder.end());
			if (partial !== '') {
				emit(partial);
				partial = '';
			}
			resolve();
		};
		stream.on('data', (chunk: Buffer) => {
			state.lastDataAt = Date.now();
			take(decoder.write(chunk));
		});
		stream.once('end', finish);
		stream.once('close', finish);
		stream.once('error', () => resolve());
	});
}

/**
 * Waits until the pipes are drained after the program exited. A process that left the
 * tree may hold them open for hours, so once no output has arrived for
 * `OUTPUT_IDLE_AFTER_EXIT_MS`, the pipes are closed and the exit is reported.
 */
async function drainAfterExit(drained: Promise<unknown>, streams: Readable[], state: PipeState): Promise<void> {
	let done = false;
	void drained.then(() => (done = true));
	for (;;) {
		let timer: NodeJS.Timeout | undefined;
		await Promise.race([drained, new Promise((resolve) => (timer = setTimeout(resolve, OUTPUT_IDLE_AFTER_EXIT_MS)))]);
		clearTimeout(timer);
		if (done) {
			return;
		}
		if (!state.waiting && Date.now() - state.lastDataAt >= OUTPUT_IDLE_AFTER_EXIT_MS) {
			for (const stream of streams) {
				stream.destroy();
			}
			await drained;
			return;
		}
	}
}

/** One run of the program, in its own process group. */
export class ProgramRun {
	readonly exited: Promise<ProgramExit>;
	/** Settles when the root process has exited, before its output is drained. */
	private readonly childExited: Promise<void>;
	readonly pid: number | undefined;
	private readonly tree: ProcessTree | undefined;
	private stopping: Promise<ProgramExit> | undefined;
	private readonly startedAt = Date.now();

	constructor(spec: ProgramSpec, sink: OutputSink) {
		const child = execa(spec.python, [spec.entry, ...spec.args], {
			cwd: spec.cwd,
			env: { ...spec.env, PYTHONUNBUFFERED: '1', PYTHONUTF8: '1', PYTHONIOENCODING: 'utf-8' },
			extendEnv: true,
			detached: true,
			cleanup: false,
			stdin: 'ignore',
			stdout: 'pipe',
			stderr: 'pipe',
			buffer: false,
			reject: false,
			windowsHide: true,
		});
		this.pid = child.pid;
		this.tree = child.pid === undefined ? undefined : new ProcessTree(child.pid);
		const streams = [child.stdout, child.stderr].filter((stream): stream is Readable => stream !== null);
		const state: PipeState = { waiting: false, lastDataAt: Date.now() };
		const drained = Promise.all([
			child.stdout ? pipeLines(child.stdout, 'stdout', sink, streams, state) : Promise.resolve(),
			child.stderr ? pipeLines(child.stderr, 'stderr', sink, streams, state) : Promise.resolve(),
		]);
		// execa's own promise settles only when the pipes close, which a descendant that left
		// the tree can delay for good, so the exit comes from the process's events.
		child.catch(() => undefined);
		const exitStatus = new Promise<{ code?: number; signal?: NodeJS.Signals; error?: Error }>((resolve) => {
			child.once('exit', (code, signal) => resolve({ code: code ?? undefined, signal: signal ?? undefined }));
			child.once('error', (error) => resolve({ error }));
		});
		this.childExited = exitStatus.then(() => undefined);
		this.exited = exitStatus.then(async (status) => {
			// Output still in the pipes belongs to this run; read it before reporting the exit.
			await drainAfterExit(drained, streams, state);
			return {
				code: status.code,
				signal: status.signal,
				uptimeMs: Date.now() - this.startedAt,
				stopped: this.stopping !== undefined,
				killed: false,
				spawnError: status.error?.message,
			};
		});
	}

	/** True while a process of this run's tree is alive (after the root exited, its children). */
	isTreeAlive(): boolean {
		return this.tree === undefined ? false : this.tree.isAlive(this.tree.refresh());
	}

	/** Stops what is left of the tree after the root exited by itself. */
	async stopRemains(signal: NodeJS.Signals, timeoutMs: number): Promise<boolean> {
		if (this.tree === undefined || !this.isTreeAlive()) {
			return false;
		}
		await stopTree(this.tree, signal, timeoutMs);
		return true;
	}

	/** Stops the whole tree: `signal` first, SIGKILL after `timeoutMs`. Safe to call twice. */
	stop(signal: NodeJS.Signals, timeoutMs: number): Promise<ProgramExit> {
		if (this.stopping === undefined) {
			this.stopping = (async () => {
				const outcome = this.tree === undefined ? { killed: false } : await stopTree(this.tree, signal, timeoutMs, this.childExited);
				const exit = await this.exited;
				return { ...exit, stopped: true, killed: outcome.killed };
			})();
		}
		return this.stopping;
	}

	/** Sends `signal` to the whole tree synchronously, without waiting: for a host that is ending. */
	signalNow(signal: NodeJS.Signals): void {
		this.tree?.signal(signal);
	}

	/** SIGKILL to the whole tree, synchronously, for process exit handlers. */
	killNow(): void {
		if (this.tree !== undefined) {
			killTreeNow(this.tree);
		}
	}
}
