// Transactional updates on the real file system with real Python programs. The tests cover
// checks before the switch, crashes at every step of a merge and rollbacks. They also cover
// the program's lock file, the owner lock, programs left running by a killed supervisor
// and file system faults.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import pMap from 'p-map';
import { describeNotice, describeProblem, english } from '../../src/core/describe';
import { createIgnoreMatcher } from '../../src/core/ignore';
import type { OtaLayout } from '../../src/core/layout';
import { planDeposit } from '../../src/core/merge';
import type { RawOptions } from '../../src/core/options';
import { RootOwnedError } from '../../src/core/ownership';
import { PROGRAM_LOCK_FILE, type SessionConfig } from '../../src/core/session';
import {
	listJournals, recoverInterruptedUpdates, REJECTED_FOLDER, STATE_FOLDER, updatesFolder,
} from '../../src/core/transaction';
import {
	assertHoldsFor, createSession, defer, fileIn, type FileTree, isProcessGone, killIfRunning, makeOtaRoot, pidFromLine,
	printThenWait, readTree, SessionRecorder, SLEEPING_PYTHON, startChildThenWait, waitFor, writeFiles,
} from './helpers';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
/** Settle time for sessions that these tests drive with `applyNow`: long enough that the
 * watcher never takes a batch by itself during a test. */
const MANUAL_SETTLE_MS = 600_000;

/** Creates a session on `layout` that only merges on `applyNow`; it is disposed after the test. */
function makeSession(t: TestContext, layout: OtaLayout, raw: RawOptions = {}, config: Partial<SessionConfig> = {}) {
	return createSession(t, layout, { settleTimeMs: MANUAL_SETTLE_MS, ...raw }, config);
}


function backupFolder(layout: OtaLayout, id: string): string {
	return path.join(updatesFolder(layout), id, 'backup');
}

/** Returns `tree` without its empty folders (the `path/` keys of `readTree`). */
function filesOnly(tree: Record<string, string>): Record<string, string> {
	return Object.fromEntries(Object.entries(tree).filter(([relativePath]) => !relativePath.endsWith('/')));
}

/** Maps each file to its size and a hash of its content, so that trees of large files compare with short failure messages. */
function digestTree(tree: Record<string, string>): Record<string, string> {
	return Object.fromEntries(Object.entries(tree).map(([file, content]) => [file, `${content.length} bytes, sha256 ${createHash('sha256').update(content).digest('hex').slice(0, 16)}`]));
}

/** Writes the bytecode of `source` into its `__pycache__` folder, as an import would. */
function compileToCache(source: string): void {
	const result = spawnSync('python3', ['-c', 'import py_compile, sys; py_compile.compile(sys.argv[1], doraise=True)', source], { encoding: 'utf8' });
	assert.equal(result.status, 0, `py_compile of ${source} failed: ${result.stderr}`);
}

/** Counts how often `line` was printed on stdout. */
function countLines(recorder: SessionRecorder, line: string): number {
	return recorder.lines().filter((printed) => printed === line).length;
}

/** Python source that prints `line` and exits with `exitCode` at once. */
function printThenExit(line: string, exitCode: number): string {
	return `import sys\nprint(${JSON.stringify(line)}, flush=True)\nsys.exit(${exitCode})\n`;
}

/** Mounts a tmpfs of `size` (mount's syntax, e.g. "1m") on `folder`; skips the test when
 * that is not permitted. The mount is removed after the test. */
function mountTmpfs(t: TestContext, folder: string, size: string): boolean {
	if (process.platform !== 'linux') {
		t.skip('mounting a tmpfs needs Linux');
		return false;
	}
	fs.mkdirSync(folder, { recursive: true });
	const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', folder], { encoding: 'utf8' });
	if (mount.status !== 0) {
		t.skip(`cannot mount a tmpfs (needs root): ${(mount.stderr || mount.error?.message || '').trim()}`);
		return false;
	}
	defer(t, () => {
		const unmount = spawnSync('umount', [folder], { encoding: 'utf8' });
		assert.equal(unmount.status, 0, `umount ${folder} failed: ${unmount.stderr}`);
	});
	return true;
}

function remount(folder: string, mode: 'ro' | 'rw'): void {
	const result = spawnSync('mount', ['-o', `remount,${mode}`, folder], { encoding: 'utf8' });
	assert.equal(result.status, 0, `mount -o remount,${mode} ${folder} failed: ${result.stderr}`);
}

/** A child process running a fixture script with tsx, its stdout collected line by line. */
class FixtureProcess {
	readonly child: ChildProcess;
	readonly lines: string[] = [];
	readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
	stderr = '';
	private partial = '';

	constructor(script: string, args: string[]) {
		this.child = spawn(process.execPath, ['--import', 'tsx', path.join(FIXTURES, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
		this.child.stdout!.setEncoding('utf8').on('data', (text: string) => {
			const parts = (this.partial + text).split('\n');
			this.partial = parts.pop()!;
			this.lines.push(...parts);
		});
		this.child.stderr!.setEncoding('utf8').on('data', (text: string) => {
			this.stderr += text;
		});
		this.exited = once(this.child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
	}

	get pid(): number {
		return this.child.pid!;
	}

	output(): string {
		return `stdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`;
	}
}

/** Starts `sessionHost.ts` on `layout` and waits until its session has started. */
async function startHost(t: TestContext, layout: OtaLayout, raw: RawOptions = {}): Promise<FixtureProcess> {
	const host = new FixtureProcess('sessionHost.ts', [layout.root, JSON.stringify({ stopTimeoutMs: 2000, ...raw })]);
	defer(t, () => killIfRunning(host.pid));
	await waitFor('the session host to start', () => host.lines.includes('started'), { details: () => host.output() });
	return host;
}

/** Waits for the host's program to print "<label> <pid>" and returns the pid. */
function waitForHostPid(host: FixtureProcess, label: string): Promise<number> {
	return waitFor(`the hosted program to print "${label} <pid>"`, () => host.lines
		.filter((line) => line.startsWith('output '))
		.map((line) => pidFromLine(line.slice('output '.length), label))
		.find((pid) => pid !== undefined), { details: () => host.output() });
}

// Checks before the switch.

test('syntax error rejects batch', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': printThenWait('version 1'), 'main/pkg/util.py': 'X = 1\n' });
	const { session, recorder } = makeSession(t, layout);
	await session.start();
	await recorder.waitForLine('version 1');
	const pid = session.pid;
	assert.ok(pid !== undefined);
	writeFiles(layout.deposit, {
		'main.py': printThenWait('version 2'),
		'pkg/util.py': 'X = 2\n\ndef broken(:\n    return X\n',
	});
	const depositBefore = readTree(layout.deposit);
	const mainBefore = readTree(layout.main);

	const outcome = await session.applyNow();

	assert.equal(outcome, 'rejected');
	const rejections = recorder.noticesOf('UPDATE_REJECTED');
	assert.equal(rejections.length, 1);
	assert.equal(rejections[0].problems.length, 1, 'one problem: only pkg/util.py is invalid');
	const [problem] = rejections[0].problems;
	assert.equal(problem.code, 'SYNTAX_ERROR');
	assert.equal(problem.path, 'pkg/util.py');
	assert.equal(problem.line, 3);
	assert.match(problem.detail ?? '', /invalid syntax/);
	const message = describeNotice(rejections[0], english);
	assert.match(message, /deposit\/pkg\/util\.py:3: syntax error: invalid syntax/, message);
	assert.equal(session.pid, pid, 'the old version is still the running program');
	assert.equal(isProcessGone(pid), false);
	assert.equal(recorder.noticesOf('PROGRAM_STOPPED').length, 0);
	assert.deepEqual(readTree(layout.deposit), depositBefore, 'the deposit is unchanged');
	assert.deepEqual(readTree(layout.main), mainBefore, 'main/ is unchanged');
	assert.deepEqual(await listJournals(layout), [], 'a rejected batch writes no journal');
});

test('check command runs on staged tree', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': printThenWait('version 1'), 'main/old.py': 'OLD = True\n' });
	// The command passes only in a tree where the deposit is merged: feature.py exists
	// only in the deposit, and old.py is deleted only by the deletion list.
	const checkCommand = 'test ! -e old.py && grep -q "ENABLED = True" feature.py || { echo "staged tree not ready:" $(ls); exit 4; }';
	const { session, recorder } = makeSession(t, layout, { checkCommand });
	await session.start();
	await recorder.waitForLine('version 1');
	const pid = session.pid;
	writeFiles(layout.deposit, { 'main.py': printThenWait('version 2'), 'feature.py': 'ENABLED = False\n', '.ota-delete': 'old.py\n' });
	const depositBefore = readTree(layout.deposit);
	const mainBefore = readTree(layout.main);

	const rejectedOutcome = await session.applyNow();

	assert.equal(rejectedOutcome, 'rejected');
	const [rejection] = recorder.noticesOf('UPDATE_REJECTED');
	assert.equal(rejection.problems.length, 1);
	const [problem] = rejection.problems;
	assert.equal(problem.code, 'CHECK_FAILED');
	assert.equal(problem.path, checkCommand);
	assert.match(problem.detail ?? '', /^exit code 4\n/);
	assert.match(problem.detail ?? '', /staged tree not ready: feature\.py main\.py/, 'the command ran in a copy of main/ with the deposit applied');
	assert.equal(session.pid, pid, 'the old version keeps running');
	assert.equal(isProcessGone(pid!), false);
	assert.deepEqual(readTree(layout.deposit), depositBefore);
	assert.deepEqual(readTree(layout.main), mainBefore);
	assert.deepEqual(fs.readdirSync(path.join(layout.root, STATE_FOLDER)).filter((name) => name.startsWith('staging-')), [], 'the staged copy is removed');

	writeFiles(layout.deposit, { 'feature.py': 'ENABLED = True\n' });
	const appliedOutcome = await session.applyNow();

	assert.equal(appliedOutcome, 'applied', recorder.summary());
	await recorder.waitForLine('version 2');
	assert.equal(fs.readFileSync(fileIn(layout, 'main', 'feature.py'), 'utf8'), 'ENABLED = True\n');
	assert.equal(fs.existsSync(fileIn(layout, 'main', 'old.py')), false);
	assert.deepEqual(session.lastProblems, []);
});

// Crashes during a merge.

/** Number of crash trials, each in its own process killed at a random operation. */
const CRASH_TRIALS = 100;
/** Trials run at once; each spends most of its time starting node with tsx. */
const CRASH_CONCURRENCY = 4;

/** A small deterministic generator (mulberry32), so that a seed reproduces a run. */
function seededRandom(seed: number): () => number {
	let state = seed >>> 0;
	return () => {
		state = (state + 0x6d2b79f5) >>> 0;
		let mixed = Math.imul(state ^ (state >>> 15), 1 | state);
		mixed = (mixed + Math.imul(mixed ^ (mixed >>> 7), 61 | mixed)) ^ mixed;
		return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
	};
}

interface CrashBatch {
	main: FileTree;
	deposit: FileTree;
	/** Lines of the deletion list, each naming a path of `main/`. */
	deletions: string[];
}

/**
 * Builds a batch of 200 files. 100 replace files of `main/` with content of the same size
 * and 100 are added in nested folders. The deletion list removes a folder, single files,
 * the old name of a renamed file and a file `lib` that the deposit turns into a folder.
 */
function crashBatch(): CrashBatch {
	const main: FileTree = { 'main.py': 'print("main")\n', 'lib': 'lib was a file\n', 'renamed_from.txt': 'renamed content\n' };
	const deposit: FileTree = { 'renamed_to.txt': 'renamed content, new\n' };
	for (let i = 0; i < 10; i++) {
		main[`keep/k${i}.txt`] = `keep ${i}\n`;
	}
	for (let i = 0; i < 5; i++) {
		main[`old/o${i}.txt`] = `old folder file ${i}\n`;
		main[`gone${i}.txt`] = `gone ${i}\n`;
	}
	for (let i = 0; i < 100; i++) {
		const relativePath = i < 80 ? `pkg${i % 4}/mod${i}.py` : `top${i}.txt`;
		main[relativePath] = `${relativePath} old\n`;
		deposit[relativePath] = `${relativePath} new\n`;
	}
	for (let i = 0; i < 99; i++) {
		let relativePath = `add${i}.txt`;
		if (i < 50) {
			relativePath = `new/a${i % 2}/b${i % 5}/n${i}.txt`;
		} else if (i < 60) {
			relativePath = `lib/x${i}.py`;
		}
		deposit[relativePath] = `${relativePath} added\n`;
	}
	const deletions = ['old', ...[0, 1, 2, 3, 4].map((i) => `gone${i}.txt`), 'lib', 'renamed_from.txt'];
	return { main, deposit, deletions };
}

/** Selects the files of `tree` at or below `relativePath`. */
function subtree(tree: FileTree, relativePath: string): FileTree {
	return Object.fromEntries(Object.entries(tree).filter(([file]) => file === relativePath || file.startsWith(`${relativePath}/`)));
}

/** Checks the root of one crash trial after recovery; the messages name the trial. */
async function checkRecoveredTrial(layout: OtaLayout, batch: CrashBatch, label: string): Promise<void> {
	const journals = await listJournals(layout);
	assert.ok(journals.length <= 1, `${label}: one update at most, found ${journals.length}`);
	const journal = journals[0];
	if (journal === undefined) {
		// Killed before the journal existed: nothing may have moved.
		assert.deepEqual(readTree(layout.main), batch.main, `${label}: main/ unchanged without a journal`);
		assert.deepEqual(readTree(layout.deposit), { ...batch.deposit, '.ota-delete': batch.deletions.join('\n') + '\n' }, `${label}: deposit unchanged without a journal`);
		return;
	}
	assert.equal(journal.status, 'applied', `${label}: the journal is finished`);
	assert.deepEqual(journal.changed, [], `${label}: no file counts as changed`);

	const expectedMain: FileTree = { ...batch.main };
	const expectedBackup: FileTree = {};
	for (const deletion of batch.deletions) {
		for (const [file, content] of Object.entries(subtree(batch.main, deletion))) {
			expectedBackup[file] = content;
			delete expectedMain[file];
		}
	}
	for (const [file, content] of Object.entries(batch.deposit)) {
		if (expectedMain[file] !== undefined) {
			expectedBackup[file] = expectedMain[file];
		}
		expectedMain[file] = content;
	}
	assert.deepEqual(readTree(layout.main), expectedMain, `${label}: every deposited file is whole in main/ and nothing else changed`);
	assert.deepEqual(readTree(backupFolder(layout, journal.id)), expectedBackup, `${label}: every replaced or deleted file is whole in the backup`);
	assert.deepEqual(filesOnly(readTree(layout.deposit)), {}, `${label}: the deposit holds no file, the deletion list included`);
}

test('merge survives SIGKILL at any operation', async (t) => {
	const seed = process.env.OTA_CRASH_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.OTA_CRASH_SEED);
	t.diagnostic(`crash trials seed ${seed} (set OTA_CRASH_SEED=${seed} to repeat this run)`);
	const random = seededRandom(seed);
	const batch = crashBatch();
	const makeTrialRoot = (): OtaLayout => {
		const layout = makeOtaRoot(t);
		writeFiles(layout.main, batch.main);
		writeFiles(layout.deposit, { ...batch.deposit, '.ota-delete': batch.deletions.join('\n') + '\n' });
		return layout;
	};

	// Operations of the whole update: the journal twice, each deletion, each new folder,
	// each replaced file twice (into the backup, then into place) and each added file once.
	const plan = await planDeposit(makeTrialRoot(), createIgnoreMatcher([], []));
	assert.deepEqual(plan.problems, []);
	const replacing = plan.files.filter((file) => file.action === 'replace').length;
	const operations = 2 + plan.deletions.length + plan.folders.length + 2 * replacing + (plan.files.length - replacing);
	assert.equal(plan.files.length, 200);
	assert.equal(plan.deletions.length, batch.deletions.length);
	const killPoints = Array.from({ length: CRASH_TRIALS }, () => 1 + Math.floor(random() * (operations + 2)));

	const finished: number[] = [];
	// After the first failure no trial starts, and the test ends only once the trials in
	// flight are done, so that none of them creates a root after the cleanup ran.
	let firstFailure: { error: unknown } | undefined;
	const runTrial = async (trial: number, killAt: number): Promise<void> => {
		const label = `trial ${trial} (seed ${seed}, killed at operation ${killAt} of ${operations})`;
		const layout = makeTrialRoot();
		const child = new FixtureProcess('crashingMerge.ts', [layout.root, String(killAt)]);
		const exit = await child.exited;
		if (killAt <= operations) {
			assert.equal(exit.signal, 'SIGKILL', `${label}: the fixture must die at its hook\n${child.output()}`);
		} else {
			assert.equal(exit.code, 0, `${label}: the fixture must finish\n${child.output()}`);
			assert.deepEqual(child.lines, [`finished ${operations}`], `${label}: operation count`);
			finished.push(trial);
		}

		const recovered = await recoverInterruptedUpdates(layout);

		assert.ok(recovered.length <= 1, `${label}: ${JSON.stringify(recovered)}`);
		await checkRecoveredTrial(layout, batch, label);
		assert.deepEqual(await recoverInterruptedUpdates(layout), [], `${label}: a second recovery has nothing to do`);
		await fs.promises.rm(layout.root, { recursive: true, force: true });
	};
	await pMap(killPoints.entries(), async ([trial, killAt]) => {
		if (firstFailure === undefined) {
			await runTrial(trial, killAt).catch((error: unknown) => {
				firstFailure ??= { error };
			});
		}
	}, { concurrency: CRASH_CONCURRENCY });
	if (firstFailure !== undefined) {
		throw firstFailure.error;
	}
	t.diagnostic(`${CRASH_TRIALS} trials over ${operations} operations, ${finished.length} finished without a kill`);
});

// Bytecode.

test('same-size module update runs new code', async (t) => {
	const layout = makeOtaRoot(t, {
		'main/main.py': 'import time\nimport settings\nprint(f"value {settings.VALUE}", flush=True)\nwhile True:\n    time.sleep(60)\n',
		'main/settings.py': 'VALUE = 111\n',
	});
	// Compiled here rather than by the import, because PYTHONDONTWRITEBYTECODE may be set.
	compileToCache(fileIn(layout, 'main', 'settings.py'));
	const { session, recorder } = makeSession(t, layout);
	await session.start();
	await recorder.waitForLine('value 111');
	// Same size and the same modification time: the cached bytecode's header would match.
	const oldModule = fs.statSync(fileIn(layout, 'main', 'settings.py'));
	writeFiles(layout.deposit, { 'settings.py': 'VALUE = 222\n' });
	fs.utimesSync(fileIn(layout, 'deposit', 'settings.py'), oldModule.atime, oldModule.mtime);
	assert.equal(fs.statSync(fileIn(layout, 'deposit', 'settings.py')).size, oldModule.size);

	const outcome = await session.applyNow();

	assert.equal(outcome, 'applied');
	await recorder.waitForLine('value 222');
	assert.deepEqual(recorder.lines(), ['value 111', 'value 222']);
});

// Deletions and renames.

test('deletion list rename and file to folder', async (t) => {
	const layout = makeOtaRoot(t, {
		'main/old_name.py': 'NAME = "old"\n',
		'main/lib': 'a file named lib\n',
		'main/keep.py': 'KEEP = 1\n',
		'deposit/new_name.py': 'NAME = "new"\n',
		'deposit/lib/__init__.py': '',
		'deposit/lib/helpers.py': 'def help():\n    return 1\n',
		'deposit/.ota-delete': '# a rename and a file that becomes a folder\nold_name.py\nlib\n',
	});
	const mainBefore = readTree(layout.main);
	const { session, recorder } = makeSession(t, layout);

	const outcome = await session.applyNow();

	assert.equal(outcome, 'applied', recorder.summary());
	const [applied] = recorder.noticesOf('UPDATE_APPLIED');
	assert.deepEqual(applied.deleted, ['old_name.py', 'lib']);
	assert.deepEqual(applied.added, ['lib/__init__.py', 'lib/helpers.py', 'new_name.py']);
	assert.deepEqual(readTree(layout.main), {
		'keep.py': 'KEEP = 1\n',
		'lib/__init__.py': '',
		'lib/helpers.py': 'def help():\n    return 1\n',
		'new_name.py': 'NAME = "new"\n',
	});
	assert.deepEqual(readTree(backupFolder(layout, applied.id)), { lib: 'a file named lib\n', 'old_name.py': 'NAME = "old"\n' });
	assert.deepEqual(readTree(layout.deposit), {}, 'the deletion list is consumed with the batch');

	// Rolling back turns the folder into the file again, also after the new version ran
	// and left bytecode in the folder.
	compileToCache(fileIn(layout, 'main', 'lib/helpers.py'));
	const [rolledBack] = await session.rollBack();

	assert.equal(rolledBack.id, applied.id);
	assert.deepEqual(readTree(layout.main), mainBefore);
	assert.deepEqual(readTree(path.join(layout.root, REJECTED_FOLDER, applied.id)), {
		'lib/__init__.py': '',
		'lib/helpers.py': 'def help():\n    return 1\n',
		'new_name.py': 'NAME = "new"\n',
	});
});

test('deletion list invalid lines reject batch', async (t) => {
	const layout = makeOtaRoot(t, {
		'main/keep.py': 'KEEP = 1\n',
		'deposit/a.py': 'A = 1\n',
		'deposit/.ota-delete': '../x\n/etc/passwd\nkeep.py\n',
	});
	const mainBefore = readTree(layout.main);
	const depositBefore = readTree(layout.deposit);
	const { session, recorder } = makeSession(t, layout);

	const outcome = await session.applyNow();

	assert.equal(outcome, 'rejected');
	const [rejection] = recorder.noticesOf('UPDATE_REJECTED');
	assert.deepEqual(rejection.problems, [
		{ code: 'INVALID_DELETION', path: '../x' },
		{ code: 'INVALID_DELETION', path: '/etc/passwd' },
	]);
	assert.match(describeProblem(rejection.problems[0], english), /"\.\.\/x"/);
	assert.match(describeProblem(rejection.problems[1], english), /"\/etc\/passwd"/);
	assert.deepEqual(readTree(layout.main), mainBefore);
	assert.deepEqual(readTree(layout.deposit), depositBefore);
	assert.ok(fs.existsSync('/etc/passwd'));
});

test('deletion list refuses paths through links', async (t) => {
	const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'ota-outside-'));
	t.after(() => fs.rmSync(outside, { recursive: true, force: true }));
	fs.writeFileSync(path.join(outside, 'precious.txt'), 'keep me\n');
	const layout = makeOtaRoot(t, {
		'main/main.py': 'X = 1\n',
		'deposit/a.py': 'A = 1\n',
		'deposit/.ota-delete': 'link/precious.txt\nmain.py/x\n',
	});
	fs.symlinkSync(outside, path.join(layout.main, 'link'));
	const { session, recorder } = makeSession(t, layout);

	const outcome = await session.applyNow();

	assert.equal(outcome, 'rejected');
	const [rejection] = recorder.noticesOf('UPDATE_REJECTED');
	assert.deepEqual(rejection.problems, [
		{ code: 'INVALID_DELETION', path: 'link/precious.txt' },
		{ code: 'INVALID_DELETION', path: 'main.py/x' },
	]);
	assert.equal(fs.readFileSync(path.join(outside, 'precious.txt'), 'utf8'), 'keep me\n', 'the file behind the link stays');
	assert.ok(fs.existsSync(path.join(layout.deposit, 'a.py')), 'nothing moves');
});

// Rollback.

test('quick failure of new version rolls back', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': printThenWait('version 1'), 'main/helper.py': 'H = 1\n' });
	const { session, recorder } = makeSession(t, layout, { minUptimeMs: 10_000 });
	await session.start();
	await recorder.waitForLine('version 1');
	const firstPid = session.pid;
	const mainBefore = readTree(layout.main);
	const deposited = { 'main.py': printThenExit('version 2', 3), 'helper.py': 'H = 2\n', 'extra/data.txt': 'new data\n' };
	writeFiles(layout.deposit, deposited);

	const outcome = await session.applyNow();

	assert.equal(outcome, 'applied');
	const rollback = await recorder.waitForNotice('ROLLED_BACK');
	await waitFor('the previous version to run again', () => countLines(recorder, 'version 1') === 2 && session.state === 'running', { details: () => recorder.summary() });
	const [applied] = recorder.noticesOf('UPDATE_APPLIED');
	assert.equal(rollback.id, applied.id);
	assert.equal(rollback.reason, 'crash');
	assert.deepEqual(recorder.lines(), ['version 1', 'version 2', 'version 1']);
	assert.deepEqual(readTree(layout.main), mainBefore, 'replaced files are back and added files are gone');
	assert.deepEqual(readTree(path.join(layout.root, REJECTED_FOLDER, applied.id)), deposited, 'the new files are kept whole');
	assert.notEqual(session.pid, firstPid);
	assert.equal(isProcessGone(session.pid!), false);
	const [journal] = await session.history();
	assert.equal(journal.id, applied.id);
	assert.equal(journal.status, 'rolledBack');
	assert.match(journal.note ?? '', /failed soon after it started/);
});

test('no rollback when autoRollback is off', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': printThenWait('version 1') });
	const { session, recorder } = makeSession(t, layout, { minUptimeMs: 10_000, autoRollback: false });
	await session.start();
	await recorder.waitForLine('version 1');
	writeFiles(layout.deposit, { 'main.py': printThenExit('version 2', 3) });

	assert.equal(await session.applyNow(), 'applied');
	const exit = await recorder.waitForNotice('PROGRAM_EXITED');
	// The restart is decided after the rollback check, in the same step.
	await recorder.waitForNotice('RESTART_SCHEDULED');

	assert.equal(exit.exitCode, 3);
	assert.deepEqual(recorder.noticesOf('ROLLED_BACK'), []);
	assert.equal(fs.readFileSync(fileIn(layout, 'main', 'main.py'), 'utf8'), printThenExit('version 2', 3));
	const [journal] = await session.history();
	assert.equal(journal.status, 'applied');
});

test('manual rollback newest first down to id', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': printThenWait('version 1'), 'main/b.txt': 'b\n' });
	const mainBefore = readTree(layout.main);
	const { session, recorder } = makeSession(t, layout);
	await session.start();
	await recorder.waitForLine('version 1');
	const batches: FileTree[] = [
		{ 'main.py': printThenWait('version 2'), 'a.txt': 'a\n' },
		{ 'main.py': printThenWait('version 3'), '.ota-delete': 'a.txt\n' },
		{ 'main.py': printThenWait('version 4'), 'c.txt': 'c\n' },
	];
	const ids: string[] = [];
	for (const [index, batch] of batches.entries()) {
		writeFiles(layout.deposit, batch);
		assert.equal(await session.applyNow(), 'applied', recorder.summary());
		await recorder.waitForLine(`version ${index + 2}`);
		ids.push(recorder.noticesOf('UPDATE_APPLIED')[index].id);
	}
	assert.deepEqual((await session.history()).map((journal) => [journal.id, journal.status]), [
		[ids[2], 'applied'], [ids[1], 'applied'], [ids[0], 'applied'],
	], 'the history lists updates newest first');

	const last = await session.rollBack();

	assert.deepEqual(last.map((result) => result.id), [ids[2]]);
	await waitFor('version 3 to run again', () => countLines(recorder, 'version 3') === 2, { details: () => recorder.summary() });
	assert.deepEqual(readTree(layout.main), { 'main.py': printThenWait('version 3'), 'b.txt': 'b\n' });
	assert.deepEqual(readTree(path.join(layout.root, REJECTED_FOLDER, ids[2])), batches[2]);

	const older = await session.rollBack(ids[0]);

	assert.deepEqual(older.map((result) => result.id), [ids[1], ids[0]], 'newest first');
	await waitFor('version 1 to run again', () => countLines(recorder, 'version 1') === 2, { details: () => recorder.summary() });
	assert.deepEqual(readTree(layout.main), mainBefore);
	assert.deepEqual(readTree(path.join(layout.root, REJECTED_FOLDER, ids[0])), batches[0], 'a.txt came back with update 2 and left with update 1');
	const history = await session.history();
	assert.deepEqual(history.map((journal) => [journal.id, journal.status]), [
		[ids[2], 'rolledBack'], [ids[1], 'rolledBack'], [ids[0], 'rolledBack'],
	]);
	assert.ok(history.every((journal) => journal.note === 'rolled back by request'));
	assert.deepEqual(recorder.noticesOf('ROLLED_BACK').map((notice) => [notice.id, notice.reason]), [
		[ids[2], 'manual'], [ids[1], 'manual'], [ids[0], 'manual'],
	]);
	await assert.rejects(session.rollBack(), /There is no applied update to roll back/);
});

// The program's lock file.

test('program lock file postpones update', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': printThenWait('version 1') });
	const { session, recorder } = makeSession(t, layout);
	await session.start();
	await recorder.waitForLine('version 1');
	const pid = session.pid;
	const lockFile = fileIn(layout, 'main', PROGRAM_LOCK_FILE);
	fs.writeFileSync(lockFile, '');
	writeFiles(layout.deposit, { 'main.py': printThenWait('version 2') });

	const applying = session.applyNow();
	await recorder.waitForState('waitingForProgram', session);

	const [waiting] = recorder.noticesOf('WAITING_FOR_PROGRAM');
	assert.equal(waiting.lockFile, lockFile);
	assert.equal(session.pid, pid, 'the program is not stopped while it holds its lock');
	assert.equal(isProcessGone(pid!), false);
	assert.ok(fs.existsSync(fileIn(layout, 'deposit', 'main.py')));
	fs.rmSync(lockFile);
	assert.equal(await applying, 'applied');
	await recorder.waitForLine('version 2');
	assert.deepEqual(recorder.noticesOf('PROGRAM_LOCK_TIMEOUT'), []);
});

test('program lock file wait has maximum', async (t) => {
	const maxWaitMs = 400;
	const layout = makeOtaRoot(t, { 'main/main.py': printThenWait('version 1') });
	const { session, recorder } = makeSession(t, layout, { programLockMaxWaitMs: maxWaitMs });
	await session.start();
	await recorder.waitForLine('version 1');
	const lockFile = fileIn(layout, 'main', PROGRAM_LOCK_FILE);
	fs.writeFileSync(lockFile, 'held for good');
	writeFiles(layout.deposit, { 'main.py': printThenWait('version 2') });
	const startedAt = Date.now();

	const outcome = await session.applyNow();

	assert.equal(outcome, 'applied');
	assert.ok(Date.now() - startedAt >= maxWaitMs, `the update waited ${Date.now() - startedAt} ms`);
	assert.equal(recorder.noticesOf('PROGRAM_LOCK_TIMEOUT').length, 1);
	assert.ok(recorder.states.includes('waitingForProgram'));
	await recorder.waitForLine('version 2');
	assert.equal(fs.readFileSync(lockFile, 'utf8'), 'held for good', 'the lock file is never deleted');
});

// One supervisor per root.

test('second supervisor on root rejected', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': 'import os, time\nprint(f"program {os.getpid()}", flush=True)\ntime.sleep(60)\n' });
	const host = await startHost(t, layout);
	const programPid = await waitForHostPid(host, 'program');
	defer(t, () => killIfRunning(programPid));
	writeFiles(layout.deposit, { 'new.py': 'NEW = 1\n' });
	const { session } = makeSession(t, layout);

	await assert.rejects(session.start(), (error: unknown) => {
		assert.ok(error instanceof RootOwnedError, String(error));
		assert.equal(error.owner.pid, host.pid);
		assert.match(error.message, new RegExp(`test session host \\(pid ${host.pid} on `));
		return true;
	});
	await assert.rejects(session.applyNow(), RootOwnedError);

	assert.equal(session.isSupervising, false);
	assert.equal(isProcessGone(programPid), false, "the owner's program keeps running");
	assert.ok(fs.existsSync(fileIn(layout, 'deposit', 'new.py')), 'the refused session merged nothing');
});

test('stale owner lock taken over', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': printThenWait('version 1') });
	const ownerFile = path.join(layout.root, STATE_FOLDER, 'owner.json');
	const finished = spawnSync('true');
	assert.equal(finished.status, 0);
	const sleeper = spawn(SLEEPING_PYTHON[0], SLEEPING_PYTHON.slice(1), { stdio: 'ignore' });
	defer(t, () => killIfRunning(sleeper.pid));
	const staleOwners = [
		{ case: 'a dead pid', pid: finished.pid, startTime: '1' },
		{ case: 'a reused pid', pid: sleeper.pid, startTime: 'not its start time' },
	];

	for (const stale of staleOwners) {
		fs.mkdirSync(path.dirname(ownerFile), { recursive: true });
		fs.writeFileSync(ownerFile, JSON.stringify({ pid: stale.pid, startTime: stale.startTime, hostname: os.hostname(), kind: 'ota-update run', since: '2024-01-01T00:00:00.000Z' }));
		const { session, recorder } = makeSession(t, layout);

		await session.start();

		await recorder.waitForLine('version 1');
		const owner = JSON.parse(fs.readFileSync(ownerFile, 'utf8')) as { pid: number };
		assert.equal(owner.pid, process.pid, `owner after ${stale.case}`);
		await session.dispose(500);
		assert.equal(fs.existsSync(ownerFile), false, `the lock is released after ${stale.case}`);
	}
});

// A program left running by a killed supervisor.

test('leftover program stopped by next supervisor', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': startChildThenWait(SLEEPING_PYTHON) });
	const host = await startHost(t, layout);
	const programPid = await waitForHostPid(host, 'program');
	const childPid = await waitForHostPid(host, 'child');
	defer(t, () => killIfRunning(childPid));
	defer(t, () => killIfRunning(programPid));

	host.child.kill('SIGKILL');
	await host.exited;

	assert.equal(isProcessGone(programPid), false, 'killing the supervisor leaves its program running');
	assert.equal(isProcessGone(childPid), false);
	const { session, recorder } = makeSession(t, layout);
	await session.start();
	const leftover = await recorder.waitForNotice('LEFTOVER_STOPPED');
	await recorder.waitForNotice('PROGRAM_STARTED');

	assert.equal(leftover.pid, programPid);
	assert.ok(isProcessGone(programPid), 'the leftover program is stopped');
	assert.ok(isProcessGone(childPid), "the leftover program's child is stopped");
	const codes = recorder.notices.map((notice) => notice.code);
	assert.ok(codes.indexOf('LEFTOVER_STOPPED') < codes.indexOf('PROGRAM_STARTED'), codes.join(', '));
	assert.notEqual(session.pid, programPid);
	const log = fs.readFileSync(session.logFilePath!, 'utf8');
	assert.match(log, new RegExp(`Stopped program pid ${programPid}, left running by an earlier supervisor`));
});

// File system faults.

test('read-only folder in main undoes merge', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': printThenWait('version 1'), 'main/helper.py': 'H = 1\n' });
	const readOnly = path.join(layout.main, 'sub');
	if (!mountTmpfs(t, readOnly, '1m')) {
		return;
	}
	writeFiles(readOnly, { 'c.py': 'C = 1\n' });
	remount(readOnly, 'ro');
	const { session, recorder } = makeSession(t, layout);
	await session.start();
	await recorder.waitForLine('version 1');
	writeFiles(layout.deposit, { 'main.py': printThenWait('version 2'), 'helper.py': 'H = 2\n', 'added.py': 'A = 1\n', 'sub/c.py': 'C = 2\n' });
	const mainBefore = readTree(layout.main);
	const depositBefore = readTree(layout.deposit);

	const outcome = await session.applyNow();

	assert.equal(outcome, 'failed');
	const [failure] = recorder.noticesOf('MERGE_FAILED');
	assert.equal(failure.undone, true, failure.message);
	assert.equal(failure.errorCode, 'EROFS');
	assert.match(failure.path ?? '', /sub\/c\.py$/);
	assert.match(failure.message, /sub\/c\.py/);
	assert.deepEqual(readTree(layout.main), mainBefore, 'main/ is as before');
	assert.deepEqual(readTree(layout.deposit), depositBefore, 'every file is back in the deposit');
	await waitFor('the old version to run again', () => countLines(recorder, 'version 1') === 2, { details: () => recorder.summary() });
	const [journal] = await session.history();
	assert.equal(journal.status, 'failed');

	remount(readOnly, 'rw');
	assert.equal(await session.applyNow(), 'applied', recorder.summary());
	await recorder.waitForLine('version 2');
	assert.equal(fs.readFileSync(path.join(readOnly, 'c.py'), 'utf8'), 'C = 2\n');
});

test('full disk during copy undoes merge', async (t) => {
	const layout = makeOtaRoot(t);
	if (!mountTmpfs(t, layout.deposit, '16m') || !mountTmpfs(t, layout.main, '512k')) {
		return;
	}
	writeFiles(layout.main, { 'main.py': 'print("version 1")\n', 'data/table.txt': 'old table\n' });
	const block = 'x'.repeat(100 * 1024);
	const deposit: FileTree = { 'main.py': 'print("version 2")\n', 'data/table.txt': 'new table\n' };
	for (let i = 0; i < 12; i++) {
		deposit[`blobs/blob${i}.bin`] = `${i}${block}`;
	}
	writeFiles(layout.deposit, deposit);
	const mainBefore = readTree(layout.main);
	const { session, recorder } = makeSession(t, layout);

	const outcome = await session.applyNow();

	assert.equal(outcome, 'failed', recorder.summary());
	const [failure] = recorder.noticesOf('MERGE_FAILED');
	assert.equal(failure.errorCode, 'ENOSPC');
	assert.equal(failure.undone, true, failure.message);
	assert.deepEqual(digestTree(readTree(layout.main)), digestTree(mainBefore), 'main/ is as before, with no temporary copy left');
	assert.deepEqual(digestTree(readTree(layout.deposit)), digestTree(deposit), 'every file is whole in the deposit');
});

test('deposit on other file system keeps mtime', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': 'print("version 1")\n' });
	if (!mountTmpfs(t, layout.deposit, '4m')) {
		return;
	}
	writeFiles(layout.deposit, { 'main.py': 'print("version 2")\n', 'pkg/deep/mod.py': 'M = 1\n' });
	const mtime = new Date(1_600_000_000_250);
	for (const file of ['main.py', 'pkg/deep/mod.py']) {
		fs.utimesSync(fileIn(layout, 'deposit', file), mtime, mtime);
	}
	const { session, recorder } = makeSession(t, layout);

	assert.equal(await session.applyNow(), 'applied', recorder.summary());

	assert.deepEqual(readTree(layout.main), { 'main.py': 'print("version 2")\n', 'pkg/deep/mod.py': 'M = 1\n' });
	for (const file of ['main.py', 'pkg/deep/mod.py']) {
		assert.equal(fs.statSync(fileIn(layout, 'main', file)).mtimeMs, mtime.getTime(), `mtime of ${file}`);
	}
	assert.deepEqual(readTree(layout.deposit), {});
	const [applied] = recorder.noticesOf('UPDATE_APPLIED');
	assert.deepEqual(readTree(backupFolder(layout, applied.id)), { 'main.py': 'print("version 1")\n' });
});

test('merge error undoes moves still in flight', async (t) => {
	const layout = makeOtaRoot(t, { 'main/a.txt': 'old a\n', 'main/b.txt': 'old b\n' });
	writeFiles(layout.deposit, { 'a.txt': 'new a\n', 'b.txt': 'new b\n', 'c.txt': 'new c\n' });
	const mainBefore = readTree(layout.main);
	const depositBefore = readTree(layout.deposit);
	let failed = false;
	// b.txt fails before it moves, as on a disk error. The other files wait in their hook
	// until that error has been thrown, so they are in flight when it happens.
	const { session, recorder } = makeSession(t, layout, {}, {
		beforeMove: async (file) => {
			if (file.path === 'b.txt') {
				failed = true;
				throw Object.assign(new Error(`EIO: i/o error, rename '${fileIn(layout, 'deposit', 'b.txt')}'`), { code: 'EIO' });
			}
			await waitFor('the injected error', () => failed);
			await new Promise((resolve) => setImmediate(resolve));
		},
	});

	const outcome = await session.applyNow();

	assert.equal(outcome, 'failed', recorder.summary());
	const [failure] = recorder.noticesOf('MERGE_FAILED');
	assert.equal(failure.undone, true);
	assert.equal(failure.errorCode, 'EIO');
	assert.deepEqual(readTree(layout.main), mainBefore, 'main/ is as before');
	assert.deepEqual(readTree(layout.deposit), depositBefore, 'every file is back in the deposit');
	// A move still in flight when the undo ran would land within a few milliseconds.
	await assertHoldsFor('main/ and the deposit to stay as before', () => isDeepStrictEqual(readTree(layout.main), mainBefore) && isDeepStrictEqual(readTree(layout.deposit), depositBefore), 500);
	assert.equal((await listJournals(layout))[0].status, 'failed');
});

test('deposit emptied and refilled while settling', async (t) => {
	const settleTimeMs = 300;
	const layout = makeOtaRoot(t, { 'main/main.py': printThenWait('version 1') });
	const { session, recorder } = makeSession(t, layout, { settleTimeMs });
	await session.start();
	await recorder.waitForLine('version 1');
	await waitFor('the session to be idle', () => session.isIdle);

	writeFiles(layout.deposit, { 'first.txt': 'first\n', 'sub/first.txt': 'first\n', 'main.py': printThenWait('version 2') });
	await waitFor('the settle timer to be armed', () => !session.isIdle, { details: () => recorder.summary() });
	for (const name of fs.readdirSync(layout.deposit)) {
		fs.rmSync(path.join(layout.deposit, name), { recursive: true });
	}
	const refill = { 'main.py': printThenWait('version 3'), 'sub/second.txt': 'second, longer\n', 'second.txt': 'second\n' };
	writeFiles(layout.deposit, refill);
	await recorder.waitForLine('version 3');
	await waitFor('the deposit to be empty', () => fs.readdirSync(layout.deposit).length === 0, { details: () => recorder.summary() });

	assert.deepEqual(readTree(layout.main), refill, 'only the refilled files are merged');
	assert.deepEqual(recorder.noticesOf('MERGE_FAILED'), []);
	assert.deepEqual(recorder.noticesOf('WATCHER_ERROR'), []);
	assert.deepEqual(recorder.noticesOf('UPDATE_APPLIED').flatMap((notice) => notice.added).sort(), ['second.txt', 'sub/second.txt']);
	assert.ok(!recorder.lines().includes('version 2'));
});

test('deposit refilled during merge goes to next batch', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': printThenWait('version 1') });
	let refilled = false;
	const refill = { 'a.txt': 'a, uploaded again\n', 'b.txt': 'b, uploaded again\n' };
	const { session, recorder } = makeSession(t, layout, { settleTimeMs: 200 }, {
		beforeMove: () => {
			if (!refilled) {
				refilled = true;
				fs.rmSync(fileIn(layout, 'deposit', 'a.txt'));
				fs.rmSync(fileIn(layout, 'deposit', 'b.txt'));
				writeFiles(layout.deposit, refill);
			}
		},
	});
	await session.start();
	await recorder.waitForLine('version 1');
	writeFiles(layout.deposit, { 'a.txt': 'a\n', 'b.txt': 'b\n' });

	assert.equal(await session.applyNow(), 'applied');
	const [first] = recorder.noticesOf('UPDATE_APPLIED');
	assert.deepEqual(first.leftInDeposit, ['a.txt', 'b.txt'], 'files that changed during the merge stay');
	await recorder.waitForNotice('UPDATE_APPLIED', 2);
	await waitFor('the deposit to be empty', () => fs.readdirSync(layout.deposit).length === 0, { details: () => recorder.summary() });

	assert.deepEqual(readTree(layout.main), { 'main.py': printThenWait('version 1'), ...refill });
	assert.deepEqual(recorder.noticesOf('MERGE_FAILED'), []);
});

/** Open file descriptors of this process. */
function openFileCount(): number {
	return fs.readdirSync('/proc/self/fd').length;
}

function processListenerCount(): number {
	return process.eventNames().reduce((sum, name) => sum + process.listenerCount(name), 0);
}

test('1000 consecutive updates leak nothing', async (t) => {
	if (!fs.existsSync('/proc/self/fd')) {
		t.skip('counting open files needs /proc');
		return;
	}
	const updates = 1000;
	const maxHistory = 10;
	// No main.py: the session supervises and watches, but no program starts per update.
	const layout = makeOtaRoot(t);
	const { session, recorder } = makeSession(t, layout, { settleTimeMs: 5, maxHistory });
	await session.start();
	await recorder.waitForState('waitingForEntry', session);
	const sessionEmitter = session['emitter'];
	let baseline: { files: number; processListeners: number; sessionListeners: number } | undefined;

	for (let i = 0; i < updates; i++) {
		const content = `update ${i}\n`;
		writeFiles(layout.deposit, { [`data/${i % 7}/value.txt`]: content, 'latest.txt': content });
		const outcome = await session.applyNow();
		// The watcher may have taken the batch first; either way it is merged now.
		assert.ok(outcome === 'applied' || outcome === 'nothing', `update ${i}: ${outcome}`);
		assert.equal(fs.readFileSync(fileIn(layout, 'main', 'latest.txt'), 'utf8'), content, `update ${i}`);
		if (i === 99) {
			baseline = { files: openFileCount(), processListeners: processListenerCount(), sessionListeners: sessionEmitter.eventNames().reduce((sum, name) => sum + sessionEmitter.listenerCount(name), 0) };
		}
	}
	await waitFor('the session to be idle', () => session.isIdle);

	assert.ok(baseline !== undefined);
	assert.ok(openFileCount() <= baseline.files + 5, `open files grew from ${baseline.files} to ${openFileCount()}`);
	assert.equal(processListenerCount(), baseline.processListeners);
	assert.equal(sessionEmitter.eventNames().reduce((sum, name) => sum + sessionEmitter.listenerCount(name), 0), baseline.sessionListeners);
	assert.deepEqual(recorder.noticesOf('MERGE_FAILED'), []);
	assert.ok(fs.readdirSync(updatesFolder(layout)).length <= maxHistory, 'old journals are pruned');
	const [newest] = await listJournals(layout);
	assert.equal(newest.id, recorder.noticesOf('UPDATE_APPLIED').at(-1)?.id, 'the newest journal is the last update');
});
