import { before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
	defer, isProcessGone, killIfRunning, makeOtaRoot, makeTempFolder, pidFromLine, printThenWait, processState,
	SLEEPING_PYTHON, startChildThenWait, waitFor, writeFiles,
} from './helpers';

const REPO = path.resolve(import.meta.dirname, '..', '..');
const CLI = path.join(REPO, 'dist', 'cli.js');
/** Maximum time a one-shot command (`init`, `apply`, a usage error) may take. */
const COMMAND_TIMEOUT_MS = 15_000;

before(() => {
	const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: REPO, encoding: 'utf8' });
	assert.equal(build.status, 0, `npm run build failed:\n${build.stdout}\n${build.stderr}`);
});

interface CommandResult {
	code: number | null;
	stdout: string;
	stderr: string;
}

function runCli(args: string[], cwd = REPO): CommandResult {
	const result = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS });
	return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A running `ota-update run`, with its output collected line by line. */
class RunningCli {
	readonly child: ChildProcess;
	readonly lines: string[] = [];
	readonly exited: Promise<number | null>;
	private partial = '';
	private stderr = '';

	constructor(t: TestContext, args: string[]) {
		this.child = spawn(process.execPath, [CLI, 'run', ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
		this.child.stdout!.setEncoding('utf8').on('data', (text: string) => {
			const parts = (this.partial + text).split('\n');
			this.partial = parts.pop()!;
			this.lines.push(...parts);
		});
		this.child.stderr!.setEncoding('utf8').on('data', (text: string) => {
			this.stderr += text;
		});
		this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
		defer(t, () => killIfRunning(this.child.pid));
	}

	/** Waits for a program line `[stdout] <label> <pid>` and returns the pid. */
	waitForPid(label: string): Promise<number> {
		return waitFor(`the program to print "${label} <pid>"`, () => this.programLines().map((line) => pidFromLine(line, label)).find((pid) => pid !== undefined), {
			details: () => this.output(),
		});
	}

	waitForLine(what: string, pattern: RegExp): Promise<string> {
		return waitFor(what, () => this.lines.find((line) => pattern.test(line)), { details: () => this.output() });
	}

	/** Returns the program's stdout lines, without the log prefix. */
	programLines(): string[] {
		return this.lines.flatMap((line) => {
			const match = /\] INFO : \[stdout\] (.*)$/.exec(line);
			return match === null ? [] : [match[1]];
		});
	}

	output(): string {
		return `stdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`;
	}
}

test('cli bad arguments exit 2', () => {
	const cases = [
		[],
		['frobnicate'],
		['run', '--settle', 'soon'],
		['run', '--no-such-flag'],
		['apply', '--settle', '100'],
		['init', 'one', 'two'],
	];
	for (const args of cases) {
		const result = runCli(args);
		assert.equal(result.code, 2, `ota-update ${args.join(' ')} exited with ${result.code}`);
		assert.match(result.stderr, /^ota-update: .+\nUsage:/, `ota-update ${args.join(' ')}`);
	}
});

test('cli invalid setting exit 2', (t) => {
	const layout = makeOtaRoot(t);
	writeFiles(layout.root, { '.vscode/settings.json': '{ "pythonOta.stopSignal": "SIGFOO" }' });

	const result = runCli(['apply', layout.root]);

	assert.equal(result.code, 2);
	assert.match(result.stderr, /stopSignal/);
	assert.match(result.stderr, /SIGFOO/);
});

test('cli init creates folders', (t) => {
	const root = makeTempFolder(t);

	const result = runCli(['init', root]);

	assert.equal(result.code, 0, result.stderr);
	for (const folder of ['deposit', 'main', 'logs']) {
		assert.ok(fs.statSync(path.join(root, folder)).isDirectory(), `${folder}/ was not created`);
	}
	assert.match(result.stdout, /^Created /);
	assert.match(runCli(['init', root]).stdout, /already has/);
});

test('cli apply merges and exits 0', (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': 'old\n', 'deposit/main.py': 'new\n', 'deposit/pkg/a.py': 'a\n' });

	const result = runCli(['apply', layout.root]);

	assert.equal(result.code, 0, result.stdout + result.stderr);
	assert.equal(fs.readFileSync(path.join(layout.main, 'main.py'), 'utf8'), 'new\n');
	assert.equal(fs.readFileSync(path.join(layout.main, 'pkg', 'a.py'), 'utf8'), 'a\n');
	assert.deepEqual(fs.readdirSync(layout.deposit), []);
	assert.match(result.stdout, /INFO : Update \S+ applied: 1 added, 1 replaced/);
	assert.equal(fs.readdirSync(layout.logs).length, 1, 'apply writes a log file');
});

test('cli apply rejected exits 1', (t) => {
	const layout = makeOtaRoot(t, { 'main/config/a.json': '{}', 'deposit/config': 'a file where main/ has a folder' });

	const result = runCli(['apply', layout.root]);

	assert.equal(result.code, 1, result.stdout + result.stderr);
	assert.match(result.stdout, /ERROR : Update rejected/);
	assert.match(result.stdout, /deposit\/config is a file but main\/config is a folder/);
	assert.equal(fs.readFileSync(path.join(layout.deposit, 'config'), 'utf8'), 'a file where main/ has a folder');
});

test('cli run stops program group on SIGTERM', async (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': startChildThenWait(SLEEPING_PYTHON) });
	const cli = new RunningCli(t, [layout.root, '--settle', '200']);
	const program = await cli.waitForPid('program');
	const child = await cli.waitForPid('child');
	defer(t, () => [program, child].forEach(killIfRunning));

	cli.child.kill('SIGTERM');
	const code = await cli.exited;

	assert.equal(code, 0, cli.output());
	for (const [name, pid] of Object.entries({ program, child })) {
		assert.ok(isProcessGone(pid), `${name} (pid ${pid}) survived the CLI in state ${processState(pid)}`);
	}
	assert.ok(cli.lines.some((line) => /Received SIGTERM/.test(line)), cli.output());
	assert.ok(cli.lines.some((line) => /stopped with SIGTERM for stop/.test(line)), cli.output());
});

test('cli flags win over settings', async (t) => {
	const layout = makeOtaRoot(t, {
		'main/from_settings.py': printThenWait('entry from settings'),
		'main/from_flag.py': printThenWait('entry from flag'),
		'deposit/data.txt': 'merged\n',
		'.vscode/settings.json': [
			'{',
			'  // An hour of settle time: the deposit merges quickly only if --settle wins.',
			'  "pythonOta.settleTime": 3600000,',
			'  "pythonOta.entry": "from_settings.py",',
			'}',
		].join('\n'),
	});

	const withFlags = new RunningCli(t, [layout.root, '--settle', '100', '--entry', 'from_flag.py']);
	await withFlags.waitForLine('the program started from the flag entry', /\[stdout\] entry from flag$/);
	assert.equal(fs.readFileSync(path.join(layout.main, 'data.txt'), 'utf8'), 'merged\n', 'the deposit merged within the flag settle time');
	withFlags.child.kill('SIGTERM');
	assert.equal(await withFlags.exited, 0, withFlags.output());

	const withSettings = new RunningCli(t, [layout.root]);
	await withSettings.waitForLine('the program started from the settings entry', /\[stdout\] entry from settings$/);
	withSettings.child.kill('SIGTERM');
	assert.equal(await withSettings.exited, 0, withSettings.output());
});

test('cli history and rollback', (t) => {
	const layout = makeOtaRoot(t, { 'main/main.py': 'print("v1")\n', 'main/keep.txt': 'kept\n', 'deposit/main.py': 'print("v2")\n', 'deposit/new.txt': 'new\n' });
	assert.equal(runCli(['apply', layout.root]).code, 0);
	assert.equal(fs.readFileSync(path.join(layout.main, 'main.py'), 'utf8'), 'print("v2")\n');

	const history = runCli(['history', layout.root]);
	assert.equal(history.code, 0, history.stderr);
	assert.match(history.stdout, /^\S+  \d\d\/\d\d\/\d\d \d\d:\d\d:\d\d  applied\s+1 added, 1 replaced, 0 deleted  main.py, new.txt$/m);

	const rollback = runCli(['rollback', layout.root]);
	assert.equal(rollback.code, 0, rollback.stdout + rollback.stderr);
	assert.match(rollback.stdout, /Rolled back update \S+: 1 file\(s\) restored, 2 moved to /);
	assert.equal(fs.readFileSync(path.join(layout.main, 'main.py'), 'utf8'), 'print("v1")\n');
	assert.equal(fs.existsSync(path.join(layout.main, 'new.txt')), false, 'the added file left main/');
	assert.equal(fs.readFileSync(path.join(layout.main, 'keep.txt'), 'utf8'), 'kept\n');
	const [id] = fs.readdirSync(path.join(layout.root, 'rejected'));
	assert.equal(fs.readFileSync(path.join(layout.root, 'rejected', id, 'new.txt'), 'utf8'), 'new\n');
	assert.equal(fs.readFileSync(path.join(layout.root, 'rejected', id, 'main.py'), 'utf8'), 'print("v2")\n');

	const again = runCli(['rollback', layout.root]);
	assert.equal(again.code, 1, 'nothing left to roll back');
	assert.match(again.stderr, /no applied update to roll back/);
});
