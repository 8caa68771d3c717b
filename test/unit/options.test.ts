import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
	DEFAULT_MAX_LOG_BYTES, DEFAULT_CHECK_TIMEOUT_MS, DEFAULT_PROGRAM_LOCK_MAX_WAIT_MS, DEFAULT_MAX_HISTORY, DEFAULT_MAX_LOG_FILES, DEFAULT_MIN_UPTIME_MS, DEFAULT_SETTLE_TIME_MS, DEFAULT_STOP_TIMEOUT_MS,
	OptionsError, resolveOptions, type RawOptions,
} from '../../src/core/options';

test('options defaults', () => {
	assert.deepEqual(resolveOptions({}), {
		entry: 'main.py',
		python: undefined,
		args: [],
		env: {},
		settleTimeMs: DEFAULT_SETTLE_TIME_MS,
		stopTimeoutMs: DEFAULT_STOP_TIMEOUT_MS,
		stopSignal: 'SIGTERM',
		minUptimeMs: DEFAULT_MIN_UPTIME_MS,
		ignore: [],
		markerFile: undefined,
		maxLogFiles: DEFAULT_MAX_LOG_FILES,
		maxLogBytes: DEFAULT_MAX_LOG_BYTES,
		autoRollback: true,
		checkCommand: undefined,
		checkTimeoutMs: DEFAULT_CHECK_TIMEOUT_MS,
		programLockMaxWaitMs: DEFAULT_PROGRAM_LOCK_MAX_WAIT_MS,
		maxHistory: DEFAULT_MAX_HISTORY,
	});
	assert.equal(DEFAULT_SETTLE_TIME_MS, 2000);
	assert.equal(DEFAULT_STOP_TIMEOUT_MS, 5000);
});

test('options null and empty mean default', () => {
	const options = resolveOptions({ entry: '', python: null, settleTimeMs: null, markerFile: '' });
	assert.equal(options.entry, 'main.py');
	assert.equal(options.python, undefined);
	assert.equal(options.settleTimeMs, DEFAULT_SETTLE_TIME_MS);
	assert.equal(options.markerFile, undefined);
});

test('options given values kept', () => {
	const options = resolveOptions({
		entry: 'app/run.py', python: '/opt/venv/bin/python', args: ['--port', '8080'], env: { MODE: 'test' },
		settleTimeMs: 0, stopTimeoutMs: 250, stopSignal: 'int', minUptimeMs: 1, ignore: ['*.bak'],
		markerFile: 'READY', maxLogFiles: 3, maxLogBytes: 4096,
	});
	assert.equal(options.entry, 'app/run.py');
	assert.equal(options.python, '/opt/venv/bin/python');
	assert.deepEqual(options.args, ['--port', '8080']);
	assert.deepEqual(options.env, { MODE: 'test' });
	assert.equal(options.settleTimeMs, 0);
	assert.equal(options.stopTimeoutMs, 250);
	assert.equal(options.stopSignal, 'SIGINT');
	assert.equal(options.minUptimeMs, 1);
	assert.deepEqual(options.ignore, ['*.bak']);
	assert.equal(options.markerFile, 'READY');
	assert.equal(options.maxLogFiles, 3);
	assert.equal(options.maxLogBytes, 4096);
});

/** Asserts that `raw` is rejected with an `OptionsError` naming `key` and showing `value`. */
function assertRejected(raw: RawOptions, key: string, value: unknown): void {
	assert.throws(() => resolveOptions(raw), (error: unknown) => {
		assert.ok(error instanceof OptionsError, `expected an OptionsError, got ${String(error)}`);
		assert.equal(error.key, key);
		assert.deepEqual(error.value, value);
		assert.match(error.message, new RegExp(`\\b${key}\\b`));
		assert.ok(error.message.includes(JSON.stringify(value)), `message "${error.message}" does not show ${JSON.stringify(value)}`);
		return true;
	});
}

test('options negative settle time rejected', () => {
	assertRejected({ settleTimeMs: -1 }, 'settleTimeMs', -1);
});

test('options unknown stop signal rejected', () => {
	assertRejected({ stopSignal: 'SIGFOO' }, 'stopSignal', 'SIGFOO');
});

test('options entry outside main rejected', () => {
	assertRejected({ entry: '../x.py' }, 'entry', '../x.py');
	assertRejected({ entry: 'sub/../../x.py' }, 'entry', 'sub/../../x.py');
	assertRejected({ entry: '/etc/x.py' }, 'entry', '/etc/x.py');
});

test('options wrong types rejected', () => {
	assertRejected({ stopTimeoutMs: 1.5 }, 'stopTimeoutMs', 1.5);
	assertRejected({ minUptimeMs: '10' }, 'minUptimeMs', '10');
	assertRejected({ args: ['a', 1] }, 'args', ['a', 1]);
	assertRejected({ env: { A: 1 } }, 'env', { A: 1 });
	assertRejected({ ignore: '*.bak' }, 'ignore', '*.bak');
	assertRejected({ python: 3 }, 'python', 3);
});
