import { test } from 'node:test';
import assert from 'node:assert/strict';
import { depositMarks, mainMarks } from '../../src/core/outlook';
import type { PlannedFile } from '../../src/core/mergePlan';
import type { Journal } from '../../src/core/transaction';

function planned(path: string, action: PlannedFile['action']): PlannedFile {
	return { path, action, size: 1, mtimeMs: 1, mode: 0o100644, sourceMode: 0o100644 };
}

test('outlook add and replace', () => {
	const marks = depositMarks({ files: [planned('main.py', 'replace'), planned('lib/new.py', 'add')], problems: [], deletions: [] }, [], [], false);
	assert.deepEqual(Object.fromEntries(marks), { 'main.py': { kind: 'replace' }, 'lib/new.py': { kind: 'add' } });
});

test('outlook waiting outranks the plan', () => {
	const marks = depositMarks({ files: [planned('main.py', 'replace')], problems: [], deletions: [] }, [], ['main.py'], false);
	assert.equal(marks.get('main.py')?.kind, 'waiting');
});

test('outlook rejection marks ancestors', () => {
	const problem = { code: 'FILE_MEETS_FOLDER', path: 'pkg/sub/data' } as const;
	const marks = depositMarks({ files: [planned('main.py', 'add')], problems: [problem], deletions: [] }, [], [], false);
	for (const path of ['pkg/sub/data', 'pkg/sub', 'pkg']) {
		assert.equal(marks.get(path)?.kind, 'rejected', path);
		assert.deepEqual(marks.get(path)?.problems, [problem], path);
	}
	assert.equal(marks.get('main.py')?.kind, 'add', 'a file that the problem does not name keeps its mark');
});

test('outlook keeps only the checks of the last rejection', () => {
	const syntax = { code: 'SYNTAX_ERROR', path: 'main.py', line: 3, detail: 'invalid syntax' } as const;
	const conflict = { code: 'SYMLINK_IN_DEPOSIT', path: 'link' } as const;
	const fixed = { code: 'FILE_MEETS_FOLDER', path: 'data' } as const;
	const marks = depositMarks({ files: [planned('main.py', 'replace')], problems: [conflict], deletions: [] }, [syntax, conflict, fixed], [], false);
	assert.deepEqual(marks.get('main.py'), { kind: 'rejected', problems: [syntax] });
	assert.deepEqual(marks.get('link'), { kind: 'rejected', problems: [conflict] }, 'a conflict the plan still finds counts once');
	assert.equal(marks.has('data'), false, 'a conflict fixed since the rejection no longer shows');
});

test('outlook failed check rejects every file', () => {
	const check = { code: 'CHECK_FAILED', path: 'pytest -q', detail: '1 failed' } as const;
	const marks = depositMarks({ files: [planned('main.py', 'replace'), planned('lib/new.py', 'add')], problems: [], deletions: [] }, [check], [], false);
	assert.deepEqual(marks.get('main.py'), { kind: 'rejected', problems: [check] });
	assert.deepEqual(marks.get('lib/new.py'), { kind: 'rejected', problems: [check] });
	assert.deepEqual(marks.get('lib'), { kind: 'rejected', problems: [check] }, 'the folder above shows it too');
	assert.equal(marks.has('pytest -q'), false, 'the command is no path');
});

test('outlook deletion list', () => {
	const marks = depositMarks({ files: [], problems: [], deletions: ['old.py', 'cache'] }, [], [], true);
	assert.deepEqual(marks.get('.ota-delete'), { kind: 'deletionList', deletions: 2 });
	const invalid = depositMarks({ files: [], problems: [{ code: 'INVALID_DELETION', path: '../etc' }], deletions: [] }, [], [], true);
	assert.equal(invalid.get('.ota-delete')?.kind, 'rejected');
});

test('outlook main files of last update', () => {
	const journal = { files: [{ ...planned('main.py', 'replace') }, { ...planned('data/extra.txt', 'add') }] } as unknown as Journal;
	assert.deepEqual(Object.fromEntries(mainMarks(journal)), { 'main.py': 'replaced', 'data/extra.txt': 'added' });
	assert.equal(mainMarks(undefined).size, 0);
});
