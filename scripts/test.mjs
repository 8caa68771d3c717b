// Runs the test suite: unit and integration tests of the engine, then end-to-end tests
// in real VS Code (code-server). `--unit` or `--e2e` runs one tier only. The last line
// of the output is "N passed, N failed".
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const onlyUnit = process.argv.includes('--unit');
const onlyEndToEnd = process.argv.includes('--e2e');

function run(command, args, options = {}) {
	const result = spawnSync(command, args, { cwd: repo, stdio: 'inherit', ...options });
	if (result.status !== 0) {
		console.error(`test: "${command} ${args.join(' ')}" failed with ${result.signal ?? `exit code ${result.status}`}`);
		process.exit(result.status ?? 1);
	}
}

function testFiles(folder) {
	const absolute = path.join(repo, folder);
	if (!fs.existsSync(absolute)) {
		return [];
	}
	return fs.readdirSync(absolute)
		.filter((name) => name.endsWith('.test.ts'))
		.sort()
		.map((name) => path.join(folder, name));
}

const files = [];
if (!onlyEndToEnd) {
	files.push(...testFiles('test/unit'));
}
if (!onlyUnit) {
	run(process.execPath, ['scripts/setup-e2e.mjs']);
	run('npm', ['run', '--silent', 'package']);
	files.push(...testFiles('test/e2e'));
}
run('npm', ['run', '--silent', 'typecheck']);

const result = spawnSync(process.execPath, [
	'--import', 'tsx',
	'--test',
	'--test-reporter=spec', '--test-reporter-destination=stdout',
	'--test-reporter=./scripts/summary-reporter.mjs', '--test-reporter-destination=stdout',
	...files,
], { cwd: repo, stdio: 'inherit' });
process.exit(result.status ?? 1);
