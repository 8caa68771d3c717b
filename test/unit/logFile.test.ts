import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatLogLine, LogFile, logFileName, pruneLogFiles } from '../../src/core/logFile';
import { makeTempFolder } from './helpers';

// Local time, as the log uses: 5 March 2024, 07:08:09.
const FIXED_DATE = new Date(2024, 2, 5, 7, 8, 9);

test('logFile name format', () => {
	assert.equal(logFileName(FIXED_DATE), 'logfile_05-03-24_07.08.09.log');
	assert.equal(logFileName(new Date(2031, 11, 31, 23, 59, 58)), 'logfile_31-12-31_23.59.58.log');
});

test('logFile line format', () => {
	assert.equal(formatLogLine(FIXED_DATE, 'INFO', 'Started main.py'), '[05/03/24 07:08:09] INFO : Started main.py');
	assert.equal(formatLogLine(FIXED_DATE, 'WARNING', '[stderr] oops'), '[05/03/24 07:08:09] WARNING : [stderr] oops');
});

/** Creates log files of `size` bytes, oldest first, one minute apart; returns their names. */
function makeLogFiles(folder: string, count: number, size: number): string[] {
	const names: string[] = [];
	for (let index = 0; index < count; index++) {
		const date = new Date(2024, 2, 5, 7, index, 0);
		const name = logFileName(date);
		fs.writeFileSync(path.join(folder, name), 'x'.repeat(size));
		fs.utimesSync(path.join(folder, name), date, date);
		names.push(name);
	}
	return names;
}

/** Files that look like log files but are not, and must never be pruned. */
const OTHER_FILES = ['notes.txt', 'logfile_backup.log', 'logfile_05-03-24_07.08.09.log.gz'];

function makeOtherFiles(folder: string): void {
	const old = new Date(2000, 0, 1);
	for (const name of OTHER_FILES) {
		fs.writeFileSync(path.join(folder, name), 'y'.repeat(10_000));
		fs.utimesSync(path.join(folder, name), old, old);
	}
}

test('logFile pruning by count', async (t) => {
	const folder = makeTempFolder(t);
	const names = makeLogFiles(folder, 5, 10);
	makeOtherFiles(folder);

	const removed = await pruneLogFiles(folder, 3, 0);

	assert.deepEqual(removed.map((file) => path.basename(file)).sort(), names.slice(0, 2).sort());
	assert.deepEqual(fs.readdirSync(folder).sort(), [...names.slice(2), ...OTHER_FILES].sort());
});

test('logFile pruning by size', async (t) => {
	const folder = makeTempFolder(t);
	const names = makeLogFiles(folder, 4, 1000);
	makeOtherFiles(folder);

	const removed = await pruneLogFiles(folder, 0, 2500);

	assert.deepEqual(removed.map((file) => path.basename(file)).sort(), names.slice(0, 2).sort());
	assert.deepEqual(fs.readdirSync(folder).sort(), [...names.slice(2), ...OTHER_FILES].sort());
});

test('logFile pruning keeps newest even if large', async (t) => {
	const folder = makeTempFolder(t);
	const names = makeLogFiles(folder, 2, 5000);

	await pruneLogFiles(folder, 0, 100);

	assert.deepEqual(fs.readdirSync(folder), [names[1]]);
});

test('logFile open prunes and writes lines', async (t) => {
	const folder = makeTempFolder(t);
	const names = makeLogFiles(folder, 3, 10);
	const startedAt = new Date(2024, 2, 5, 8, 0, 0);

	const log = await LogFile.open(folder, startedAt, 3, 0);
	log.write(FIXED_DATE, 'INFO', 'first');
	log.write(FIXED_DATE, 'ERROR', 'two\nlines');
	await log.close();

	assert.equal(log.path, path.join(folder, 'logfile_05-03-24_08.00.00.log'));
	assert.deepEqual(fs.readdirSync(folder).sort(), [...names.slice(1), path.basename(log.path)].sort(), 'the new file counts as one of the kept files');
	assert.equal(fs.readFileSync(log.path, 'utf8'), [
		'[05/03/24 07:08:09] INFO : first',
		'[05/03/24 07:08:09] ERROR : two',
		'[05/03/24 07:08:09] ERROR : lines',
		'',
	].join('\n'));
});
