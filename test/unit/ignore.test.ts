import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createIgnoreMatcher, DEFAULT_IGNORE_PATTERNS, effectivePatterns } from '../../src/core/ignore';

const defaults = createIgnoreMatcher([]);

test('ignore default patterns', () => {
	const ignoredFiles = [
		'.hidden',
		'.keep',
		'sub/.keep',
		'x.filepart',
		'a.part',
		'b.crdownload',
		'c.download',
		'd.tmp',
		'z~',
		'4913',
		'#x#',
		'f___jb_tmp___',
		'f___jb_old___',
		'__pycache__/mod.cpython-311.pyc',
		'pkg/__pycache__/notes.txt',
		'mod.pyc',
		'pkg/mod.pyc',
		'Thumbs.db',
		'desktop.ini',
		'.syncthing.y.tmp',
		'.main.py.AbCdEf', // rsync writes to a dot-prefixed name with a random suffix
		'pkg/.util.py.Xy12Zw',
		'.git/config',
	];
	for (const file of ignoredFiles) {
		assert.equal(defaults(file, false), true, `${file} should be ignored`);
	}
	assert.equal(defaults('__pycache__', true), true, '__pycache__/ folder should be ignored');
	assert.equal(defaults('pkg/__pycache__', true), true, 'pkg/__pycache__/ folder should be ignored');
});

test('ignore regular names kept', () => {
	const keptFiles = ['main.py', 'Makefile', 'LICENSE', 'README', 'my.pkg/__init__.py', 'lib/util.py', 'data.json', 'keep.txt', 'part.py'];
	for (const file of keptFiles) {
		assert.equal(defaults(file, false), false, `${file} should not be ignored`);
	}
	for (const folder of ['my.pkg', 'lib', 'lib/sub']) {
		assert.equal(defaults(folder, true), false, `${folder}/ should not be ignored`);
	}
	assert.equal(defaults('__pycache__', false), false, 'a file named __pycache__ is not the cache folder');
	assert.equal(defaults('', true), false, 'the deposit itself is never ignored');
});

test('ignore negated pattern removes default', () => {
	const matcher = createIgnoreMatcher(['!*.tmp', '!4913']);
	assert.equal(matcher('d.tmp', false), false);
	assert.equal(matcher('4913', false), false);
	assert.equal(matcher('a.part', false), true);
	assert.ok(!effectivePatterns(['!*.tmp']).includes('*.tmp'));
	assert.equal(effectivePatterns([]).length, DEFAULT_IGNORE_PATTERNS.length);
});

test('ignore added patterns', () => {
	const matcher = createIgnoreMatcher(['*.bak', 'build/', 'docs/draft.md', '  ']);
	assert.equal(matcher('x.bak', false), true);
	assert.equal(matcher('deep/er/x.bak', false), true);
	assert.equal(matcher('build', true), true, 'build/ folder');
	assert.equal(matcher('build/out.py', false), true, 'file inside build/');
	assert.equal(matcher('sub/build', true), true, 'build/ folder at any depth');
	assert.equal(matcher('build', false), false, 'a trailing slash matches folders only');
	assert.equal(matcher('docs/draft.md', false), true, 'pattern with a slash matches from the top');
	assert.equal(matcher('other/docs/draft.md', false), false, 'pattern with a slash is anchored');
	assert.equal(matcher('main.py', false), false);
});

test('ignore extra names top level only', () => {
	const matcher = createIgnoreMatcher([], ['READY']);
	assert.equal(matcher('READY', false), true);
	assert.equal(matcher('sub/READY', false), false);
});
