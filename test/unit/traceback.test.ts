import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { resolvePython } from '../../src/core/program';
import {
	findFileReferences, innermostFrameIn, parseTraceback, pathInFolders, TracebackParser, type PythonException, type PythonTraceback,
} from '../../src/core/traceback';
import { makeTempFolder, writeFiles } from './helpers';

const python = resolvePython(undefined).python;
const CAUSE = 'The above exception was the direct cause of the following exception:';
const CONTEXT = 'During handling of the above exception, another exception occurred:';

/** Parses `text` split at line breaks, as the supervisor passes stderr on. */
function parseText(text: string): PythonTraceback | undefined {
	return parseTraceback(text.split('\n'));
}

/** Runs a full garbage collection and returns the heap in use, in bytes. The test command
 * line has no --expose-gc, so the flag is set at run time and `gc` read from a new context. */
function usedHeapAfterGc(): number {
	v8.setFlagsFromString('--expose-gc');
	const gc = vm.runInNewContext('gc') as () => void;
	gc();
	return process.memoryUsage().heapUsed;
}

function finalException(traceback: PythonTraceback | undefined): PythonException {
	assert.ok(traceback !== undefined, 'expected a complete traceback');
	const last = traceback.chain.at(-1);
	assert.ok(last !== undefined, 'expected a non-empty chain');
	return last;
}

const SIMPLE = [
	'Traceback (most recent call last):',
	'  File "/srv/ota/main/main.py", line 3, in <module>',
	'    import sensor',
	'  File "/srv/ota/main/sensor.py", line 7, in <module>',
	'    value = read(\'x\')',
	'            ^^^^^^^^^',
	'  File "/usr/lib/python3.11/json/__init__.py", line 346, in loads',
	'    return _default_decoder.decode(s)',
	'           ~~~~~~~~~~~~~~~~~~~~~~~^^^',
	'json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)',
].join('\n');

test('traceback frames and exception line', () => {
	const traceback = parseText(SIMPLE);
	const exception = finalException(traceback);
	assert.equal(traceback!.chain.length, 1);
	assert.equal(exception.type, 'json.decoder.JSONDecodeError');
	assert.equal(exception.message, 'Expecting value: line 1 column 1 (char 0)');
	assert.deepEqual(exception.frames, [
		{ file: '/srv/ota/main/main.py', line: 3, name: '<module>', source: 'import sensor' },
		{ file: '/srv/ota/main/sensor.py', line: 7, name: '<module>', source: 'value = read(\'x\')' },
		{ file: '/usr/lib/python3.11/json/__init__.py', line: 346, name: 'loads', source: 'return _default_decoder.decode(s)' },
	]);
	assert.equal(exception.omittedFrames, 0);
	assert.equal(exception.chainedAs, undefined);
	assert.equal(exception.syntaxErrorLocation, undefined);
});

test('traceback without message or source', () => {
	const exception = finalException(parseText([
		'Traceback (most recent call last):',
		'  File "<stdin>", line 1, in <module>',
		'  File "/srv/ota/main/loop.py", line 12, in run',
		'KeyboardInterrupt',
	].join('\n')));
	assert.equal(exception.type, 'KeyboardInterrupt');
	assert.equal(exception.message, '');
	assert.deepEqual(exception.frames.map((frame) => frame.source), [undefined, undefined]);
});

test('traceback types with locals and non-Latin names', () => {
	const local = finalException(parseText('Traceback (most recent call last):\n  File "m.py", line 4, in f\nf.<locals>.Local: x'));
	assert.equal(local.type, 'f.<locals>.Local');
	const cyrillic = finalException(parseText('Traceback (most recent call last):\n  File "m.py", line 1, in <module>\nмодуль.Ошибка: сбой'));
	assert.equal(cyrillic.type, 'модуль.Ошибка');
	assert.equal(cyrillic.message, 'сбой');
});

test('traceback incomplete is not reported', () => {
	const parser = new TracebackParser();
	for (const line of SIMPLE.split('\n').slice(0, -1)) {
		parser.push(line);
	}
	const beforeExceptionLine = parser.last;
	assert.equal(beforeExceptionLine, undefined, 'no exception line yet');
	parser.push('json.decoder.JSONDecodeError: Expecting value');
	assert.equal(parser.last?.chain[0].type, 'json.decoder.JSONDecodeError');
});

test('traceback cut off keeps previous one', () => {
	const parser = new TracebackParser();
	for (const line of SIMPLE.split('\n')) {
		parser.push(line);
	}
	parser.push('Traceback (most recent call last):');
	parser.push('  File "/srv/ota/main/main.py", line 9, in <module>');
	parser.push('INFO:root:another thread logs here');
	parser.push('ValueError: a later line that no longer belongs to a traceback');
	assert.equal(finalException(parser.last).type, 'json.decoder.JSONDecodeError');
});

test('traceback newest replaces older', () => {
	const parser = new TracebackParser();
	for (const line of SIMPLE.split('\n')) {
		parser.push(line);
	}
	parser.push('some output in between');
	for (const line of ['Traceback (most recent call last):', '  File "/srv/ota/main/main.py", line 20, in <module>', 'OSError: [Errno 5] I/O error']) {
		parser.push(line);
	}
	const traceback = parser.last;
	assert.equal(traceback?.chain.length, 1);
	assert.equal(finalException(traceback).type, 'OSError');
	assert.equal(finalException(traceback).message, '[Errno 5] I/O error');
});

test('traceback clear forgets everything', () => {
	const parser = new TracebackParser();
	for (const line of SIMPLE.split('\n').slice(0, 4)) {
		parser.push(line);
	}
	parser.clear();
	parser.push('ValueError: not after a header');
	assert.equal(parser.last, undefined, 'the half-read traceback must be gone');
	for (const line of SIMPLE.split('\n')) {
		parser.push(line);
	}
	parser.clear();
	assert.equal(parser.last, undefined);
});

test('traceback chained cause and context', () => {
	const traceback = parseText([
		'Traceback (most recent call last):',
		'  File "/srv/ota/main/main.py", line 2, in <module>',
		'    {}["x"]',
		'KeyError: \'x\'',
		'',
		'The above exception was the direct cause of the following exception:',
		'',
		'Traceback (most recent call last):',
		'  File "/srv/ota/main/main.py", line 4, in <module>',
		'    raise LookupError("missing") from error',
		'LookupError: missing',
		'',
		'During handling of the above exception, another exception occurred:',
		'',
		'Traceback (most recent call last):',
		'  File "/srv/ota/main/main.py", line 6, in <module>',
		'    log(error)',
		'NameError: name \'log\' is not defined',
	].join('\n'));
	assert.ok(traceback !== undefined);
	assert.deepEqual(traceback.chain.map((exception) => [exception.type, exception.chainedAs]), [
		['KeyError', undefined],
		['LookupError', 'cause'],
		['NameError', 'context'],
	]);
	assert.deepEqual(traceback.chain.map((exception) => exception.frames[0].line), [2, 4, 6]);
});

test('traceback chain grows while read', () => {
	const parser = new TracebackParser();
	const lines = ['Traceback (most recent call last):', '  File "a.py", line 1, in <module>', 'KeyError: 1', '', CONTEXT, '', 'Traceback (most recent call last):', '  File "a.py", line 3, in <module>'];
	for (const line of lines) {
		parser.push(line);
	}
	assert.deepEqual(parser.last?.chain.map((exception) => exception.type), ['KeyError'], 'the complete part of the chain');
	parser.push('ValueError: 2');
	assert.deepEqual(parser.last?.chain.map((exception) => exception.type), ['KeyError', 'ValueError']);
});

test('traceback cause without frames', () => {
	// `raise ValueError from KeyError("k")`: the cause was never raised, so Python prints
	// only its exception line.
	const traceback = parseText(['KeyError: \'k\'', '', CAUSE, '', 'Traceback (most recent call last):', '  File "<string>", line 1, in <module>', 'ValueError'].join('\n'));
	assert.ok(traceback !== undefined);
	assert.deepEqual(traceback.chain.map((exception) => [exception.type, exception.frames.length, exception.chainedAs]), [
		['KeyError', 0, undefined],
		['ValueError', 1, 'cause'],
	]);
});

test('traceback marker without exception before it', () => {
	const traceback = parseText(['just some text', '', CAUSE, '', 'Traceback (most recent call last):', '  File "a.py", line 1, in <module>', 'ValueError'].join('\n'));
	assert.equal(traceback?.chain.length, 1);
	assert.equal(traceback?.chain[0].chainedAs, undefined);
});

test('traceback syntax error in imported module', () => {
	const exception = finalException(parseText([
		'Traceback (most recent call last):',
		'  File "/srv/ota/main/main.py", line 1, in <module>',
		'    import bad',
		'  File "/srv/ota/main/bad.py", line 2',
		'    def f(:',
		'          ^',
		'SyntaxError: invalid syntax',
	].join('\n')));
	assert.equal(exception.type, 'SyntaxError');
	assert.deepEqual(exception.syntaxErrorLocation, { file: '/srv/ota/main/bad.py', line: 2, source: 'def f(:' });
	assert.equal(exception.frames.length, 1);
});

test('traceback syntax error without header', () => {
	const exception = finalException(parseText([
		'  File "/srv/ota/main/main.py", line 3',
		'    y=2',
		'IndentationError: unexpected indent',
	].join('\n')));
	assert.equal(exception.type, 'IndentationError');
	assert.deepEqual(exception.syntaxErrorLocation, { file: '/srv/ota/main/main.py', line: 3, source: 'y=2' });
	assert.deepEqual(exception.frames, []);
});

test('traceback stack dump is no traceback', () => {
	// traceback.print_stack() and logging's stack_info print frames without an exception.
	const traceback = parseText(['Stack (most recent call last):', '  File "/srv/ota/main/main.py", line 3, in <module>', '    log()', 'Done'].join('\n'));
	assert.equal(traceback, undefined);
});

test('traceback colors and CRLF', () => {
	const exception = finalException(parseTraceback([
		'\x1b[1;31mTraceback (most recent call last):\x1b[0m\r',
		'  File \x1b[35m"/srv/ota/main/main.py"\x1b[0m, line \x1b[35m5\x1b[0m, in \x1b[35m<module>\x1b[0m\r',
		'    \x1b[31mraise\x1b[0m ValueError("x")\r',
		'\x1b[1;35mValueError\x1b[0m: \x1b[35mx\x1b[0m\r',
	]));
	assert.equal(exception.type, 'ValueError');
	assert.equal(exception.message, 'x');
	assert.deepEqual(exception.frames, [{ file: '/srv/ota/main/main.py', line: 5, name: '<module>', source: 'raise ValueError("x")' }]);
});

test('traceback long texts are cut', () => {
	const exception = finalException(parseText(`Traceback (most recent call last):\n  File "/a.py", line 1, in ${'f'.repeat(50_000)}\n    ${'x'.repeat(50_000)}\nValueError: ${'m'.repeat(60_000)}`));
	assert.ok(exception.message.length <= 1024, `message kept ${exception.message.length} characters`);
	assert.ok((exception.frames[0].name ?? '').length <= 256);
	assert.ok((exception.frames[0].source ?? '').length <= 256);
});

const GROUP = [
	'  + Exception Group Traceback (most recent call last):',
	'  |   File "/srv/ota/main/main.py", line 16, in <module>',
	'  |     g()',
	'  |   File "/srv/ota/main/main.py", line 14, in g',
	'  |     raise ExceptionGroup("many", excs)',
	'  | ExceptionGroup: many (3 sub-exceptions)',
	'  +-+---------------- 1 ----------------',
	'    | Traceback (most recent call last):',
	'    |   File "/srv/ota/main/main.py", line 7, in g',
	'    |     f(i)',
	'    |   File "/srv/ota/main/tasks.py", line 2, in f',
	'    |     raise ValueError(n)',
	'    | ValueError: 0',
	'    +---------------- 2 ----------------',
	'    | KeyError: \'k\'',
	'    | ',
	'    | During handling of the above exception, another exception occurred:',
	'    | ',
	'    | Traceback (most recent call last):',
	'    |   File "/srv/ota/main/tasks.py", line 9, in h',
	'    | TypeError: t',
	'    +---------------- 3 ----------------',
	'    | ExceptionGroup: nested (2 sub-exceptions)',
	'    +-+---------------- 1 ----------------',
	'      | OSError: o',
	'      +---------------- 2 ----------------',
	'      | Traceback (most recent call last):',
	'      |   File "/srv/ota/main/io.py", line 11, in g',
	'      |     raise KeyError("inner")',
	'      | KeyError: \'inner\'',
	'      +------------------------------------',
	'',
	CAUSE,
	'',
	'Traceback (most recent call last):',
	'  File "/srv/ota/main/main.py", line 18, in <module>',
	'    raise RuntimeError("wrapped") from eg',
	'RuntimeError: wrapped',
];

test('traceback exception group', () => {
	const traceback = parseTraceback(GROUP);
	assert.ok(traceback !== undefined);
	assert.deepEqual(traceback.chain.map((exception) => [exception.type, exception.chainedAs]), [
		['ExceptionGroup', undefined],
		['RuntimeError', 'cause'],
	]);
	const group = traceback.chain[0];
	assert.equal(group.message, 'many (3 sub-exceptions)');
	assert.deepEqual(group.frames.map((frame) => frame.line), [16, 14]);
	const members = group.subExceptions ?? [];
	assert.equal(members.length, 3);
	assert.deepEqual(members[0].chain.map((exception) => [exception.type, exception.message]), [['ValueError', '0']]);
	assert.deepEqual(members[0].chain[0].frames.map((frame) => `${path.basename(frame.file)}:${frame.line}`), ['main.py:7', 'tasks.py:2']);
	assert.deepEqual(members[1].chain.map((exception) => [exception.type, exception.chainedAs]), [['KeyError', undefined], ['TypeError', 'context']]);
	const nested = members[2].chain[0];
	assert.equal(nested.type, 'ExceptionGroup');
	assert.deepEqual(nested.subExceptions?.map((member) => member.chain.map((exception) => exception.type)), [['OSError'], ['KeyError']]);
	assert.deepEqual(nested.subExceptions?.[1].chain[0].frames, [{ file: '/srv/ota/main/io.py', line: 11, name: 'g', source: 'raise KeyError("inner")' }]);
});

test('traceback exception group alone', () => {
	const traceback = parseTraceback(GROUP.slice(0, 31));
	assert.equal(traceback?.chain.length, 1);
	assert.equal(traceback?.chain[0].subExceptions?.length, 3);
	const found = innermostFrameIn(traceback!, '/srv/ota/main');
	assert.equal(found?.path, '/srv/ota/main/tasks.py', 'the first sub-exception holds the innermost frame');
	assert.equal(found?.frame.line, 2);
	assert.equal(found?.exception.type, 'ValueError');
});

test('traceback exception group omitted members', () => {
	const lines = ['  + Exception Group Traceback (most recent call last):', '  |   File "m.py", line 1, in <module>', '  | ExceptionGroup: wide (40 sub-exceptions)'];
	for (let index = 1; index <= 15; index++) {
		lines.push(index === 1 ? '  +-+---------------- 1 ----------------' : `    +---------------- ${index} ----------------`);
		lines.push(`    | ValueError: ${index}`);
	}
	lines.push('    +---------------- ... ----------------', '    | and 25 more exceptions', '    +------------------------------------');
	const group = finalException(parseTraceback(lines));
	assert.equal(group.subExceptions?.length, 15);
	assert.equal(group.omittedSubExceptions, 25);
});

test('traceback frames bounded for a million', () => {
	const parser = new TracebackParser();
	parser.push('Traceback (most recent call last):');
	const frameCount = 1_000_000;
	const measureAt = 100_000;
	let heapAtMeasure = 0;
	for (let index = 1; index <= frameCount; index++) {
		parser.push(`  File "/srv/ota/main/${index % 2 === 0 ? 'even' : 'odd'}.py", line ${index}, in f`);
		parser.push('    return g(n + 1)');
		if (index === measureAt) {
			heapAtMeasure = usedHeapAfterGc();
		}
	}
	// 900,000 stored frames would take far more than this (about 100 bytes each).
	const growthBytes = usedHeapAfterGc() - heapAtMeasure;
	assert.ok(growthBytes < 20 * 1024 * 1024, `the heap grew by ${Math.round(growthBytes / 1024 / 1024)} MB over 900,000 frames`);

	parser.push('RecursionError: maximum recursion depth exceeded');
	const exception = finalException(parser.last);
	assert.ok(exception.frames.length <= 100, `kept ${exception.frames.length} frames`);
	assert.equal(exception.frames.length + exception.omittedFrames, frameCount);
	assert.equal(exception.frames[0].line, 1, 'the outermost frame is kept');
	assert.equal(exception.frames.at(-1)?.line, frameCount, 'the innermost frame is kept');
	assert.deepEqual(
		exception.frames.map((frame) => frame.line).filter((line, index, lines) => index > 0 && line <= lines[index - 1]),
		[],
		'kept frames stay in order',
	);
});

test('traceback chain bounded', () => {
	const parser = new TracebackParser();
	const linkCount = 100_000;
	for (let index = 0; index < linkCount; index++) {
		if (index > 0) {
			parser.push('');
			parser.push(CONTEXT);
			parser.push('');
		}
		parser.push('Traceback (most recent call last):');
		parser.push(`  File "a.py", line ${index + 1}, in <module>`);
		parser.push(`ValueError: ${index}`);
	}
	const traceback = parser.last;
	assert.ok(traceback !== undefined);
	assert.ok(traceback.chain.length <= 10, `kept ${traceback.chain.length} exceptions`);
	assert.equal(traceback.chain.length + traceback.omittedExceptions, linkCount);
	assert.equal(finalException(traceback).message, String(linkCount - 1), 'the newest exceptions are kept');
});

test('traceback nested groups bounded', () => {
	// Every group contains 15 groups, 4 levels deep: over 50,000 members if all were kept.
	const lines: string[] = ['  + Exception Group Traceback (most recent call last):', '  |   File "m.py", line 1, in <module>', '  | ExceptionGroup: level 1'];
	const emitMembers = (depth: number): void => {
		const indent = '  '.repeat(depth);
		for (let index = 1; index <= 15; index++) {
			lines.push(index === 1 ? `${indent}+-+---------------- 1 ----------------` : `${indent}  +---------------- ${index} ----------------`);
			lines.push(`${indent}  | ExceptionGroup: level ${depth + 1}`);
			if (depth < 4) {
				emitMembers(depth + 1);
			} else {
				lines.push(`${indent}  | ValueError: leaf`);
			}
		}
		lines.push(`${indent}  +------------------------------------`);
	};
	emitMembers(1);
	const traceback = parseTraceback(lines);
	let stored = 0;
	const count = (chain: PythonTraceback): void => {
		for (const exception of chain.chain) {
			stored++;
			exception.subExceptions?.forEach(count);
		}
	};
	assert.ok(traceback !== undefined);
	count(traceback);
	assert.ok(lines.length > 100_000, `the input has ${lines.length} lines`);
	assert.ok(stored <= 100, `stored ${stored} exceptions`);
	assert.ok(stored > 10, `stored ${stored} exceptions`);
});

// innermostFrameIn and pathInFolders

test('innermost frame skips library frames', () => {
	const found = innermostFrameIn(parseText(SIMPLE)!, '/srv/ota/main');
	assert.equal(found?.path, '/srv/ota/main/sensor.py');
	assert.equal(found?.frame.line, 7);
	assert.equal(found?.exception.type, 'json.decoder.JSONDecodeError');
});

test('innermost frame resolves relative names', () => {
	const traceback = parseText(['Traceback (most recent call last):', '  File "main.py", line 2, in <module>', '  File "lib/util.py", line 5, in run', '  File "<frozen importlib._bootstrap>", line 1, in x', 'ValueError'].join('\n'));
	const found = innermostFrameIn(traceback!, '/srv/ota/main');
	assert.equal(found?.path, path.join('/srv/ota/main', 'lib', 'util.py'));
	assert.equal(found?.frame.line, 5);
});

test('innermost frame prefers syntax error location', () => {
	const traceback = parseText(['Traceback (most recent call last):', '  File "/srv/ota/main/main.py", line 1, in <module>', '    import bad', '  File "/srv/ota/main/bad.py", line 2', '    def f(:', '          ^', 'SyntaxError: invalid syntax'].join('\n'));
	const found = innermostFrameIn(traceback!, '/srv/ota/main');
	assert.equal(found?.path, '/srv/ota/main/bad.py');
	assert.equal(found?.frame.line, 2);
	assert.equal(found?.frame.name, undefined);
});

test('innermost frame searches final exception first', () => {
	const traceback = parseText([
		'Traceback (most recent call last):',
		'  File "/srv/ota/main/first.py", line 1, in <module>',
		'KeyError: 1',
		'',
		CONTEXT,
		'',
		'Traceback (most recent call last):',
		'  File "/srv/ota/main/second.py", line 2, in <module>',
		'  File "/usr/lib/python3/x.py", line 3, in y',
		'ValueError: 2',
		'',
		CAUSE,
		'',
		'Traceback (most recent call last):',
		'  File "/usr/lib/python3/z.py", line 4, in w',
		'RuntimeError: 3',
	].join('\n'));
	const found = innermostFrameIn(traceback!, '/srv/ota/main');
	assert.equal(found?.path, '/srv/ota/main/second.py', 'the final exception has no frame in main/, the one before it has');
	assert.equal(found?.exception.type, 'ValueError');
});

test('innermost frame none outside folder', () => {
	const traceback = parseText(['Traceback (most recent call last):', '  File "/srv/ota/main2/main.py", line 1, in <module>', '  File "/srv/ota/other/main/x.py", line 1, in <module>', 'ValueError'].join('\n'));
	assert.equal(innermostFrameIn(traceback!, '/srv/ota/main'), undefined);
	assert.equal(innermostFrameIn(traceback!, []), undefined);
});

test('path in folders checks', () => {
	assert.equal(pathInFolders('/srv/ota/main/a.py', ['/srv/ota/main']), '/srv/ota/main/a.py');
	assert.equal(pathInFolders('/srv/ota/main/../deposit/a.py', ['/srv/ota/main']), undefined);
	assert.equal(pathInFolders('../deposit/a.py', ['/srv/ota/main']), undefined);
	assert.equal(pathInFolders('/srv/ota/main', ['/srv/ota/main']), undefined, 'the folder itself is no file in it');
	assert.equal(pathInFolders('/srv/ota/main/..x.py', ['/srv/ota/main']), '/srv/ota/main/..x.py');
	assert.equal(pathInFolders('<string>', ['/srv/ota/main']), undefined);
	assert.equal(pathInFolders('/real/ota/main/pkg/a.py', ['/srv/ota/main', '/real/ota/main']), '/srv/ota/main/pkg/a.py', 'reported under the first folder');
});

// findFileReferences

test('file references in output channel line', () => {
	const line = '2026-12-04 22:50:01.123 [warning] [example] [stderr]   File "/tmp/x/example/main/main.py", line 12, in <module>';
	const references = findFileReferences(line);
	assert.equal(references.length, 1);
	const [reference] = references;
	assert.equal(reference.path, '/tmp/x/example/main/main.py');
	assert.equal(reference.line, 12);
	assert.equal(line.slice(reference.start, reference.end), 'File "/tmp/x/example/main/main.py", line 12');
});

test('file references with unusual names', () => {
	const names = ['/tmp/my folder/main/a b.py', '/tmp/#1/main/#x.py', '/tmp/100%/main/%41.py', '/tmp/проект/main/датчик.py', '/tmp/q"uote/main/x.py', 'C:\\ota\\main\\main.py'];
	for (const name of names) {
		const line = `[ota] [stderr]   File "${name}", line 3, in <module>`;
		const references = findFileReferences(line);
		assert.deepEqual(references.map((reference) => reference.path), [name], line);
		assert.equal(line.slice(references[0].start, references[0].end), `File "${name}", line 3`);
	}
});

test('file references several per text', () => {
	const text = 'a File "/x/a.py", line 1, in f and File "/x/b.py", line 22 in g\nnext\n  File "/x/c.py", line 333, in h\nFile "/x/d.py", line 0, in z';
	const references = findFileReferences(text);
	assert.deepEqual(references.map((reference) => [reference.path, reference.line]), [['/x/a.py', 1], ['/x/b.py', 22], ['/x/c.py', 333]]);
	for (const reference of references) {
		assert.match(text.slice(reference.start, reference.end), /^File ".*", line \d+$/);
	}
});

test('file references none across lines', () => {
	assert.deepEqual(findFileReferences('File "/x/a.py\n", line 3'), []);
	assert.deepEqual(findFileReferences('no reference here: File /x/a.py, line 3'), []);
});

test('file references with colors', () => {
	const line = '  File \x1b[35m"/x/a.py"\x1b[0m, line \x1b[35m7\x1b[0m, in \x1b[35mf\x1b[0m';
	const references = findFileReferences(line);
	assert.deepEqual(references.map((reference) => [reference.path, reference.line]), [['/x/a.py', 7]]);
});

// Tracebacks of real Python processes

/** Runs main.py with python3 in `mainFolder` and returns its stderr lines. */
function runPython(mainFolder: string): string[] {
	assert.ok(python !== undefined, 'python3 or python must be on PATH');
	const result = spawnSync(python, ['main.py'], {
		cwd: mainFolder,
		encoding: 'utf8',
		env: { ...process.env, PYTHONUTF8: '1', PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' },
		maxBuffer: 256 * 1024 * 1024,
	});
	assert.notEqual(result.status, 0, `main.py should fail; stderr:\n${result.stderr}`);
	return result.stderr.split('\n');
}

/** Creates main/ in a temporary folder whose name contains a space, `#`, `%` and non-Latin letters. */
function makeMainFolder(t: TestContext, files: Record<string, string>): string {
	const mainFolder = path.join(makeTempFolder(t, 'ota tb #1 %41 ünï-'), 'проект main');
	fs.mkdirSync(mainFolder);
	writeFiles(mainFolder, files);
	return mainFolder;
}

function pythonVersion(): [number, number] {
	const result = spawnSync(python ?? 'python3', ['-c', 'import sys; print(sys.version_info[0], sys.version_info[1])'], { encoding: 'utf8' });
	const [major, minor] = result.stdout.trim().split(' ').map(Number);
	return [major, minor];
}

test('real exception in imported module', (t) => {
	const mainFolder = makeMainFolder(t, {
		'main.py': 'import time\nimport датчик\n',
		'датчик.py': '# sensor\n\ndef read():\n    raise ValueError("no sensor on bus 1")\n\nread()\n',
	});
	const lines = runPython(mainFolder);
	const traceback = parseTraceback(lines);
	const exception = finalException(traceback);
	assert.equal(exception.type, 'ValueError');
	assert.equal(exception.message, 'no sensor on bus 1');
	const found = innermostFrameIn(traceback!, mainFolder);
	assert.equal(found?.path, path.join(mainFolder, 'датчик.py'));
	assert.equal(found?.frame.line, 4);
	assert.equal(found?.frame.name, 'read');
	assert.equal(found?.frame.source, 'raise ValueError("no sensor on bus 1")');

	const referenceLine = lines.find((line) => line.includes('датчик.py", line 4'));
	assert.ok(referenceLine !== undefined, `no frame line for датчик.py in:\n${lines.join('\n')}`);
	const references = findFileReferences(`2026-12-04 22:50:01.123 [warning] [ota] [stderr] ${referenceLine}`);
	assert.deepEqual(references.map((reference) => [reference.path, reference.line]), [[path.join(mainFolder, 'датчик.py'), 4]]);
});

test('real chained exception', (t) => {
	const mainFolder = makeMainFolder(t, {
		'main.py': [
			'import config',
			'try:',
			'    config.load()',
			'except KeyError as error:',
			'    raise RuntimeError("bad config") from error',
			'',
		].join('\n'),
		'config.py': 'def load():\n    return {}["port"]\n',
	});
	const traceback = parseTraceback(runPython(mainFolder));
	assert.ok(traceback !== undefined);
	assert.deepEqual(traceback.chain.map((exception) => [exception.type, exception.chainedAs]), [
		['KeyError', undefined],
		['RuntimeError', 'cause'],
	]);
	assert.equal(traceback.chain[0].message, '\'port\'');
	const found = innermostFrameIn(traceback, mainFolder);
	assert.equal(found?.path, path.join(mainFolder, 'main.py'), 'the final exception was raised in main.py');
	assert.equal(found?.frame.line, 5);
});

test('real exception during handling', (t) => {
	const mainFolder = makeMainFolder(t, {
		'main.py': 'try:\n    open("missing # file.txt")\nexcept OSError:\n    undefined_name\n',
	});
	const traceback = parseTraceback(runPython(mainFolder));
	assert.deepEqual(traceback?.chain.map((exception) => [exception.type, exception.chainedAs]), [
		['FileNotFoundError', undefined],
		['NameError', 'context'],
	]);
	assert.equal(traceback?.chain[0].message, '[Errno 2] No such file or directory: \'missing # file.txt\'');
});

test('real syntax error in imported module', (t) => {
	const mainFolder = makeMainFolder(t, {
		'main.py': 'import sys\nsys.path.insert(0, "lib 100%")\nimport broken\n',
		'lib 100%/broken.py': 'x = 1\ndef f(:\n    pass\n',
	});
	const traceback = parseTraceback(runPython(mainFolder));
	const exception = finalException(traceback);
	assert.equal(exception.type, 'SyntaxError');
	const brokenPath = path.join(mainFolder, 'lib 100%', 'broken.py');
	assert.equal(path.resolve(mainFolder, exception.syntaxErrorLocation?.file ?? ''), brokenPath);
	assert.equal(exception.syntaxErrorLocation?.line, 2);
	assert.equal(exception.syntaxErrorLocation?.source, 'def f(:');
	const found = innermostFrameIn(traceback!, mainFolder);
	assert.equal(found?.path, brokenPath);
	assert.equal(found?.frame.line, 2);
});

test('real syntax error in entry script', (t) => {
	const mainFolder = makeMainFolder(t, { 'main.py': 'if True:\n  x = 1\n    y = 2\n' });
	const traceback = parseTraceback(runPython(mainFolder));
	const exception = finalException(traceback);
	assert.equal(exception.type, 'IndentationError');
	assert.equal(innermostFrameIn(traceback!, mainFolder)?.path, path.join(mainFolder, 'main.py'));
	assert.equal(innermostFrameIn(traceback!, mainFolder)?.frame.line, 3);
});

test('real recursion error', (t) => {
	const mainFolder = makeMainFolder(t, {
		'main.py': 'import walker\nwalker.walk(0)\n',
		'walker.py': 'def walk(depth):\n    return walk(depth + 1)\n',
	});
	const traceback = parseTraceback(runPython(mainFolder));
	const exception = finalException(traceback);
	assert.equal(exception.type, 'RecursionError');
	assert.match(exception.message, /maximum recursion depth exceeded/);
	const found = innermostFrameIn(traceback!, mainFolder);
	assert.equal(found?.path, path.join(mainFolder, 'walker.py'));
	assert.equal(found?.frame.line, 2);
	assert.equal(exception.frames[0].file, path.join(mainFolder, 'main.py'), 'the outermost frame is the entry script');
});

test('real deep alternating recursion', (t) => {
	// Frames that alternate are not collapsed by Python, so every one of them is printed.
	const depth = 20_000;
	const mainFolder = makeMainFolder(t, {
		'main.py': [
			'import sys',
			`sys.setrecursionlimit(${depth + 100})`,
			// Python prints at most 1000 frames unless sys.tracebacklimit is raised.
			`sys.tracebacklimit = ${depth + 100}`,
			'def ping(n):',
			'    return pong(n - 1)',
			'def pong(n):',
			'    if n <= 0:',
			'        raise OverflowError("bottom")',
			'    return ping(n - 1)',
			`ping(${depth})`,
			'',
		].join('\n'),
	});
	const lines = runPython(mainFolder);
	assert.ok(lines.length > depth, `expected every frame to be printed, got ${lines.length} lines`);
	const exception = finalException(parseTraceback(lines));
	assert.equal(exception.type, 'OverflowError');
	assert.ok(exception.frames.length <= 100, `kept ${exception.frames.length} frames`);
	assert.ok(exception.omittedFrames > 0);
	assert.equal(exception.frames.at(-1)?.line, 8, 'the innermost frame is the raise in pong');
});

test('real exception group', (t) => {
	const [major, minor] = pythonVersion();
	if (major < 3 || (major === 3 && minor < 11)) {
		t.skip(`exception groups need Python 3.11, found ${major}.${minor}`);
		return;
	}
	const mainFolder = makeMainFolder(t, {
		'main.py': [
			'import jobs',
			'errors = []',
			'for n in range(2):',
			'    try:',
			'        jobs.run(n)',
			'    except ValueError as error:',
			'        errors.append(error)',
			'errors.append(ExceptionGroup("inner", [TypeError("t"), KeyError("k")]))',
			'raise ExceptionGroup("jobs failed", errors)',
			'',
		].join('\n'),
		'jobs.py': 'def run(n):\n    raise ValueError(f"job {n}")\n',
	});
	const traceback = parseTraceback(runPython(mainFolder));
	const group = finalException(traceback);
	assert.equal(group.type, 'ExceptionGroup');
	assert.equal(group.message, 'jobs failed (3 sub-exceptions)');
	assert.deepEqual(group.subExceptions?.map((member) => member.chain.map((exception) => exception.type)), [['ValueError'], ['ValueError'], ['ExceptionGroup']]);
	assert.deepEqual(group.subExceptions?.[2].chain[0].subExceptions?.map((member) => member.chain[0].type), ['TypeError', 'KeyError']);
	const found = innermostFrameIn(traceback!, mainFolder);
	assert.equal(found?.path, path.join(mainFolder, 'jobs.py'));
	assert.equal(found?.frame.line, 2);
});
