import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FileSnapshot } from '../../src/core/mergePlan';
import { SettleTracker } from '../../src/core/settle';
import { FakeClock, makeTempFolder, waitFor } from './helpers';

const SETTLE_TIME_MS = 200;

/** Creates a tracker on a fake clock over a real folder, with counters of checks and settlements. */
function makeTracker(t: TestContext) {
	const folder = makeTempFolder(t);
	const clock = new FakeClock();
	const counts = { checks: 0, settled: 0 };
	const snapshotOf = (file: string): FileSnapshot | undefined => {
		const stat = fs.statSync(path.join(folder, file), { throwIfNoEntry: false });
		return stat === undefined ? undefined : { size: stat.size, mtimeMs: stat.mtimeMs };
	};
	const tracker = new SettleTracker(
		clock,
		SETTLE_TIME_MS,
		async (paths) => {
			const snapshots = new Map<string, FileSnapshot | undefined>();
			for (const file of paths) {
				const stat = await fs.promises.stat(path.join(folder, file)).catch(() => undefined);
				snapshots.set(file, stat === undefined ? undefined : { size: stat.size, mtimeMs: stat.mtimeMs });
			}
			counts.checks++;
			return snapshots;
		},
		() => counts.settled++,
	);
	t.after(() => tracker.dispose());
	/** Writes a file and records it, as the deposit watcher does. */
	const write = (file: string, content: string): void => {
		fs.appendFileSync(path.join(folder, file), content);
		tracker.record(file, snapshotOf(file));
	};
	/** Waits until `count` checks have read the files and the tracker has acted on the result. */
	const checksDone = async (count: number): Promise<void> => {
		await waitFor(`${count} settle check(s)`, () => counts.checks >= count);
		// The tracker acts in promise callbacks queued when the read resolved; let them run.
		await new Promise((resolve) => setImmediate(resolve));
	};
	return { folder, clock, counts, tracker, write, checksDone };
}

test('settle no timer while idle', (t) => {
	const { clock, counts, tracker } = makeTracker(t);

	assert.equal(clock.armedTimers, 0);
	assert.equal(tracker.isTimerArmed, false);
	assert.equal(tracker.isWaiting, false);
	clock.advance(60_000);
	assert.equal(counts.checks, 0);
	assert.equal(counts.settled, 0);
	assert.equal(clock.armedTimers, 0);
});

test('settle events restart quiet time', async (t) => {
	const { clock, counts, tracker, write, checksDone } = makeTracker(t);

	write('a.py', 'a');
	assert.equal(clock.armedTimers, 1);
	assert.equal(tracker.isWaiting, true);
	clock.advance(SETTLE_TIME_MS - 50);
	write('b.py', 'b');
	clock.advance(SETTLE_TIME_MS - 50);
	assert.equal(counts.checks, 0, 'the second event restarted the quiet time');
	assert.equal(clock.armedTimers, 1, 'one timer, not one per event');

	clock.advance(50);
	await checksDone(1);
	assert.equal(counts.settled, 1);
	assert.equal(tracker.isWaiting, false);
});

test('settle changed file re-arms', async (t) => {
	const { clock, counts, write, checksDone, folder } = makeTracker(t);

	write('upload.bin', 'first chunk');
	// The file grows without an event reaching the tracker, as when the watcher lags.
	fs.appendFileSync(path.join(folder, 'upload.bin'), 'second chunk');
	clock.advance(SETTLE_TIME_MS);
	await checksDone(1);

	assert.equal(counts.settled, 0, 'a file that changed since its event is not settled');
	assert.equal(clock.armedTimers, 1, 'the timer is armed again');
	clock.advance(SETTLE_TIME_MS);
	await checksDone(2);
	assert.equal(counts.settled, 1);
});

test('settle fires once', async (t) => {
	const { clock, counts, write, checksDone } = makeTracker(t);

	write('a.py', 'a');
	clock.advance(SETTLE_TIME_MS);
	await checksDone(1);
	assert.equal(clock.armedTimers, 0, 'no timer stays armed after settling');
	clock.advance(10 * SETTLE_TIME_MS);
	await new Promise((resolve) => setImmediate(resolve));

	assert.equal(counts.settled, 1);
	assert.equal(counts.checks, 1);
});

test('settle removed file settles', async (t) => {
	const { clock, counts, tracker, checksDone } = makeTracker(t);

	tracker.record('gone.py', undefined);
	clock.advance(SETTLE_TIME_MS);
	await checksDone(1);

	assert.equal(counts.settled, 1);
});

test('settle hold and release', async (t) => {
	const { clock, counts, tracker, write, checksDone } = makeTracker(t);

	write('a.py', 'a');
	tracker.hold();
	assert.equal(clock.armedTimers, 0, 'hold disarms the timer');
	clock.advance(10 * SETTLE_TIME_MS);
	write('b.py', 'b');
	assert.equal(clock.armedTimers, 0, 'events during a hold arm no timer');
	assert.equal(counts.checks, 0);

	tracker.release();
	assert.equal(clock.armedTimers, 1, 'release starts a new quiet time for the events kept');
	clock.advance(SETTLE_TIME_MS);
	await checksDone(1);
	assert.equal(counts.settled, 1);

	tracker.hold();
	tracker.release();
	assert.equal(clock.armedTimers, 0, 'release with nothing waiting arms nothing');
});

test('settle dispose stops everything', (t) => {
	const { clock, tracker, write } = makeTracker(t);

	write('a.py', 'a');
	tracker.dispose();
	assert.equal(clock.armedTimers, 0);
	write('b.py', 'b');
	assert.equal(clock.armedTimers, 0, 'events after dispose arm no timer');
	assert.equal(tracker.isWaiting, false);
});

test('settle ignores removals of moved files', async (t) => {
	const { clock, tracker } = makeTracker(t);

	tracker.expectRemovals(['main.py', 'lib']);
	tracker.record('main.py', undefined);
	tracker.record('lib', undefined);
	assert.equal(tracker.isWaiting, false, 'the update\'s own removals leave nothing waiting');
	assert.equal(clock.armedTimers, 0);

	tracker.record('main.py', undefined);
	assert.equal(tracker.isWaiting, true, 'a second removal of the same path is the user\'s');
});

test('settle hold forgets expected removals', async (t) => {
	const { tracker } = makeTracker(t);

	tracker.expectRemovals(['main.py']);
	tracker.hold();
	tracker.release();
	tracker.record('main.py', undefined);
	assert.equal(tracker.isWaiting, true);
});
