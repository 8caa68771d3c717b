// Shared pieces of the unit and integration tests: polling with a deadline, cleanup in
// reverse order, temporary OTA roots, Python program sources, a fake clock, a recorder
// of session events and checks on process ids.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import type { Clock } from '../../src/core/clock';
import type { Notice, NoticeCode, SessionState } from '../../src/core/events';
import { layoutOf, type OtaLayout } from '../../src/core/layout';
import type { OutputStream } from '../../src/core/program';
import { resolveOptions, type RawOptions } from '../../src/core/options';
import { Session, type SessionConfig } from '../../src/core/session';

/** Deadline of `waitFor` unless a test gives its own: far above the few hundred
 * milliseconds these waits take on an idle machine, so a loaded CI runner still passes. */
export const DEFAULT_WAIT_MS = 15_000;
const POLL_INTERVAL_MS = 10;

export interface WaitOptions {
	timeoutMs?: number;
	/** Adds context to the timeout message, such as the events seen so far. */
	details?: () => string;
}

/**
 * Polls `check` until it returns a truthy value, and returns that value. On timeout the
 * error names what was awaited, so a failure reads "timed out waiting for <what>".
 */
export async function waitFor<T>(
	what: string,
	check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
	options: WaitOptions = {},
): Promise<T> {
	const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await check();
		if (value !== undefined && value !== null && value !== false) {
			return value;
		}
		if (Date.now() >= deadline) {
			const details = options.details === undefined ? '' : `\n${options.details()}`;
			throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${details}`);
		}
		await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
	}
}

/**
 * Checks that `condition` is true at every poll for `durationMs`, for the "never happens"
 * cases. The window is an observation period, not a wait for something to finish.
 */
export async function assertHoldsFor(what: string, condition: () => boolean, durationMs: number): Promise<void> {
	const end = Date.now() + durationMs;
	while (Date.now() < end) {
		if (!condition()) {
			throw new Error(`Expected ${what} to hold for ${durationMs} ms, but it stopped holding`);
		}
		await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
	}
}

const cleanupStacks = new WeakMap<TestContext, Array<() => unknown>>();

/** Registers a cleanup step; the steps of one test run in reverse order after it ends. */
export function defer(t: TestContext, step: () => unknown): void {
	let stack = cleanupStacks.get(t);
	if (stack === undefined) {
		const steps: Array<() => unknown> = [];
		stack = steps;
		cleanupStacks.set(t, steps);
		t.after(async () => {
			for (let next = steps.pop(); next !== undefined; next = steps.pop()) {
				await next();
			}
		});
	}
	stack.push(step);
}

/** Creates an empty temporary folder that is removed after the test. */
export function makeTempFolder(t: TestContext, prefix = 'ota-unit-'): string {
	const folder = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
	defer(t, () => fs.promises.rm(folder, { recursive: true, force: true }));
	return folder;
}

/** Files to create, by path relative to a root with `/` separators, and their content. */
export type FileTree = Record<string, string>;

export function writeFiles(root: string, files: FileTree): void {
	for (const [relativePath, content] of Object.entries(files)) {
		const file = path.join(root, ...relativePath.split('/'));
		fs.mkdirSync(path.dirname(file), { recursive: true });
		fs.writeFileSync(file, content);
	}
}

/** Creates a temporary OTA root with `deposit/`, `main/` and `logs/`, plus `files`. */
export function makeOtaRoot(t: TestContext, files: FileTree = {}): OtaLayout {
	const layout = layoutOf(makeTempFolder(t, 'ota-root-'));
	for (const folder of [layout.deposit, layout.main, layout.logs]) {
		fs.mkdirSync(folder, { recursive: true });
	}
	writeFiles(layout.root, files);
	return layout;
}

/** Lists every file under `folder` with its content, by relative path; empty folders as `path/`. */
export function readTree(folder: string): Record<string, string> {
	const tree: Record<string, string> = {};
	const walk = (relativeFolder: string): void => {
		const names = fs.readdirSync(path.join(folder, relativeFolder)).sort();
		if (names.length === 0 && relativeFolder !== '') {
			tree[`${relativeFolder.split(path.sep).join('/')}/`] = '';
		}
		for (const name of names) {
			const relativePath = path.join(relativeFolder, name);
			const stat = fs.lstatSync(path.join(folder, relativePath));
			if (stat.isDirectory()) {
				walk(relativePath);
			} else {
				tree[relativePath.split(path.sep).join('/')] = fs.readFileSync(path.join(folder, relativePath), 'utf8');
			}
		}
	};
	walk('');
	return tree;
}

// Python program sources. Each one prints what the tests look for, one line at a time.

/** Python source that prints `lines` and then runs until it is stopped. */
export function printThenWait(...lines: string[]): string {
	return [
		'import time',
		...lines.map((line) => `print(${JSON.stringify(line)}, flush=True)`),
		'while True:',
		'    time.sleep(60)',
		'',
	].join('\n');
}

/** Python source that starts `command` as a child, prints "child <pid>" and runs until stopped. */
export function startChildThenWait(command: string[], childOptions = ''): string {
	return [
		'import os, subprocess, time',
		`child = subprocess.Popen(${JSON.stringify(command)}${childOptions === '' ? '' : `, ${childOptions}`})`,
		'print(f"program {os.getpid()}", flush=True)',
		'print(f"child {child.pid}", flush=True)',
		'while True:',
		'    time.sleep(60)',
		'',
	].join('\n');
}

/** A Python command line that sleeps for a minute, for children that should be stopped. */
export const SLEEPING_PYTHON = ['python3', '-c', 'import time; time.sleep(60)'];

// Process checks.

/** Reads the state letter of `/proc/<pid>/stat` (R, S, Z …), or undefined when there is no such process. */
export function processState(pid: number): string | undefined {
	try {
		const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
		return text.slice(text.lastIndexOf(')') + 2).split(' ')[0];
	} catch {
		return undefined;
	}
}

/**
 * True when `pid` no longer runs: `kill(pid, 0)` fails with ESRCH, or the process is a
 * zombie. Zombies count as gone because an orphan whose new parent never reaps it (PID 1
 * of some containers and virtual machines) stays a zombie after it has exited.
 */
export function isProcessGone(pid: number): boolean {
	try {
		process.kill(pid, 0);
	} catch (error) {
		return (error as NodeJS.ErrnoException).code === 'ESRCH';
	}
	const state = processState(pid);
	return state === undefined || state === 'Z' || state === 'X';
}

/** Sends SIGKILL to `pid` if it still runs; for cleanup after a failed test. */
export function killIfRunning(pid: number | undefined): void {
	if (pid === undefined || isProcessGone(pid)) {
		return;
	}
	try {
		process.kill(pid, 'SIGKILL');
	} catch {
		// It ended between the check and the signal.
	}
}

/** Parses "<label> <pid>" lines printed by the Python fixtures. */
export function pidFromLine(line: string, label: string): number | undefined {
	const match = new RegExp(`^${label} (\\d+)$`).exec(line);
	return match === null ? undefined : Number(match[1]);
}

// Fake clock.

interface FakeTimer {
	at: number;
	callback: () => void;
}

/** A `Clock` whose time moves only through `advance`; timers fire in time order. */
export class FakeClock implements Clock {
	private time: number;
	private nextHandle = 1;
	private readonly timers = new Map<number, FakeTimer>();

	constructor(start = Date.UTC(2024, 2, 5, 7, 8, 9)) {
		this.time = start;
	}

	now(): number {
		return this.time;
	}

	setTimeout(callback: () => void, ms: number): unknown {
		const handle = this.nextHandle++;
		this.timers.set(handle, { at: this.time + ms, callback });
		return handle;
	}

	clearTimeout(handle: unknown): void {
		this.timers.delete(handle as number);
	}

	/** Number of timers set and not yet fired or cleared. */
	get armedTimers(): number {
		return this.timers.size;
	}

	/** Moves time forward by `ms`, firing every timer that falls due on the way. */
	advance(ms: number): void {
		const target = this.time + ms;
		for (;;) {
			let due: [number, FakeTimer] | undefined;
			for (const entry of this.timers) {
				if (entry[1].at <= target && (due === undefined || entry[1].at < due[1].at)) {
					due = entry;
				}
			}
			if (due === undefined) {
				break;
			}
			this.timers.delete(due[0]);
			this.time = due[1].at;
			due[1].callback();
		}
		this.time = target;
	}
}

// Session events.

/** Collects what a session emits, for assertions and for timeout messages. */
export class SessionRecorder {
	readonly states: SessionState[] = [];
	readonly notices: Notice[] = [];
	readonly output: Array<{ stream: OutputStream; line: string }> = [];

	constructor(session: Session) {
		session.on('state', (state) => this.states.push(state));
		session.on('notice', (notice) => this.notices.push(notice));
		session.on('output', (stream, line) => this.output.push({ stream, line }));
	}

	noticesOf<C extends NoticeCode>(code: C): Array<Extract<Notice, { code: C }>> {
		return this.notices.filter((notice): notice is Extract<Notice, { code: C }> => notice.code === code);
	}

	lines(stream: OutputStream = 'stdout'): string[] {
		return this.output.filter((entry) => entry.stream === stream).map((entry) => entry.line);
	}

	/** Waits for the `count`-th notice of `code` and returns it. */
	waitForNotice<C extends NoticeCode>(code: C, count = 1, timeoutMs?: number): Promise<Extract<Notice, { code: C }>> {
		return waitFor(`notice ${code} #${count}`, () => this.noticesOf(code)[count - 1], { timeoutMs, details: () => this.summary() });
	}

	waitForLine(line: string, stream: OutputStream = 'stdout', timeoutMs?: number): Promise<true> {
		return waitFor(`${stream} line "${line}"`, () => this.lines(stream).includes(line), { timeoutMs, details: () => this.summary() });
	}

	waitForState(state: SessionState, session: Session, timeoutMs?: number): Promise<true> {
		return waitFor(`state ${state}`, () => session.state === state, { timeoutMs, details: () => this.summary() });
	}

	/** States, notice codes and output seen so far, one line each. */
	summary(): string {
		return [
			`states: ${this.states.join(' → ')}`,
			`notices: ${this.notices.map((notice) => notice.code).join(', ')}`,
			`output: ${this.output.map((entry) => `[${entry.stream}] ${entry.line}`).join(' | ')}`,
		].join('\n');
	}
}

/**
 * Creates a session on `layout` with a 2 s stop timeout and a recorder of its events; it is
 * disposed after the test. `raw` sets the settle time and any other option.
 */
export function createSession(t: TestContext, layout: OtaLayout, raw: RawOptions, config: Partial<SessionConfig> = {}): { session: Session; recorder: SessionRecorder } {
	const options = resolveOptions({ stopTimeoutMs: 2000, ...raw });
	const session = new Session({ root: layout.root, options, ...config });
	const recorder = new SessionRecorder(session);
	defer(t, () => session.dispose(500));
	return { session, recorder };
}

/** Returns the absolute path of a deposit or main file given relative, with `/`. */
export function fileIn(layout: OtaLayout, folder: 'deposit' | 'main', relativePath: string): string {
	return path.join(layout[folder], ...relativePath.split('/'));
}
