import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_QUICK_FAILURES, RESTART_BASE_DELAY_MS, RestartPolicy } from '../../src/core/restartPolicy';

const MIN_UPTIME_MS = 10_000;
const QUICK_RUN_MS = 100;

test('restartPolicy growing delays', () => {
	const policy = new RestartPolicy(MIN_UPTIME_MS);
	const delays: number[] = [];
	for (let failure = 1; failure < MAX_QUICK_FAILURES; failure++) {
		const decision = policy.onExit(QUICK_RUN_MS, true);
		assert.equal(decision.action, 'restart', `failure ${failure}`);
		assert.equal(decision.action === 'restart' && decision.failures, failure);
		if (decision.action === 'restart') {
			delays.push(decision.delayMs);
		}
	}
	assert.equal(delays[0], RESTART_BASE_DELAY_MS);
	for (let index = 1; index < delays.length; index++) {
		assert.ok(delays[index] > delays[index - 1], `delay ${index} (${delays[index]} ms) does not grow from ${delays[index - 1]} ms`);
	}
});

test('restartPolicy crashed after quick failures', () => {
	const policy = new RestartPolicy(MIN_UPTIME_MS);
	for (let failure = 1; failure < MAX_QUICK_FAILURES; failure++) {
		assert.equal(policy.onExit(QUICK_RUN_MS, true).action, 'restart');
	}
	assert.deepEqual(policy.onExit(QUICK_RUN_MS, true), { action: 'crashed', failures: MAX_QUICK_FAILURES });
});

test('restartPolicy long run resets count', () => {
	const policy = new RestartPolicy(MIN_UPTIME_MS);
	for (let failure = 1; failure < MAX_QUICK_FAILURES; failure++) {
		policy.onExit(QUICK_RUN_MS, true);
	}
	assert.deepEqual(policy.onExit(MIN_UPTIME_MS, true), { action: 'restart', delayMs: RESTART_BASE_DELAY_MS, failures: 1 });
	assert.deepEqual(policy.onExit(QUICK_RUN_MS, true), { action: 'restart', delayMs: 2 * RESTART_BASE_DELAY_MS, failures: 2 });
});

test('restartPolicy clean exit waits', () => {
	const policy = new RestartPolicy(MIN_UPTIME_MS);
	policy.onExit(QUICK_RUN_MS, true);
	policy.onExit(QUICK_RUN_MS, true);
	assert.deepEqual(policy.onExit(QUICK_RUN_MS, false), { action: 'wait' });
	assert.deepEqual(policy.onExit(QUICK_RUN_MS, true), { action: 'restart', delayMs: RESTART_BASE_DELAY_MS, failures: 1 });
});

test('restartPolicy reset forgets failures', () => {
	const policy = new RestartPolicy(MIN_UPTIME_MS);
	for (let failure = 1; failure < MAX_QUICK_FAILURES; failure++) {
		policy.onExit(QUICK_RUN_MS, true);
	}
	policy.reset();
	assert.deepEqual(policy.onExit(QUICK_RUN_MS, true), { action: 'restart', delayMs: RESTART_BASE_DELAY_MS, failures: 1 });
});
