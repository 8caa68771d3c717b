import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { OtaLayout } from '../../src/core/layout';
import { logFileName } from '../../src/core/logFile';
import type { RawOptions } from '../../src/core/options';
import { MAX_QUICK_FAILURES, RESTART_BASE_DELAY_MS } from '../../src/core/restartPolicy';
import type { SessionConfig } from '../../src/core/session';
import {
	assertHoldsFor, createSession, defer, FakeClock, fileIn, isProcessGone, makeOtaRoot, printThenWait, readTree, waitFor,
	writeFiles,
} from './helpers';

const SETTLE_TIME_MS = 200;

/** Creates a session on `layout` with a short settle time; it is disposed after the test. */
function makeSession(t: TestContext, layout: OtaLayout, raw: RawOptions = {}, config: Partial<SessionConfig> = {}) {
	return createSession(t, layout, { settleTimeMs: SETTLE_TIME_MS, ...raw }, config);
}

test('session merges waiting files before start', async (t) => {
	const layout = makeOtaRoot(t, {
		'main/main.py': printThenWait('version 1'),
		'deposit/main.py': printThenWait('version 2'),
		'deposit/lib/util.py': 'X = 2\n',
	});
	const { session, recorder } = makeSession(t, layout);

	await session.start();
	await recorder.waitForLine('version 2');

	assert.deepEqual(recorder.lines(), ['version 2'], 'the first output comes from the new version');
	const codes = recorder.notices.map((notice) => notice.code);
	assert.ok(codes.indexOf('UPDATE_APPLIED') < codes.indexOf('PROGRAM_STARTED'), `merge before start: ${codes.join(', ')}`);
	assert.equal(recorder.noticesOf('PROGRAM_STARTED').length, 1);
	assert.deepEqual(fs.readdirSync(layout.deposit), []);
	assert.equal(fs.readFileSync(fileIn(layout, 'main', 'lib/util.py'), 'utf8'), 'X = 2\n');
	assert.equal(session.state, 'running');
});

test('session slow upload merged only when complete', async (t) => {
	const settleTimeMs = 400;
	const layout = makeOtaRoot(t, { 'main/main.py': printThenWait('version 1') });
	const { session, recorder } = makeSession(t, layout, { settleTimeMs });
	const merged: string[] = [];
	session.on('notice', (notice) => {
		if (notice.code === 'UPDATE_APPLIED') {
			merged.push(fs.readFileSync(fileIn(layout, 'main', 'main.py'), 'utf8'));
		}
	});
	await session.start();
	await recorder.waitForLine('version 1');
	const content = `${'#'.repeat(4000)}\n${printThenWait('version 2')}`;

	// A separate process writes the file under its real name in eight chunks, each well
	// within the settle time of the one before, like a slow scp or FTP upload.
	const writer = spawn('python3', ['-c', [
		'import sys, time',
		'path, content = sys.argv[1], sys.argv[2]',
		'size = -(-len(content) // 8)',
		'with open(path, "w") as upload:',
		'    for start in range(0, len(content), size):',
		'        upload.write(content[start:start + size])',
		'        upload.flush()',
		'        time.sleep(0.08)',
	].join('\n'), fileIn(layout, 'deposit', 'main.py'), content], { stdio: 'inherit' });
	const [writerExitCode] = await once(writer, 'exit');
	assert.equal(writerExitCode, 0);
	await recorder.waitForLine('version 2');

	assert.equal(merged.length, 1, 'one update, after the upload finished');
	assert.equal(merged[0], content, 'main/main.py was complete when the update was applied');
});

test('session temporary names never trigger', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': printThenWait('version 1') });
	const { session, recorder } = makeSession(t, layout);
	await session.start();
	await recorder.waitForLine('version 1');
	await waitFor('the session to be idle', () => session.isIdle);
	const temporaryFiles = {
		'x.filepart': 'WinSCP upload in progress',
		'.syncthing.y.tmp': 'Syncthing temporary',
		'.main.py.AbCdEf': 'rsync temporary',
		'z~': 'editor backup',
		'__pycache__/mod.cpython-311.pyc': 'bytecode',
	};

	writeFiles(layout.deposit, temporaryFiles);
	await assertHoldsFor('the session to stay idle after temporary names appeared', () => session.isIdle, 3 * SETTLE_TIME_MS);
	writeFiles(layout.deposit, { 'trigger.py': '' });
	const applied = await recorder.waitForNotice('UPDATE_APPLIED');

	assert.deepEqual(applied.added, ['trigger.py']);
	assert.deepEqual(readTree(layout.deposit), temporaryFiles, 'temporary files are neither moved nor deleted');
	assert.deepEqual(Object.keys(readTree(layout.main)).sort(), ['main.py', 'trigger.py']);
	assert.equal(recorder.noticesOf('DEPOSIT_SETTLED').length, 1);
});

test('session type conflict rejected', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': printThenWait('version 1'), 'main/lib/a.py': 'A = 1\n' });
	const { session, recorder } = makeSession(t, layout);
	await session.start();
	await recorder.waitForLine('version 1');
	const pid = session.pid;
	assert.ok(pid !== undefined);
	const mainBefore = readTree(layout.main);

	// The conflicting file comes first, so every batch that is taken contains it.
	writeFiles(layout.deposit, { lib: 'a file where main/ has a folder' });
	writeFiles(layout.deposit, { 'new.py': 'print("new")\n' });
	await recorder.waitForNotice('UPDATE_REJECTED');
	await waitFor('the session to be idle after the rejection', () => session.isIdle);
	const rejected = recorder.noticesOf('UPDATE_REJECTED').at(-1)!;

	assert.deepEqual(rejected.problems, [{ code: 'FILE_MEETS_FOLDER', path: 'lib' }]);
	assert.deepEqual(session.lastProblems, rejected.problems);
	assert.equal(session.pid, pid, 'the program keeps running');
	assert.equal(isProcessGone(pid), false);
	assert.equal(session.state, 'running');
	assert.equal(recorder.noticesOf('PROGRAM_STOPPED').length, 0);
	assert.deepEqual(readTree(layout.main), mainBefore);
	assert.deepEqual(Object.keys(readTree(layout.deposit)).sort(), ['lib', 'new.py']);
});

test('session crash at start gives up', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': 'import sys\nprint("crashing", flush=True)\nsys.exit(3)\n' });
	const clock = new FakeClock();
	const { session, recorder } = makeSession(t, layout, { minUptimeMs: 60_000 }, { clock });

	await session.start();
	for (let failure = 1; failure < MAX_QUICK_FAILURES; failure++) {
		const scheduled = await recorder.waitForNotice('RESTART_SCHEDULED', failure);
		assert.equal(scheduled.failures, failure);
		assert.equal(scheduled.delayMs, RESTART_BASE_DELAY_MS * 2 ** (failure - 1));
		assert.equal(session.state, 'restarting');
		assert.equal(clock.armedTimers, 1, 'one restart timer');
		clock.advance(scheduled.delayMs);
	}
	const crashed = await recorder.waitForNotice('CRASHED');

	assert.equal(crashed.failures, MAX_QUICK_FAILURES);
	assert.equal(session.state, 'crashed');
	assert.equal(recorder.noticesOf('PROGRAM_STARTED').length, MAX_QUICK_FAILURES);
	assert.ok(recorder.noticesOf('PROGRAM_EXITED').every((exit) => exit.exitCode === 3));
	assert.equal(clock.armedTimers, 0, 'no restart is pending');
	assert.equal(session.isIdle, true);
	assert.equal(session.isSupervising, true, 'supervision stays on; an update or a manual start tries again');
});

test('session clean exit not restarted', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': 'print("done")\n' });
	const { session, recorder } = makeSession(t, layout);

	await session.start();
	await recorder.waitForState('exited', session);

	assert.deepEqual(recorder.lines(), ['done']);
	assert.equal(recorder.noticesOf('PROGRAM_EXITED')[0].exitCode, 0);
	assert.equal(recorder.noticesOf('RESTART_SCHEDULED').length, 0);
	assert.equal(session.isIdle, true, 'no restart timer is armed');
	assert.equal(session.pid, undefined);
});

test('session waits for missing entry', async (t) => {
	const layout = makeOtaRoot(t);
	const { session, recorder } = makeSession(t, layout);

	await session.start();

	assert.equal(session.state, 'waitingForEntry');
	assert.deepEqual(recorder.noticesOf('ENTRY_MISSING')[0], { code: 'ENTRY_MISSING', entry: 'main.py', mainFolder: layout.main });
	writeFiles(layout.deposit, { 'main.py': printThenWait('arrived') });
	await recorder.waitForLine('arrived');
	assert.equal(session.state, 'running');
});

/** Checks that nothing merges until `marker` appears in the deposit, and that it is consumed. */
async function checkMarkerGatesMerge(t: TestContext, marker: string): Promise<void> {
	const layout = makeOtaRoot(t, { 'main/main.py': printThenWait('version 1') });
	const { session, recorder } = makeSession(t, layout, { markerFile: marker });
	await session.start();
	await recorder.waitForLine('version 1');

	writeFiles(layout.deposit, { 'app.py': 'APP = 2\n' });
	await recorder.waitForNotice('MARKER_MISSING');

	assert.equal(fs.existsSync(fileIn(layout, 'main', 'app.py')), false, 'nothing merges before the marker appears');
	assert.equal(fs.existsSync(fileIn(layout, 'deposit', 'app.py')), true);
	assert.equal(recorder.noticesOf('PROGRAM_STOPPED').length, 0);

	writeFiles(layout.deposit, { [marker]: '' });
	const applied = await recorder.waitForNotice('UPDATE_APPLIED');

	assert.deepEqual(applied.added, ['app.py']);
	assert.equal(fs.existsSync(fileIn(layout, 'deposit', marker)), false, 'the marker is consumed');
	assert.equal(fs.existsSync(fileIn(layout, 'main', marker)), false, 'the marker is not merged');
}

test('session marker file gates merge', async (t) => {
	await checkMarkerGatesMerge(t, 'READY');
});

test('session dot-name marker gates merge', async (t) => {
	await checkMarkerGatesMerge(t, '.upload-done');
});

test('session stop turns supervision off', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': printThenWait('version 1') });
	const { session, recorder } = makeSession(t, layout);
	await session.start();
	await recorder.waitForLine('version 1');
	const pid = session.pid!;

	await session.stop();

	assert.equal(session.state, 'stopped');
	assert.equal(session.isSupervising, false);
	assert.equal(isProcessGone(pid), true, `program (pid ${pid}) still runs`);
	assert.equal(recorder.noticesOf('PROGRAM_STOPPED')[0].reason, 'stop');
	assert.equal(recorder.noticesOf('SUPERVISION_STOPPED').length, 1);

	writeFiles(layout.deposit, { 'new.py': '' });
	await assertHoldsFor('the deposit to stay unmerged while stopped', () => !fs.existsSync(fileIn(layout, 'main', 'new.py')), 3 * SETTLE_TIME_MS);
	assert.equal(recorder.noticesOf('DEPOSIT_SETTLED').length, 0);

	await session.start();
	await recorder.waitForNotice('UPDATE_APPLIED');
	assert.equal(fs.existsSync(fileIn(layout, 'main', 'new.py')), true, 'a later start merges what waited');
});

test('session idle while running and quiet', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': printThenWait('version 1') });
	const { session, recorder } = makeSession(t, layout);
	await session.start();
	await recorder.waitForLine('version 1');

	await waitFor('the session to be idle', () => session.isIdle);
	assert.equal(session.state, 'running');

	writeFiles(layout.deposit, { 'data.json': '{}' });
	await waitFor('the settle timer to be armed', () => !session.isIdle);
	await recorder.waitForNotice('UPDATE_APPLIED');
	await recorder.waitForState('running', session);
	await waitFor('the session to be idle after the update', () => session.isIdle);
});

test('session batch changed during stop', async (t) => {
	const layout = makeOtaRoot(t, {
		// Handles SIGTERM slowly, so the deposit can change while the old version stops.
		'main/main.py': [
			'import signal, sys, time',
			'def stop(signum, frame):',
			'    time.sleep(0.3)',
			'    sys.exit(0)',
			'signal.signal(signal.SIGTERM, stop)',
			printThenWait('version 1'),
		].join('\n'),
	});
	const { session, recorder } = makeSession(t, layout);
	let appended = false;
	session.on('state', (state) => {
		if (state === 'updating' && !appended) {
			appended = true;
			fs.appendFileSync(fileIn(layout, 'deposit', 'main.py'), '\n# second part of the upload\n');
		}
	});
	await session.start();
	await recorder.waitForLine('version 1');

	writeFiles(layout.deposit, { 'main.py': printThenWait('version 2') });
	const changed = await recorder.waitForNotice('BATCH_CHANGED_DURING_STOP');
	assert.deepEqual(changed.paths, ['main.py']);
	await recorder.waitForNotice('UPDATE_APPLIED');
	await recorder.waitForLine('version 2');

	const stdout = recorder.lines();
	assert.deepEqual(stdout, ['version 1', 'version 1', 'version 2'], 'the old version runs again until the upload settles');
	assert.equal(fs.readFileSync(fileIn(layout, 'main', 'main.py'), 'utf8'), `${printThenWait('version 2')}\n# second part of the upload\n`);
});

const LOG_LINE = /^\[\d\d\/\d\d\/\d\d \d\d:\d\d:\d\d\] (INFO|WARNING|ERROR|DEBUG) : /;

test('session log file contents', async (t) => {
	const layout = makeOtaRoot(t, {
		'main/main.py': ['import sys', 'print("to stderr", file=sys.stderr, flush=True)', printThenWait('to stdout')].join('\n'),
	});
	const { session, recorder } = makeSession(t, layout);
	await session.start();
	await recorder.waitForLine('to stdout');
	await recorder.waitForLine('to stderr', 'stderr');
	const logPath = session.logFilePath;
	assert.ok(logPath !== undefined);

	await session.stop();

	assert.match(path.basename(logPath), /^logfile_\d\d-\d\d-\d\d_\d\d\.\d\d\.\d\d\.log$/);
	assert.equal(path.dirname(logPath), layout.logs);
	const lines = fs.readFileSync(logPath, 'utf8').trimEnd().split('\n');
	for (const line of lines) {
		assert.match(line, LOG_LINE);
	}
	const expected = [
		/INFO : Supervising /,
		/INFO : Started main\.py \(pid \d+\)/,
		/INFO : \[stdout\] to stdout$/,
		/WARNING : \[stderr\] to stderr$/,
		/INFO : Program \(pid \d+\) stopped with SIGTERM for stop/,
		/INFO : Supervision stopped/,
	];
	for (const pattern of expected) {
		assert.ok(lines.some((line) => pattern.test(line)), `no log line matches ${pattern}:\n${lines.join('\n')}`);
	}
});

test('session log file gets every line of a flood', async (t) => {
	const totalLines = 100_000;
	const layout = makeOtaRoot(t, {
		'main/main.py': [
			'import sys',
			`for block in range(${totalLines / 1000}):`,
			'    sys.stdout.write("".join(f"line {block * 1000 + i}\\n" for i in range(1000)))',
		].join('\n'),
	});
	const warnings: Error[] = [];
	const onWarning = (warning: Error): void => {
		warnings.push(warning);
	};
	process.on('warning', onWarning);
	defer(t, () => process.off('warning', onWarning));
	const { session, recorder } = makeSession(t, layout);

	await session.start();
	const logPath = session.logFilePath!;
	await recorder.waitForState('exited', session);
	await session.stop();

	const programLines = fs.readFileSync(logPath, 'utf8').split('\n').filter((line) => line.includes('] INFO : [stdout] line '));
	assert.equal(programLines.length, totalLines);
	assert.ok(programLines[totalLines - 1].endsWith(`line ${totalLines - 1}`));
	assert.equal(recorder.lines().length, totalLines);
	assert.deepEqual(warnings.map((warning) => `${warning.name}: ${warning.message}`), []);
});

test('session log file name uses clock', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': 'print("done")\n' });
	const clock = new FakeClock(new Date(2024, 2, 5, 7, 8, 9).getTime());
	const { session } = makeSession(t, layout, {}, { clock });

	await session.start();

	assert.equal(session.logFilePath, path.join(layout.logs, logFileName(new Date(2024, 2, 5, 7, 8, 9))));
});

test('session update leaves no settling behind', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': printThenWait('version 1') });
	const { session, recorder } = makeSession(t, layout);
	const waitingAfterUpdate: boolean[] = [];
	let applied = false;
	session.on('notice', (notice) => {
		applied ||= notice.code === 'UPDATE_APPLIED';
	});
	session.on('depositWaiting', (value) => {
		if (applied) {
			waitingAfterUpdate.push(value);
		}
	});
	await session.start();
	await recorder.waitForLine('version 1');

	writeFiles(layout.deposit, { 'main.py': printThenWait('version 2'), 'lib/util.py': 'X = 2\n' });
	await recorder.waitForLine('version 2');

	// The merge removed main.py, lib/util.py and lib/ from the deposit; those events are its own.
	await assertHoldsFor('no settling after the update', () => !waitingAfterUpdate.includes(true), 3 * SETTLE_TIME_MS);
	assert.deepEqual(session.waitingFiles, []);
});
