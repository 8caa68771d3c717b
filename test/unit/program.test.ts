import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ProcessTree, stopTree } from '../../src/core/processTree';
import { ProgramRun, resolvePython, type OutputSink, type OutputStream, type ProgramExit } from '../../src/core/program';
import {
	defer, isProcessGone, killIfRunning, makeTempFolder, pidFromLine, printThenWait, processState, SLEEPING_PYTHON,
	startChildThenWait, waitFor, writeFiles,
} from './helpers';

const python = resolvePython(undefined).python;
/** Stop timeout for programs that exit on SIGTERM: they take a few milliseconds. */
const STOP_TIMEOUT_MS = 3000;

/** A sink that keeps every line and never pauses the program. */
class CollectingSink implements OutputSink {
	readonly lines: Array<{ stream: OutputStream; line: string }> = [];

	write(stream: OutputStream, line: string): boolean {
		this.lines.push({ stream, line });
		return true;
	}

	onDrain(callback: () => void): void {
		callback();
	}

	of(stream: OutputStream): string[] {
		return this.lines.filter((entry) => entry.stream === stream).map((entry) => entry.line);
	}

	/** Waits for a "<label> <pid>" line and returns the pid. */
	waitForPid(label: string): Promise<number> {
		return waitFor(`a "${label} <pid>" line`, () => this.of('stdout').map((line) => pidFromLine(line, label)).find((pid) => pid !== undefined), {
			details: () => this.lines.map((entry) => `[${entry.stream}] ${entry.line}`).join('\n'),
		});
	}
}

/** Starts `source` as main.py in a temporary folder with `sink`; kills what is left after the test. */
function startProgram(t: TestContext, source: string, sink: OutputSink = new CollectingSink(), interpreter = python): ProgramRun {
	assert.ok(interpreter !== undefined, 'python3 or python must be on PATH');
	const folder = makeTempFolder(t);
	writeFiles(folder, { 'main.py': source });
	const run = new ProgramRun({ python: interpreter, entry: 'main.py', args: [], env: {}, cwd: folder }, sink);
	defer(t, () => run.killNow());
	return run;
}

/** Registers pids to SIGKILL after the test, in case an assertion failed before they were stopped. */
function killAfter(t: TestContext, ...pids: number[]): void {
	defer(t, () => pids.forEach(killIfRunning));
}

function assertGone(pids: Record<string, number>): void {
	for (const [name, pid] of Object.entries(pids)) {
		assert.ok(isProcessGone(pid), `${name} (pid ${pid}) is still running in state ${processState(pid)}`);
	}
}

test('program grandchild killed on stop', async (t) => {
	const sink = new CollectingSink();
	const run = startProgram(t, startChildThenWait(SLEEPING_PYTHON), sink);
	const child = await sink.waitForPid('child');
	killAfter(t, child);

	// The grandchild outlives the program by a moment and is re-parented to init, which may
	// reap it late (PID 1 of this test machine reaps every two seconds or so) or never. A
	// stop timeout shorter than that makes a zombie counted as alive show up as a kill.
	const exit = await run.stop('SIGTERM', 1000);

	assert.equal(exit.stopped, true);
	assert.equal(exit.killed, false, 'every process exits on SIGTERM, so no SIGKILL is needed');
	assert.equal(exit.signal, 'SIGTERM');
	assertGone({ program: run.pid!, grandchild: child });
});

test('program ignoring SIGTERM gets SIGKILL', async (t) => {
	const sink = new CollectingSink();
	const run = startProgram(t, ['import signal', 'signal.signal(signal.SIGTERM, signal.SIG_IGN)', printThenWait('ready')].join('\n'), sink);
	await waitFor('the program to print "ready"', () => sink.of('stdout').includes('ready'));
	const stopTimeoutMs = 300;

	const started = Date.now();
	const exit = await run.stop('SIGTERM', stopTimeoutMs);

	assert.equal(exit.killed, true);
	assert.equal(exit.signal, 'SIGKILL');
	assert.ok(Date.now() - started >= stopTimeoutMs, 'SIGKILL only after the stop timeout');
	assertGone({ program: run.pid! });
});

test('program through wrapper script stopped', async (t) => {
	assert.ok(python !== undefined);
	const folder = makeTempFolder(t);
	// A wrapper that runs Python as its child instead of exec-ing it, as some venv or
	// environment-setting wrappers do.
	const wrapper = path.join(folder, 'python-wrapper.sh');
	fs.writeFileSync(wrapper, `#!/bin/sh\n"${python}" "$@"\necho "wrapper done"\n`, { mode: 0o755 });
	const sink = new CollectingSink();
	const run = startProgram(t, startChildThenWait(['sleep', '60']), sink, wrapper);
	const program = await sink.waitForPid('program');
	const child = await sink.waitForPid('child');
	killAfter(t, program, child);
	assert.notEqual(program, run.pid, 'the wrapper runs Python as a child');

	const exit = await run.stop('SIGTERM', STOP_TIMEOUT_MS);

	assert.equal(exit.killed, false);
	assertGone({ wrapper: run.pid!, python: program, child });
	assert.ok(!sink.of('stdout').includes('wrapper done'), 'the wrapper itself was stopped');
});

test('program setsid descendant killed', async (t) => {
	const sink = new CollectingSink();
	const run = startProgram(t, startChildThenWait(SLEEPING_PYTHON, 'start_new_session=True'), sink);
	const child = await sink.waitForPid('child');
	killAfter(t, child);
	const childGroup = Number(fs.readFileSync(`/proc/${child}/stat`, 'utf8').split(') ')[1].split(' ')[2]);
	assert.equal(childGroup, child, 'the descendant leads a group of its own');

	const exit = await run.stop('SIGTERM', STOP_TIMEOUT_MS);

	assert.equal(exit.killed, false);
	assertGone({ program: run.pid!, descendant: child });
});

test('processTree stop of exited tree', async (t) => {
	const sink = new CollectingSink();
	const run = startProgram(t, 'print("bye")\n', sink);
	const exit: ProgramExit = await run.exited;
	assert.equal(exit.code, 0);
	assert.equal(exit.stopped, false);

	const outcome = await stopTree(new ProcessTree(run.pid!), 'SIGTERM', STOP_TIMEOUT_MS);

	assert.equal(outcome.killed, false);
});

test('program output in order per stream', async (t) => {
	const sink = new CollectingSink();
	const run = startProgram(t, [
		'import sys',
		'for i in range(200):',
		'    print(f"out {i}")',
		'    print(f"err {i}", file=sys.stderr)',
		'print("héllo ✓ crlf\\r")',
		'sys.stdout.write("no newline at the end")',
	].join('\n'), sink);

	const exit = await run.exited;

	assert.equal(exit.code, 0);
	const expectedOut = Array.from({ length: 200 }, (_, i) => `out ${i}`);
	assert.deepEqual(sink.of('stdout'), [...expectedOut, 'héllo ✓ crlf', 'no newline at the end']);
	assert.deepEqual(sink.of('stderr'), Array.from({ length: 200 }, (_, i) => `err ${i}`));
});

test('program missing interpreter reported', async (t) => {
	const run = startProgram(t, 'print(1)\n', new CollectingSink(), path.join(makeTempFolder(t), 'no-such-python'));

	const exit = await run.exited;

	assert.equal(exit.code, undefined);
	assert.ok(exit.spawnError !== undefined, 'a spawn error is reported');
	assert.match(exit.spawnError, /ENOENT/);
});

/** True while `pid` is blocked writing to a full pipe. */
function isBlockedOnPipeWrite(pid: number): boolean {
	try {
		if (/pipe_write/.test(fs.readFileSync(`/proc/${pid}/wchan`, 'utf8'))) {
			return true;
		}
		// Without kernel symbols wchan reads "0"; the syscall number and first argument still
		// show a write(2) to fd 1 (x86-64: 1, arm64: 64).
		const [syscall, fd] = fs.readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ');
		const writeSyscall = process.arch === 'arm64' ? '64' : '1';
		return syscall === writeSyscall && fd === '0x1';
	} catch {
		return false;
	}
}

test('program back-pressure pauses output', async (t) => {
	const totalLines = 100_000;
	const pauseAfter = 1000;
	const lines: string[] = [];
	const drainCallbacks: Array<() => void> = [];
	let paused = false;
	const sink: OutputSink = {
		write: (_stream, line) => {
			lines.push(line);
			if (lines.length === pauseAfter) {
				paused = true;
			}
			return !paused;
		},
		onDrain: (callback) => {
			drainCallbacks.push(callback);
		},
	};
	// About 10 MB in total, written in blocks so that Python itself is fast.
	const run = startProgram(t, [
		'import sys',
		`for block in range(${totalLines / 1000}):`,
		'    sys.stdout.write("".join(f"{block * 1000 + i:07d} {\'x\' * 92}\\n" for i in range(1000)))',
		'print("done")',
	].join('\n'), sink);
	let exited = false;
	void run.exited.then(() => {
		exited = true;
	});

	await waitFor('the program to block on its full stdout pipe', () => isBlockedOnPipeWrite(run.pid!));
	const linesWhilePaused = lines.length;
	const heapWhilePaused = process.memoryUsage().heapUsed;

	// The kernel's pipe buffer (64 KiB) and the stream's read buffer contain a few thousand
	// 100-byte lines at most. Without back-pressure all 100 000 would have arrived.
	assert.ok(linesWhilePaused < 5000, `${linesWhilePaused} lines arrived while paused`);
	assert.equal(exited, false, 'the program cannot finish while its output is paused');
	assert.equal(drainCallbacks.length, 1, 'one onDrain registration per pause, however many lines were refused');

	paused = false;
	for (const callback of drainCallbacks.splice(0)) {
		callback();
	}
	const exit = await run.exited;

	assert.equal(exit.code, 0);
	assert.equal(lines.length, totalLines + 1);
	assert.equal(lines[lines.length - 1], 'done');
	for (let index = 0; index < totalLines; index += 997) {
		assert.equal(lines[index].slice(0, 7), String(index).padStart(7, '0'), `line ${index} out of order`);
	}
	assert.ok(process.memoryUsage().heapUsed - heapWhilePaused < 64 * 1024 * 1024, 'heap grew by more than 64 MiB');
});
