/**
 * Splits the time of one update into phases, from the moments the lines of
 * `ota-update run` arrive on its stdout. The log file's own timestamps have whole seconds,
 * too coarse for this. Run `npm run build` first, then:
 *
 *   node --import tsx bench/update-phases.ts [REPEATS]
 *
 * It runs the same program and settle time as the bench's update figures.
 * NOTE: the phases are found by the English texts of src/core/describe.ts, so a changed
 * message there needs the matching pattern below changed too.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { median, tickingProgram } from './programs';

const SETTLE_MS = 300;
const repeats = Number(process.argv[2] ?? 11);
const repo = process.cwd();
const cli = path.join(repo, 'dist', 'cli.js');
// The real binary, so that a version manager's shim adds nothing to a start.
const python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();

/** Lines whose arrival ends a phase, in the order they come during an update. */
const MARKERS = {
	settled: /Deposit settled/,
	stopped: /Program \(pid \d+\) stopped with/,
	applied: /Update .*applied/,
	started: /Started main\.py/,
	firstNew: /\[stdout\] v2 first/,
} as const;
type Marker = keyof typeof MARKERS;

interface UpdateTimes {
	lastByte: number;
	lastOld: number;
	at: Partial<Record<Marker, number>>;
}

/** Runs one supervisor, delivers one update and returns when each line arrived. */
async function timeOneUpdate(): Promise<UpdateTimes> {
	const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ota-update-phases-'));
	for (const folder of ['deposit', 'main', 'logs']) {
		fs.mkdirSync(path.join(root, folder));
	}
	fs.writeFileSync(path.join(root, 'main', 'main.py'), tickingProgram('v1'));
	const child = spawn(process.execPath, [cli, 'run', root, '--settle', String(SETTLE_MS), '--python', python], { stdio: ['ignore', 'pipe', 'inherit'] });

	const times: UpdateTimes = { lastByte: 0, lastOld: 0, at: {} };
	let oldVersionRunning: () => void = () => undefined;
	let newVersionRunning: () => void = () => undefined;
	const oldStarted = new Promise<void>((resolve) => (oldVersionRunning = resolve));
	const newStarted = new Promise<void>((resolve) => (newVersionRunning = resolve));
	let partial = '';
	child.stdout.on('data', (chunk: Buffer) => {
		const arrived = performance.now();
		partial += chunk.toString('utf8');
		let newline = partial.indexOf('\n');
		while (newline !== -1) {
			const line = partial.slice(0, newline);
			partial = partial.slice(newline + 1);
			newline = partial.indexOf('\n');
			if (line.includes('[stdout] v1')) {
				times.lastOld = arrived;
				oldVersionRunning();
				continue;
			}
			for (const [marker, pattern] of Object.entries(MARKERS) as Array<[Marker, RegExp]>) {
				// "Started main.py" also appears for the old version, before the update.
				if (pattern.test(line) && times.at[marker] === undefined && (marker !== 'started' || times.at.applied !== undefined)) {
					times.at[marker] = arrived;
				}
			}
			if (times.at.firstNew !== undefined) {
				newVersionRunning();
			}
		}
	});

	try {
		await oldStarted;
		fs.writeFileSync(path.join(root, 'deposit', 'main.py'), tickingProgram('v2'));
		times.lastByte = performance.now();
		await newStarted;
	} finally {
		const exited = new Promise((resolve) => child.once('exit', resolve));
		child.kill('SIGTERM');
		await exited;
		fs.rmSync(root, { recursive: true, force: true });
	}
	return times;
}

async function main(): Promise<void> {
	if (!fs.existsSync(cli)) {
		throw new Error(`${cli} not found; run "npm run build" first`);
	}
	const phases = new Map<string, number[]>();
	const add = (name: string, milliseconds: number): void => {
		phases.set(name, [...(phases.get(name) ?? []), milliseconds]);
	};
	for (let repeat = 0; repeat < repeats; repeat++) {
		const { lastByte, lastOld, at } = await timeOneUpdate();
		const missing = (Object.keys(MARKERS) as Marker[]).filter((marker) => at[marker] === undefined);
		if (missing.length > 0) {
			throw new Error(`no line matched ${missing.join(', ')}; update MARKERS to the texts of src/core/describe.ts`);
		}
		add('last byte -> "Deposit settled", minus settle time', at.settled! - lastByte - SETTLE_MS);
		add('"Deposit settled" -> "Program stopped" (checks, stop)', at.stopped! - at.settled!);
		add('  of which: last old line -> "Program stopped" (stop)', at.stopped! - lastOld);
		add('"Program stopped" -> "Update applied" (merge)', at.applied! - at.stopped!);
		add('"Update applied" -> "Started" (spawn)', at.started! - at.applied!);
		add('"Started" -> first line of the new version', at.firstNew! - at.started!);
		add('update overhead (as in the bench)', at.firstNew! - lastByte - SETTLE_MS);
		add('downtime (as in the bench)', at.firstNew! - lastOld);
	}
	console.log(`Phases of an update, median of ${repeats} (ms), ${python}:`);
	for (const [name, values] of phases) {
		console.log(`${name.padEnd(56)} ${median(values).toFixed(1).padStart(7)}  (${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)})`);
	}
}

main().catch((error: unknown) => {
	console.error(error);
	process.exit(1);
});
