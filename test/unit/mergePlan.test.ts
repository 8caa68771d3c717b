import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planMerge, sameSnapshot, type DepositEntry, type EntryKind, type MainEntry } from '../../src/core/mergePlan';

const FILE_MODE = 0o100644;
const FOLDER_MODE = 0o040755;

function entry(path: string, kind: EntryKind, mode = kind === 'folder' ? FOLDER_MODE : FILE_MODE): DepositEntry {
	return { path, kind, size: path.length, mtimeMs: 1_700_000_000_000, mode };
}

function mainOf(entries: Record<string, MainEntry>): Map<string, MainEntry> {
	return new Map(Object.entries(entries));
}

test('mergePlan add and replace', () => {
	const plan = planMerge(
		[entry('new.py', 'file'), entry('main.py', 'file')],
		mainOf({ 'main.py': { kind: 'file', mode: FILE_MODE } }),
	);

	assert.deepEqual(plan.problems, []);
	assert.deepEqual(plan.files.map((file) => [file.path, file.action]), [['new.py', 'add'], ['main.py', 'replace']]);
	assert.equal(plan.files[0].size, 'new.py'.length);
	assert.equal(plan.files[0].mtimeMs, 1_700_000_000_000);
});

test('mergePlan replacing takes replaced mode', () => {
	const plan = planMerge(
		[entry('run.sh', 'file', 0o100644), entry('tool.sh', 'file', 0o100700)],
		mainOf({ 'run.sh': { kind: 'file', mode: 0o100755 } }),
	);

	assert.equal(plan.files[0].action, 'replace');
	assert.equal(plan.files[0].mode, 0o755, 'replacing file takes the permission bits of main/run.sh');
	assert.equal(plan.files[1].action, 'add');
	assert.equal(plan.files[1].mode, 0o700, 'added file keeps its own permission bits');
});

test('mergePlan file meets folder', () => {
	const plan = planMerge([entry('lib', 'file'), entry('ok.py', 'file')], mainOf({ lib: { kind: 'folder', mode: FOLDER_MODE } }));

	assert.deepEqual(plan.problems, [{ code: 'FILE_MEETS_FOLDER', path: 'lib' }]);
});

test('mergePlan folder meets file', () => {
	const plan = planMerge(
		[entry('config', 'folder'), entry('config/a.json', 'file'), entry('config/b.json', 'file')],
		mainOf({ config: { kind: 'file', mode: FILE_MODE } }),
	);

	assert.deepEqual(plan.problems, [{ code: 'FOLDER_MEETS_FILE', path: 'config' }], 'one problem for the folder, none repeated for its files');
});

test('mergePlan symlink in deposit', () => {
	const plan = planMerge([entry('pkg', 'folder'), entry('pkg/link.py', 'symlink')], mainOf({}));

	assert.deepEqual(plan.problems, [{ code: 'SYMLINK_IN_DEPOSIT', path: 'pkg/link.py' }]);
});

test('mergePlan special file in deposit', () => {
	const plan = planMerge([entry('fifo', 'other')], mainOf({}));

	assert.deepEqual(plan.problems, [{ code: 'SPECIAL_FILE_IN_DEPOSIT', path: 'fifo' }]);
});

test('mergePlan special file in main', () => {
	const plan = planMerge([entry('fifo', 'file')], mainOf({ fifo: { kind: 'other', mode: 0o010644 } }));

	assert.deepEqual(plan.problems, [{ code: 'SPECIAL_FILE_IN_MAIN', path: 'fifo' }]);
});

test('mergePlan symlink in main leading outside', () => {
	const outside: MainEntry = { kind: 'symlink', mode: 0o120777, linkIsFolderInsideMain: false };
	const plan = planMerge(
		[entry('data', 'folder'), entry('data/x.csv', 'file'), entry('conf.py', 'file')],
		mainOf({ data: outside, 'conf.py': outside }),
	);

	assert.deepEqual(plan.problems, [
		{ code: 'OUTSIDE_MAIN', path: 'data' },
		{ code: 'SYMLINK_IN_MAIN', path: 'conf.py' },
	]);
});

test('mergePlan symlink in main leading inside', () => {
	const inside: MainEntry = { kind: 'symlink', mode: 0o120777, linkIsFolderInsideMain: true };
	const plan = planMerge(
		[entry('current', 'folder'), entry('current/x.py', 'file')],
		mainOf({ current: inside }),
	);

	assert.deepEqual(plan.problems, []);
	assert.deepEqual(plan.folders, [], 'the linked folder exists already');
	assert.deepEqual(plan.files.map((file) => file.path), ['current/x.py']);

	const fileOverLink = planMerge([entry('current', 'file')], mainOf({ current: inside }));
	assert.deepEqual(fileOverLink.problems, [{ code: 'FILE_MEETS_FOLDER', path: 'current' }]);
});

test('mergePlan folder order', () => {
	const plan = planMerge(
		[
			entry('a', 'folder'),
			entry('a/b', 'folder'),
			entry('a/b/c', 'folder'),
			entry('a/b/c/f.py', 'file'),
			entry('d', 'folder'),
			entry('d/g.py', 'file'),
		],
		mainOf({ d: { kind: 'folder', mode: FOLDER_MODE } }),
	);

	assert.deepEqual(plan.folders, ['a', 'a/b', 'a/b/c'], 'folders to create, parents first; d/ exists in main/');
	assert.equal(plan.depositFolders.length, 4);
	const position = (folder: string): number => plan.depositFolders.indexOf(folder);
	for (const folder of plan.depositFolders) {
		const parent = folder.slice(0, folder.lastIndexOf('/'));
		if (parent !== '' && folder.includes('/')) {
			assert.ok(position(folder) < position(parent), `deposit folder ${folder} must come before its parent ${parent}: ${plan.depositFolders.join(', ')}`);
		}
	}
	assert.equal(plan.depositFolders[0], 'a/b/c');
});

test('mergePlan sameSnapshot', () => {
	assert.equal(sameSnapshot({ size: 1, mtimeMs: 2 }, { size: 1, mtimeMs: 2 }), true);
	assert.equal(sameSnapshot({ size: 1, mtimeMs: 2 }, { size: 1, mtimeMs: 3 }), false);
	assert.equal(sameSnapshot({ size: 1, mtimeMs: 2 }, { size: 2, mtimeMs: 2 }), false);
	assert.equal(sameSnapshot(undefined, { size: 1, mtimeMs: 2 }), false);
	assert.equal(sameSnapshot(undefined, undefined), false);
});
