/**
 * Activation time of the packaged extension in code-server, as VS Code's extension host
 * measures it and the Running Extensions view ("Developer: Show Running Extensions") shows
 * it. Beside it, the same figure for an extension whose `activate()` is empty, installed in
 * the same code-server and activated by the same event, which is the part that any extension
 * pays.
 *
 * The view's "Activation: N ms" is code loading plus the synchronous part of `activate()`
 * (src/vs/workbench/contrib/extensions/browser/abstractRuntimeExtensionsEditor.ts in VS Code
 * 1.100.3). The time until the promise that `activate()` returns settles is not in it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

import { require as tsxRequire } from 'tsx/cjs/api';

import type { Workbench } from '../test/e2e/harness';

/** Package name of the empty extension. The view labels each row with the package name. */
const EMPTY_EXTENSION_NAME = 'ota-bench-empty';
/** Package name of the extension that loads a copy of this extension's code and activates nothing. */
export const LOAD_ONLY_EXTENSION_NAME = 'ota-bench-load-only';
export const ENGINE_EXTENSION_NAME = 'python-ota-update';
const CHROMIUM_PATH = '/usr/bin/chromium';
// Tall enough for the view to render every running extension without scrolling. With the
// example workspace and both extensions, code-server 4.100.3 shows 11 rows of 70 px.
export const VIEWPORT = { width: 1440, height: 1800 };
const ACTIVATED_TIMEOUT_MS = 60_000;
const VIEW_TIMEOUT_MS = 15_000;

export interface ActivationTimes {
	/** Milliseconds of this extension, one per code-server start. */
	engine: number[];
	/** Milliseconds of the empty extension in the same starts. */
	empty: number[];
}

/**
 * Returns why the measurement cannot run on this machine, or undefined when it can.
 */
export function activationUnavailable(repo: string): string | undefined {
	// The setup script is JavaScript without type declarations, so it is loaded untyped.
	const setup = tsxRequire('../scripts/setup-e2e.mjs', import.meta.url) as { codeServerPath(repoRoot?: string): string };
	const codeServer = setup.codeServerPath(repo);
	if (!existsSync(codeServer)) {
		return `code-server not found at ${codeServer}; "node scripts/setup-e2e.mjs" installs it`;
	}
	if (!existsSync(CHROMIUM_PATH)) {
		return `chromium not found at ${CHROMIUM_PATH}; "node scripts/setup-e2e.mjs" installs it`;
	}
	return undefined;
}

/**
 * Starts code-server `repeats` times on a fresh copy of example/ with both extensions
 * installed, and reads both activation times from the Running Extensions view each time.
 */
export async function measureActivation(repo: string, vsix: string, repeats: number): Promise<ActivationTimes> {
	const harness = await import('../test/e2e/harness');
	const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'ota-bench-activation-'));
	const times: ActivationTimes = { engine: [], empty: [] };
	try {
		const emptyVsix = await packageEmptyExtension(repo, path.join(scratch, 'empty-extension'));
		for (let repeat = 0; repeat < repeats; repeat++) {
			const workspace = await copyExample(repo, path.join(scratch, `workspace-${repeat}`));
			const workbench = await harness.openWorkbench({ folder: workspace, vsixPaths: [vsix, emptyVsix], viewport: VIEWPORT });
			try {
				const timesByName = await readActivationTimesAfterStart(workbench, [ENGINE_EXTENSION_NAME, EMPTY_EXTENSION_NAME]);
				times.engine.push(timesByName[ENGINE_EXTENSION_NAME]);
				times.empty.push(timesByName[EMPTY_EXTENSION_NAME]);
			} finally {
				await workbench.close();
			}
		}
	} finally {
		await fs.rm(scratch, { recursive: true, force: true });
	}
	return times;
}

/**
 * Waits until this extension has activated in a workbench that has just opened an OTA root, and
 * returns the activation times of the extensions named `names` from the Running Extensions view.
 */
export async function readActivationTimesAfterStart(workbench: Workbench, names: string[]): Promise<Record<string, number>> {
	const harness = await import('../test/e2e/harness');
	// The status-bar item appears once activate() has run, so the view opened after it lists
	// this extension.
	await workbench.statusBarText(/^OTA:/, { timeoutMs: ACTIVATED_TIMEOUT_MS });
	return readActivationTimes(workbench, harness.waitFor, names);
}

/** Writes and packages an extension with an empty `activate()`, and returns the .vsix path. */
export async function packageEmptyExtension(repo: string, folder: string): Promise<string> {
	return packageStandIn(repo, folder, EMPTY_EXTENSION_NAME, 'OTA bench empty extension', 'exports.activate = function activate() {};\n', {});
}

/**
 * Writes and packages an extension whose main module loads a copy of dist/extension.js and
 * whose `activate()` is empty, and returns the .vsix path. Its activation time is the time that
 * loading this extension's code takes in the same start.
 */
export async function packageLoadOnlyExtension(repo: string, folder: string): Promise<string> {
	const bundle = await fs.readFile(path.join(repo, 'dist', 'extension.js'), 'utf8');
	// The first line makes the source text differ from the original, so that no cache of
	// compiled code keyed by source text can serve both extensions.
	const copy = `// Copy of dist/extension.js for the benchmark.\n${bundle}`;
	const main = "require('./bundle.js');\nexports.activate = function activate() {};\n";
	return packageStandIn(repo, folder, LOAD_ONLY_EXTENSION_NAME, 'OTA bench load-only extension', main, { 'bundle.js': copy });
}

/** Writes and packages an extension named `name` with `main` as its main module and `files` beside it. */
async function packageStandIn(repo: string, folder: string, name: string, displayName: string, main: string, files: Record<string, string>): Promise<string> {
	await fs.mkdir(folder, { recursive: true });
	const manifest = {
		name,
		displayName,
		publisher: 'ota-bench',
		version: '0.0.1',
		engines: { vscode: '^1.100.0' },
		main: './extension.js',
		// The activation event of this extension, so that both are activated in the same batch.
		activationEvents: ['workspaceContains:deposit'],
		extensionKind: ['workspace'],
	};
	await fs.writeFile(path.join(folder, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
	await fs.writeFile(path.join(folder, 'extension.js'), main);
	for (const [fileName, text] of Object.entries(files)) {
		await fs.writeFile(path.join(folder, fileName), text);
	}
	const vsix = path.join(folder, `${name}.vsix`);
	const vsce = path.join(repo, 'node_modules', '.bin', 'vsce');
	execFileSync(vsce, ['package', '--no-dependencies', '--allow-missing-repository', '--skip-license', '--out', vsix], {
		cwd: folder,
		stdio: 'ignore',
	});
	return vsix;
}

/** Copies example/ without update/ to `parent/example`, as the end-to-end tests do. */
export async function copyExample(repo: string, parent: string): Promise<string> {
	const example = path.join(repo, 'example');
	const workspace = path.join(parent, 'example');
	await fs.cp(example, workspace, { recursive: true, filter: (source) => source !== path.join(example, 'update') });
	await fs.mkdir(path.join(workspace, 'deposit'), { recursive: true });
	return workspace;
}

type WaitFor = typeof import('../test/e2e/harness').waitFor;

/**
 * Opens the Running Extensions view and waits until it shows an activation time for each
 * extension of `expectedNames`. Returns milliseconds by package name.
 */
async function readActivationTimes(workbench: Workbench, waitFor: WaitFor, expectedNames: string[]): Promise<Record<string, number>> {
	await workbench.runCommand('Developer: Show Running Extensions');
	const rows = workbench.page.locator('.runtime-extensions-editor .monaco-list-row');
	const readRows = (): Promise<Array<{ name: string; time: string }>> =>
		rows.evaluateAll((elements) =>
			elements.map((element) => ({
				// Each row's accessible label is the extension's package name.
				name: element.getAttribute('aria-label') ?? '',
				time: element.querySelector('.activation-time')?.textContent ?? '',
			})),
		);
	let lastRows: Array<{ name: string; time: string }> = [];
	return waitFor(
		`activation times of ${expectedNames.join(', ')} in the Running Extensions view`,
		async () => {
			lastRows = await readRows();
			const timesByName: Record<string, number> = {};
			for (const row of lastRows) {
				// The text reads "Startup Activation: 73ms" or "Activation: 73ms", and
				// "Activating..." until the activation has finished.
				const match = /Activation: (\d+)ms/.exec(row.time);
				if (match !== null) {
					timesByName[row.name] = Number(match[1]);
				}
			}
			return expectedNames.every((name) => name in timesByName) ? timesByName : undefined;
		},
		{
			timeoutMs: VIEW_TIMEOUT_MS,
			describeState: () => `Rows: ${lastRows.map((row) => `${row.name} "${row.time}"`).join(', ') || 'none'}`,
		},
	);
}
