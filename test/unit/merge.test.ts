import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createIgnoreMatcher } from '../../src/core/ignore';
import type { OtaLayout } from '../../src/core/layout';
import { applyPlan, planDeposit, scanDeposit } from '../../src/core/merge';
import { defer, makeOtaRoot, makeTempFolder, readTree, writeFiles } from './helpers';

const isIgnored = createIgnoreMatcher([]);

async function mergeDeposit(layout: OtaLayout) {
	const plan = await planDeposit(layout, isIgnored);
	assert.deepEqual(plan.problems, []);
	return applyPlan(layout, plan);
}

function modeOf(file: string): number {
	return fs.statSync(file).mode & 0o7777;
}

test('merge names without dots and folders with dots', async (t) => {
	const layout = makeOtaRoot(t, {
		'deposit/Makefile': 'all:\n',
		'deposit/LICENSE': 'MIT\n',
		'deposit/my.pkg/__init__.py': '',
		'deposit/my.pkg/util.py': 'X = 1\n',
	});

	const result = await mergeDeposit(layout);

	assert.deepEqual(readTree(layout.main), {
		Makefile: 'all:\n',
		LICENSE: 'MIT\n',
		'my.pkg/__init__.py': '',
		'my.pkg/util.py': 'X = 1\n',
	});
	assert.equal(fs.existsSync(path.join(layout.main, 'my.pkg', 'my.pkg')), false, 'my.pkg/ must not be nested in itself');
	assert.deepEqual(result.added.sort(), ['LICENSE', 'Makefile', 'my.pkg/__init__.py', 'my.pkg/util.py']);
	assert.deepEqual(fs.readdirSync(layout.deposit), []);
});

test('merge nested tree replicated', async (t) => {
	const layout = makeOtaRoot(t, {
		'main/main.py': 'old main\n',
		'main/lib/keep.py': 'untouched\n',
		'deposit/main.py': 'new main\n',
		'deposit/lib/sub/deep/x.py': 'x\n',
		'deposit/lib/y.py': 'y\n',
	});

	const result = await mergeDeposit(layout);

	assert.deepEqual(readTree(layout.main), {
		'main.py': 'new main\n',
		'lib/keep.py': 'untouched\n',
		'lib/sub/deep/x.py': 'x\n',
		'lib/y.py': 'y\n',
	});
	assert.deepEqual(result.replaced, ['main.py']);
	assert.deepEqual(result.added.sort(), ['lib/sub/deep/x.py', 'lib/y.py']);
	assert.deepEqual(result.changed, []);
});

test('merge removes emptied deposit folders', async (t) => {
	const layout = makeOtaRoot(t, {
		'deposit/pkg/sub/deep.py': '',
		'deposit/pkg/init.py': '',
		'deposit/top.py': '',
	});

	await mergeDeposit(layout);

	assert.ok(fs.statSync(layout.deposit).isDirectory(), 'deposit/ itself stays');
	assert.deepEqual(fs.readdirSync(layout.deposit), []);
});

test('merge leaves ignored files in deposit', async (t) => {
	const ignored = {
		'deposit/.keep': '',
		'deposit/sub/.keep': '',
		'deposit/x.filepart': 'half an upload',
		'deposit/.syncthing.y.tmp': 'syncing',
		'deposit/.app.py.AbCdEf': 'rsync temporary',
		'deposit/z~': 'backup',
		'deposit/__pycache__/a.cpython-311.pyc': 'bytecode',
	};
	const layout = makeOtaRoot(t, { ...ignored, 'deposit/sub/app.py': 'app\n', 'deposit/top.py': 'top\n' });

	const result = await mergeDeposit(layout);

	assert.deepEqual(result.added.sort(), ['sub/app.py', 'top.py']);
	const expectedDeposit = Object.fromEntries(Object.entries(ignored).map(([file, content]) => [file.slice('deposit/'.length), content]));
	assert.deepEqual(readTree(layout.deposit), expectedDeposit, 'ignored files stay in the deposit, unchanged');
	assert.deepEqual(readTree(layout.main), { 'sub/app.py': 'app\n', 'top.py': 'top\n' });
});

test('merge type conflict moves nothing', async (t) => {
	const layout = makeOtaRoot(t, {
		'main/lib/a.py': 'a\n',
		'main/main.py': 'old\n',
		'deposit/lib': 'a file where main/ has a folder',
		'deposit/main.py': 'new\n',
		'deposit/extra/new.py': 'new\n',
	});
	const depositBefore = readTree(layout.deposit);
	const mainBefore = readTree(layout.main);

	const plan = await planDeposit(layout, isIgnored);

	assert.deepEqual(plan.problems, [{ code: 'FILE_MEETS_FOLDER', path: 'lib' }]);
	await assert.rejects(applyPlan(layout, plan), /problems/);
	assert.deepEqual(readTree(layout.deposit), depositBefore);
	assert.deepEqual(readTree(layout.main), mainBefore);
});

test('merge classifies entries by lstat', async (t) => {
	const layout = makeOtaRoot(t, { 'deposit/real.py': '', 'main/dir/x.py': '' });
	const outside = makeTempFolder(t);
	fs.symlinkSync('real.py', path.join(layout.deposit, 'link.py'));
	const fifo = spawnSync('mkfifo', [path.join(layout.deposit, 'pipe')]);
	assert.equal(fifo.status, 0, `mkfifo failed: ${fifo.stderr}`);
	fs.symlinkSync(outside, path.join(layout.main, 'data'));
	fs.symlinkSync('dir', path.join(layout.main, 'inner'));
	writeFiles(layout.deposit, { 'data/x.csv': '', 'inner/y.py': '' });

	const entries = await scanDeposit(layout.deposit, isIgnored);
	const plan = await planDeposit(layout, isIgnored);

	assert.deepEqual(
		Object.fromEntries(entries.map((entry) => [entry.path, entry.kind])),
		{ data: 'folder', 'data/x.csv': 'file', inner: 'folder', 'inner/y.py': 'file', 'link.py': 'symlink', pipe: 'other', 'real.py': 'file' },
	);
	assert.deepEqual(plan.problems, [
		{ code: 'OUTSIDE_MAIN', path: 'data' },
		{ code: 'SYMLINK_IN_DEPOSIT', path: 'link.py' },
		{ code: 'SPECIAL_FILE_IN_DEPOSIT', path: 'pipe' },
	]);
	assert.ok(plan.files.some((file) => file.path === 'inner/y.py'), 'a link to a folder inside main/ is merged through');
});

test('merge replacing file takes main mode', async (t) => {
	const layout = makeOtaRoot(t, {
		'main/run.sh': '#!/bin/sh\necho old\n',
		'deposit/run.sh': '#!/bin/sh\necho new\n',
		'deposit/tool.sh': '#!/bin/sh\n',
	});
	fs.chmodSync(path.join(layout.main, 'run.sh'), 0o755);
	fs.chmodSync(path.join(layout.deposit, 'run.sh'), 0o644);
	fs.chmodSync(path.join(layout.deposit, 'tool.sh'), 0o600);

	await mergeDeposit(layout);

	assert.equal(fs.readFileSync(path.join(layout.main, 'run.sh'), 'utf8'), '#!/bin/sh\necho new\n');
	assert.equal(modeOf(path.join(layout.main, 'run.sh')).toString(8), '755');
	assert.equal(modeOf(path.join(layout.main, 'tool.sh')).toString(8), '600', 'an added file keeps its own mode');
});

test('merge removes stale bytecode of replaced module', async (t) => {
	const layout = makeOtaRoot(t, {
		'main/mod.py': 'VERSION = 1\n',
		'main/__pycache__/mod.cpython-311.pyc': 'stale',
		'main/__pycache__/mod.cpython-311.opt-1.pyc': 'stale',
		'main/__pycache__/module2.cpython-311.pyc': 'other module',
		'main/__pycache__/other.cpython-311.pyc': 'other module',
		'main/pkg/helper.py': 'A = 1\n',
		'main/pkg/__pycache__/helper.cpython-311.pyc': 'stale',
		'deposit/mod.py': 'VERSION = 2\n',
		'deposit/pkg/helper.py': 'A = 2\n',
	});

	await mergeDeposit(layout);

	assert.deepEqual(fs.readdirSync(path.join(layout.main, '__pycache__')).sort(), ['module2.cpython-311.pyc', 'other.cpython-311.pyc']);
	assert.deepEqual(fs.readdirSync(path.join(layout.main, 'pkg', '__pycache__')), []);
});

test('merge file changed before move stays', async (t) => {
	const layout = makeOtaRoot(t, {
		'deposit/a.py': 'a\n',
		'deposit/pkg/b.py': 'b\n',
		'deposit/c.py': 'c\n',
	});
	const plan = await planDeposit(layout, isIgnored);

	const result = await applyPlan(layout, plan, (file) => {
		if (file.path === 'pkg/b.py') {
			fs.appendFileSync(path.join(layout.deposit, 'pkg', 'b.py'), 'more\n');
		}
	});

	assert.deepEqual(result.changed, ['pkg/b.py']);
	assert.deepEqual(result.added.sort(), ['a.py', 'c.py']);
	assert.deepEqual(readTree(layout.deposit), { 'pkg/b.py': 'b\nmore\n' });
	assert.equal(fs.existsSync(path.join(layout.main, 'pkg', 'b.py')), false);
});

test('merge across file systems', async (t) => {
	if (process.platform !== 'linux') {
		t.skip('mounting a tmpfs needs Linux');
		return;
	}
	const layout = makeOtaRoot(t, {
		'main/main.py': 'old\n',
		'main/run.sh': 'old\n',
	});
	const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', layout.deposit], { encoding: 'utf8' });
	if (mount.status !== 0) {
		t.skip(`cannot mount a tmpfs on the deposit (needs root): ${(mount.stderr || mount.error?.message || '').trim()}`);
		return;
	}
	defer(t, () => {
		const unmount = spawnSync('umount', [layout.deposit], { encoding: 'utf8' });
		assert.equal(unmount.status, 0, `umount ${layout.deposit} failed: ${unmount.stderr}`);
	});
	assert.notEqual(fs.statSync(layout.deposit).dev, fs.statSync(layout.main).dev, 'deposit and main must be on different file systems');
	fs.chmodSync(path.join(layout.main, 'run.sh'), 0o755);
	const large = 'x'.repeat(3 * 1024 * 1024);
	writeFiles(layout.deposit, { 'main.py': 'new\n', 'run.sh': 'new\n', 'pkg/big.bin': large });
	fs.chmodSync(path.join(layout.deposit, 'run.sh'), 0o644);

	const result = await mergeDeposit(layout);

	assert.deepEqual(result.replaced.sort(), ['main.py', 'run.sh']);
	assert.deepEqual(result.added, ['pkg/big.bin']);
	assert.deepEqual(readTree(layout.main), { 'main.py': 'new\n', 'run.sh': 'new\n', 'pkg/big.bin': large }, 'no temporary file is left in main/');
	assert.equal(modeOf(path.join(layout.main, 'run.sh')).toString(8), '755');
	assert.deepEqual(fs.readdirSync(layout.deposit), []);
});
