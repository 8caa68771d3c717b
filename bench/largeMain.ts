/**
 * A main/ of 100,000 files in code-server. Two comparisons, each made in the same run:
 * - this extension's activation time on that main/ and on the example's two-file main/, read
 *   from the Running Extensions view as in activation.ts. Beside it, the same for an extension
 *   that loads a copy of this extension's code and activates nothing. That one separates what
 *   the workspace and the machine add to loading code from what activate() adds;
 * - in the sidebar, the expansion of folders of 10, 1,000 and 20,000 files. Each expansion
 *   gives the time from the click to the first child row, and the maximum pause between two
 *   animation frames of the workbench page meanwhile. That pause is how long the page could not
 *   respond to input.
 */
import * as fs from 'node:fs';
import * as fsPromises from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';

import type { Workbench } from '../test/e2e/harness';
import type { Sidebar } from '../test/e2e/sidebar';
import {
	copyExample,
	ENGINE_EXTENSION_NAME,
	LOAD_ONLY_EXTENSION_NAME,
	packageLoadOnlyExtension,
	readActivationTimesAfterStart,
	VIEWPORT,
} from './activation';

interface FolderSpec {
	name: string;
	files: number;
	/** Name of file number `index`. */
	fileName: (index: number) => string;
}

/**
 * Folders added to the example's main/. Neither activation nor the tree walks main/. Activation
 * checks a few paths, and the tree reads a folder only when it is shown expanded, listing at
 * most 1,000 of its entries. So the cost depends on the number of entries in the folder that a user
 * expands, and the layout has many folders of a common size and one far past the limit:
 * - pkg00 to pkg79, 1,000 files each, like an application with many modules;
 * - bulk, 20,000 files, like recorded data, 20 times the tree's limit;
 * - few, 10 files, the small folder that the others are compared with.
 * The Main node is expanded when the view opens and lists main/ through the same code as an
 * expansion, so a main/ with 20,000 entries at its top would cost what bulk costs.
 */
const LARGE_MAIN_FOLDERS: FolderSpec[] = [
	...Array.from({ length: 80 }, (_, folder): FolderSpec => ({
		name: `pkg${String(folder).padStart(2, '0')}`,
		files: 1000,
		fileName: (index) => `module${String(index).padStart(3, '0')}.py`,
	})),
	{ name: 'bulk', files: 20_000, fileName: (index) => `record${String(index).padStart(5, '0')}.json` },
	{ name: 'few', files: 10, fileName: (index) => `note${index}.txt` },
];
/** The folders measured in each start, in this order. They sort before pkg01, so their rows are in view. */
const EXPANDED_FOLDERS = ['few', 'pkg00', 'bulk'].map((name) => LARGE_MAIN_FOLDERS.find((folder) => folder.name === name)!);
/**
 * The folder expanded before the measured ones and not measured. In trial runs, the first
 * expansion of 1,000 files after a page load took up to three times as long as later ones.
 */
const WARM_UP_FOLDER = LARGE_MAIN_FOLDERS.find((folder) => folder.name === 'pkg01')!;

/**
 * Names that share one inode. A hard link costs one system call and no new inode: on the ext4
 * disk of the machine in BENCHMARKS.md, 100,000 entries took 1.5–3 s as links and 7–10 s as
 * separate files. Activation and the tree read the names and types in main/, not the files'
 * contents, and those are the same either way. ext4 allows 65,000 links per inode.
 */
const NAMES_PER_INODE = 1000;

// The tree lists a folder when it is expanded, so the time to its first row covers reading the
// folder in the extension host and rendering in the page. It leaves room for a loaded machine.
const ROWS_TIMEOUT_MS = 60_000;
const VIEW_TIMEOUT_MS = 30_000;
/**
 * How long the page is observed after the first child row has appeared. File decorations of
 * the new rows can arrive after it, so their rendering counts too.
 */
const OBSERVE_AFTER_ROWS_MS = 1000;
const ROW_LABEL_SELECTOR = '.part.sidebar .pane-body .monaco-list-row .label-name';

export interface ExpansionSample {
	/** From the pointerdown on the folder's row to the first animation frame that has its first child row. */
	clickToRowsMs: number;
	/** Maximum time between two animation frames, from the click until OBSERVE_AFTER_ROWS_MS after the rows. */
	maxFrameGapMs: number;
	/** Maximum duration of a Long Tasks API entry (a task of 50 ms or more) in the same time, 0 when there was none. */
	maxLongTaskMs: number;
	/** CPU time of the extension host from just before the click to the end of the observation, in steps of 10 ms. */
	extensionHostCpuMs: number;
}

export interface FolderExpansions {
	name: string;
	files: number;
	/** One per code-server start on the large main/. */
	samples: ExpansionSample[];
}

export interface LargeMainTimes {
	/** Files added to main/. */
	files: number;
	createMs: number;
	removeMs: number;
	/** Activation times of this extension, one per code-server start. */
	activation: { large: number[]; small: number[] };
	/** Activation times of the extension that only loads a copy of this extension's code, in the same starts. */
	loadOnlyActivation: { large: number[]; small: number[] };
	/** Expansions of the folders of EXPANDED_FOLDERS, in that order: 10, 1,000 and 20,000 files. */
	expansions: FolderExpansions[];
}

/**
 * Starts code-server `repeats` times on a copy of example/ and `repeats` times on a copy whose
 * main/ has 100,000 more files, alternating, with this extension and the load-only one installed.
 * Reads both activation times in each start. In each start on the large main/, it then expands
 * and collapses `pkg01` once to warm up, and `few`, `pkg00` and `bulk` to measure them.
 */
export async function measureLargeMain(repo: string, vsix: string, repeats: number): Promise<LargeMainTimes> {
	const harness = await import('../test/e2e/harness');
	const { Sidebar } = await import('../test/e2e/sidebar');
	const scratch = await fsPromises.mkdtemp(path.join(os.tmpdir(), 'ota-bench-large-main-'));
	try {
		const loadOnlyVsix = await packageLoadOnlyExtension(repo, path.join(scratch, 'load-only-extension'));
		const small = await copyExample(repo, path.join(scratch, 'small'));
		const large = await copyExample(repo, path.join(scratch, 'large'));
		let started = performance.now();
		const files = createFolders(path.join(large, 'main'), LARGE_MAIN_FOLDERS);
		const createMs = performance.now() - started;

		const times: LargeMainTimes = {
			files,
			createMs,
			removeMs: 0,
			activation: { large: [], small: [] },
			loadOnlyActivation: { large: [], small: [] },
			expansions: EXPANDED_FOLDERS.map((folder) => ({ name: folder.name, files: folder.files, samples: [] })),
		};
		for (let repeat = 0; repeat < repeats; repeat++) {
			// Alternating the order spreads a drift of the machine's load over both workspaces.
			const order: Array<'small' | 'large'> = repeat % 2 === 0 ? ['small', 'large'] : ['large', 'small'];
			for (const kind of order) {
				const workspace = kind === 'large' ? large : small;
				const workbench = await harness.openWorkbench({ folder: workspace, vsixPaths: [vsix, loadOnlyVsix], viewport: VIEWPORT });
				try {
					const timesByName = await readActivationTimesAfterStart(workbench, [ENGINE_EXTENSION_NAME, LOAD_ONLY_EXTENSION_NAME]);
					times.activation[kind].push(timesByName[ENGINE_EXTENSION_NAME]);
					times.loadOnlyActivation[kind].push(timesByName[LOAD_ONLY_EXTENSION_NAME]);
					if (kind === 'large') {
						await workbench.runCommand('View: Close All Editors');
						const sidebar = new Sidebar(workbench);
						await sidebar.open();
						await sidebar.waitForRow('Main', `main/${WARM_UP_FOLDER.name}`, (row) => row.label === WARM_UP_FOLDER.name, { timeoutMs: VIEW_TIMEOUT_MS });
						await measureExpansion(workbench, sidebar, WARM_UP_FOLDER, harness.waitFor);
						for (const [index, folder] of EXPANDED_FOLDERS.entries()) {
							times.expansions[index].samples.push(await measureExpansion(workbench, sidebar, folder, harness.waitFor));
						}
					}
				} finally {
					await workbench.close();
				}
			}
		}

		started = performance.now();
		await fsPromises.rm(path.join(large, 'main'), { recursive: true, force: true });
		times.removeMs = performance.now() - started;
		return times;
	} finally {
		await fsPromises.rm(scratch, { recursive: true, force: true });
	}
}

/** Creates each folder of `specs` in `parent` with its files, and returns how many files it created. */
function createFolders(parent: string, specs: FolderSpec[]): number {
	let created = 0;
	for (const spec of specs) {
		const folder = path.join(parent, spec.name);
		fs.mkdirSync(folder, { recursive: true });
		let source = '';
		for (let index = 0; index < spec.files; index++) {
			const file = path.join(folder, spec.fileName(index));
			if (index % NAMES_PER_INODE === 0) {
				fs.writeFileSync(file, `# ${spec.name} ${index}\n`);
				source = file;
			} else {
				fs.linkSync(source, file);
			}
			created++;
		}
	}
	return created;
}

// Runs in the page; source text, because tsx's transform adds helpers that do not exist
// there. It records the time of every animation frame and every long task, the time of the
// first pointerdown, and the time of the first frame whose sidebar has a row labelled
// `childLabel`. requestAnimationFrame runs once per rendered frame, so a long pause between
// two frames is a time in which the page showed no response to input.
const EXPANSION_PROBE_SOURCE = `({ key, selector, childLabel }) => {
  const probe = { clickAt: -1, rowsAt: -1, frames: [], longTasks: [], stopped: false };
  window[key] = probe;
  const childShown = () => Array.from(document.querySelectorAll(selector)).some((label) => label.textContent.trim() === childLabel);
  const onFrame = () => {
    const now = performance.now();
    probe.frames.push(now);
    if (probe.clickAt >= 0 && probe.rowsAt < 0 && childShown()) {
      probe.rowsAt = now;
    }
    if (!probe.stopped) {
      requestAnimationFrame(onFrame);
    }
  };
  requestAnimationFrame(onFrame);
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      probe.longTasks.push({ start: entry.startTime, duration: entry.duration });
    }
  });
  observer.observe({ type: 'longtask' });
  window.addEventListener('pointerdown', () => {
    if (probe.clickAt < 0) {
      probe.clickAt = performance.now();
    }
  }, { capture: true, once: true });
  probe.stop = () => {
    probe.stopped = true;
    observer.disconnect();
  };
}`;

interface ProbeRecord {
	clickAt: number;
	rowsAt: number;
	now: number;
	frames: number[];
	longTasks: Array<{ start: number; duration: number }>;
}

type WaitFor = typeof import('../test/e2e/harness').waitFor;

/**
 * Clicks the row of `folder` under Main to expand it, and measures until its first child row has
 * shown. Collapses it again afterwards, so that every expansion starts from the same tree.
 */
async function measureExpansion(workbench: Workbench, sidebar: Sidebar, folder: FolderSpec, waitFor: WaitFor): Promise<ExpansionSample> {
	const page = workbench.page;
	const key = `__otaBenchExpansion_${folder.name}`;
	const childLabel = folder.fileName(0);
	await page.evaluate(`(${EXPANSION_PROBE_SOURCE})(${JSON.stringify({ key, selector: ROW_LABEL_SELECTOR, childLabel })})`);
	const cpuBefore = extensionHostCpuMs(workbench.server.pid);
	await sidebar.clickRow(folder.name);

	const readProbe = (): Promise<ProbeRecord> =>
		page.evaluate(`(() => {
			const probe = window[${JSON.stringify(key)}];
			return { clickAt: probe.clickAt, rowsAt: probe.rowsAt, now: performance.now(), frames: probe.frames, longTasks: probe.longTasks };
		})()`) as Promise<ProbeRecord>;
	await waitFor(
		`the first row of main/${folder.name} (${childLabel}) after a click on its folder`,
		async () => (await readProbe()).rowsAt >= 0,
		{ timeoutMs: ROWS_TIMEOUT_MS, describeState: async () => `Sidebar:\n${await sidebar.describe()}` },
	);
	const record = await waitFor(
		`${OBSERVE_AFTER_ROWS_MS} ms of the page after the rows of main/${folder.name}`,
		async () => {
			const current = await readProbe();
			return current.now - current.rowsAt >= OBSERVE_AFTER_ROWS_MS ? current : undefined;
		},
		{ timeoutMs: OBSERVE_AFTER_ROWS_MS + ROWS_TIMEOUT_MS },
	);
	await page.evaluate(`window[${JSON.stringify(key)}].stop()`);
	const extensionHostCpu = extensionHostCpuMs(workbench.server.pid) - cpuBefore;

	await sidebar.clickRow(folder.name);
	await sidebar.waitForNoRow('Main', `main/${folder.name}/${childLabel}`, (row) => row.label === childLabel, { timeoutMs: VIEW_TIMEOUT_MS });
	return { ...summarizeExpansion(record, record.rowsAt + OBSERVE_AFTER_ROWS_MS), extensionHostCpuMs: extensionHostCpu };
}

function summarizeExpansion(record: ProbeRecord, end: number): Omit<ExpansionSample, 'extensionHostCpuMs'> {
	let maxFrameGapMs = 0;
	for (let index = 1; index < record.frames.length; index++) {
		const [previous, next] = [record.frames[index - 1], record.frames[index]];
		// Every pause that overlaps the window counts, including the one that spans the click.
		if (next >= record.clickAt && previous <= end) {
			maxFrameGapMs = Math.max(maxFrameGapMs, next - previous);
		}
	}
	let maxLongTaskMs = 0;
	for (const task of record.longTasks) {
		if (task.start + task.duration >= record.clickAt && task.start <= end) {
			maxLongTaskMs = Math.max(maxLongTaskMs, task.duration);
		}
	}
	return { clickToRowsMs: record.rowsAt - record.clickAt, maxFrameGapMs, maxLongTaskMs };
}

/**
 * Returns the CPU time, user and system, of the extension hosts in code-server's process group
 * (the group that the harness starts it in), from /proc. code-server 4.100.3 starts each
 * extension host with `--type=extensionHost` on its command line.
 */
function extensionHostCpuMs(processGroup: number): number {
	const millisecondsPerTick = 10; // USER_HZ is 100 on Linux
	let total = 0;
	for (const name of fs.readdirSync('/proc')) {
		if (!/^\d+$/.test(name)) {
			continue;
		}
		let stat: string;
		let commandLine: string;
		try {
			stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
			commandLine = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8');
		} catch {
			continue; // the process has ended
		}
		// The command name is in brackets and may contain spaces, so fields are counted from the last ')'.
		const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
		if (Number(fields[2]) === processGroup && commandLine.includes('--type=extensionHost')) {
			total += (Number(fields[11]) + Number(fields[12])) * millisecondsPerTick;
		}
	}
	return total;
}
