import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

// Runs the benchmark's short version so that the script cannot rot. Its figures are
// printed for people and never asserted: this machine is shared and noisy.
test('bench quick run prints every figure', () => {
	const result = spawnSync(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick'], {
		cwd: process.cwd(),
		encoding: 'utf8',
		timeout: 240_000,
	});
	assert.equal(result.status, 0, `bench failed:\n${result.stdout}\n${result.stderr}`);
	for (const figure of ['update overhead', 'downtime', 'small files', 'MB file', 'lines in log file', 'event-loop delay', 'idle CPU', 'activation', '.vsix']) {
		assert.ok(result.stdout.includes(figure), `bench output lacks "${figure}":\n${result.stdout}`);
	}
});
