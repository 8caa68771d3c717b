import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import pMap from 'p-map';
import type { IgnoreMatcher } from './ignore';
import type { OtaLayout } from './layout';
import {
	planMerge, sameSnapshot,
	type DepositEntry, type EntryKind, type FileSnapshot, type MainEntry, type MergePlan, type PlannedFile,
} from './mergePlan';

/** File system calls in flight at once. Spread over libuv's thread pool, they finish a
 * large merge faster than one call at a time; more than this gains nothing measurable. */
const FS_CONCURRENCY = 16;

function kindOf(stat: fs.Stats): EntryKind {
	if (stat.isFile()) {
		return 'file';
	}
	if (stat.isDirectory()) {
		return 'folder';
	}
	if (stat.isSymbolicLink()) {
		return 'symlink';
	}
	return 'other';
}

function toNative(relativePath: string): string {
	return relativePath.split('/').join(path.sep);
}

async function lstatOrUndefined(file: string): Promise<fs.Stats | undefined> {
	try {
		return await fs.promises.lstat(file);
	} catch (error) {
		const code = (error as NodeJS.ErrnoException).code;
		if (code === 'ENOENT' || code === 'ENOTDIR') {
			return undefined;
		}
		throw error;
	}
}

/** Lists the deposit top-down with `lstat`, leaving out ignored names. */
export async function scanDeposit(deposit: string, isIgnored: IgnoreMatcher): Promise<DepositEntry[]> {
	const entries: DepositEntry[] = [];
	const walk = async (relativeFolder: string): Promise<void> => {
		const names = await fs.promises.readdir(path.join(deposit, toNative(relativeFolder)));
		names.sort();
		const found = await pMap(names, async (name): Promise<DepositEntry | undefined> => {
			const relativePath = relativeFolder === '' ? name : `${relativeFolder}/${name}`;
			const stat = await lstatOrUndefined(path.join(deposit, toNative(relativePath)));
			if (stat === undefined) {
				return undefined; // removed while the folder was being listed
			}
			const kind = kindOf(stat);
			if (isIgnored(relativePath, kind === 'folder')) {
				return undefined;
			}
			return { path: relativePath, kind, size: stat.size, mtimeMs: stat.mtimeMs, mode: stat.mode };
		}, { concurrency: FS_CONCURRENCY });
		const listed = found.filter((entry): entry is DepositEntry => entry !== undefined);
		entries.push(...listed);
		for (const entry of listed) {
			if (entry.kind === 'folder') {
				await walk(entry.path);
			}
		}
	};
	await walk('');
	return entries;
}

async function inspectMain(mainFolder: string, entries: readonly DepositEntry[]): Promise<Map<string, MainEntry>> {
	const realMain = await fs.promises.realpath(mainFolder);
	const found = new Map<string, MainEntry>();
	await pMap(entries, async (entry) => {
		const target = path.join(mainFolder, toNative(entry.path));
		const stat = await lstatOrUndefined(target);
		if (stat === undefined) {
			found.set(entry.path, { kind: 'missing', mode: 0 });
			return;
		}
		const info: MainEntry = { kind: kindOf(stat), mode: stat.mode };
		if (info.kind === 'symlink') {
			const real = await fs.promises.realpath(target).catch(() => undefined);
			const realStat = real === undefined ? undefined : await fs.promises.stat(real).catch(() => undefined);
			info.linkIsFolderInsideMain = real !== undefined && realStat?.isDirectory() === true
				&& (real === realMain || real.startsWith(realMain + path.sep));
		}
		found.set(entry.path, info);
	}, { concurrency: FS_CONCURRENCY });
	return found;
}

/** Scans the deposit and plans its merge into `main/` without changing anything. */
export async function planDeposit(layout: OtaLayout, isIgnored: IgnoreMatcher): Promise<MergePlan> {
	const entries = await scanDeposit(layout.deposit, isIgnored);
	const main = await inspectMain(layout.main, entries);
	return planMerge(entries, main);
}

/** Re-reads each planned file; returns the paths whose size or mtime changed, or that vanished. */
export async function changedSincePlan(layout: OtaLayout, files: readonly PlannedFile[]): Promise<string[]> {
	const changed: string[] = [];
	for (const file of files) {
		const stat = await lstatOrUndefined(path.join(layout.deposit, toNative(file.path)));
		const now: FileSnapshot | undefined = stat?.isFile() ? { size: stat.size, mtimeMs: stat.mtimeMs } : undefined;
		if (!sameSnapshot(file, now)) {
			changed.push(file.path);
		}
	}
	return changed;
}

export interface MergeResult {
	added: string[];
	replaced: string[];
	/** Files left in the deposit because they changed after planning; the next batch takes them. */
	changed: string[];
}

/** Test hook: called before each file moves, so a test can change the file or end the process. */
export type BeforeMoveHook = (file: PlannedFile) => void | Promise<void>;

async function fsyncFile(file: string): Promise<void> {
	const handle = await fs.promises.open(file, 'r');
	try {
		await handle.sync();
	} finally {
		await handle.close();
	}
}

/**
 * Moves a file into place. Within one file system this is one `rename`, so the target
 * is always either the old or the new file. Across file systems the copy goes to a
 * temporary dot-name beside the target, is flushed to disk, then renamed over the target,
 * and only then is the source removed: a crash leaves the source whole in the deposit.
 */
async function moveFile(source: string, target: string, mode: number, sourceMode: number): Promise<void> {
	if (mode !== sourceMode) {
		await fs.promises.chmod(source, mode);
	}
	try {
		await fs.promises.rename(source, target);
		return;
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code !== 'EXDEV') {
			throw error;
		}
	}
	const temporary = path.join(path.dirname(target), `.ota-update-${randomBytes(6).toString('hex')}.tmp`);
	try {
		await fs.promises.copyFile(source, temporary, fs.constants.COPYFILE_EXCL);
		await fs.promises.chmod(temporary, mode);
		await fsyncFile(temporary);
		await fs.promises.rename(temporary, target);
	} catch (error) {
		await fs.promises.rm(temporary, { force: true });
		throw error;
	}
	await fs.promises.unlink(source);
}

/**
 * Removes `__pycache__/<module>.*.pyc` for a replaced module. Python validates a cache
 * by the source's mtime in whole seconds and its size, so a replacement of the same
 * size uploaded within the same second would otherwise run the old bytecode.
 */
async function removeBytecodeCache(mainFolder: string, relativePath: string, listings: Map<string, Promise<string[]>>): Promise<void> {
	if (!relativePath.endsWith('.py')) {
		return;
	}
	const source = path.join(mainFolder, toNative(relativePath));
	const cacheFolder = path.join(path.dirname(source), '__pycache__');
	const module = path.basename(source, '.py');
	// One listing per folder: a large update replaces many modules of the same package.
	let listing = listings.get(cacheFolder);
	if (listing === undefined) {
		listing = fs.promises.readdir(cacheFolder).catch(() => [] as string[]);
		listings.set(cacheFolder, listing);
	}
	for (const name of await listing) {
		if (name.startsWith(`${module}.`) && name.endsWith('.pyc')) {
			await fs.promises.rm(path.join(cacheFolder, name), { force: true });
		}
	}
}

/**
 * Applies a plan that has no problems. Each file is checked once more just before it
 * moves; one that changed stays in the deposit and is reported in `changed`. Emptied
 * deposit sub-folders are removed (the deposit itself stays); nothing in `main/` is removed
 * but stale bytecode caches of replaced modules.
 */
export async function applyPlan(layout: OtaLayout, plan: MergePlan, beforeMove?: BeforeMoveHook): Promise<MergeResult> {
	if (plan.problems.length > 0) {
		throw new Error('applyPlan was given a plan with problems');
	}
	const result: MergeResult = { added: [], replaced: [], changed: [] };
	for (const folder of plan.folders) {
		await fs.promises.mkdir(path.join(layout.main, toNative(folder)), { recursive: true });
	}
	const cacheListings = new Map<string, Promise<string[]>>();
	await pMap(plan.files, async (file) => {
		await beforeMove?.(file);
		const source = path.join(layout.deposit, toNative(file.path));
		if ((await changedSincePlan(layout, [file])).length > 0) {
			result.changed.push(file.path);
			return;
		}
		// The plan created every missing folder above, so the target's parent exists.
		const target = path.join(layout.main, toNative(file.path));
		await moveFile(source, target, file.mode, file.sourceMode);
		if (file.action === 'replace') {
			await removeBytecodeCache(layout.main, file.path, cacheListings);
			result.replaced.push(file.path);
		} else {
			result.added.push(file.path);
		}
	}, { concurrency: FS_CONCURRENCY });
	for (const list of [result.added, result.replaced, result.changed]) {
		list.sort();
	}
	for (const folder of plan.depositFolders) {
		await fs.promises.rmdir(path.join(layout.deposit, toNative(folder))).catch((error: NodeJS.ErrnoException) => {
			// A folder that still holds ignored or changed files stays.
			if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST' && error.code !== 'ENOENT') {
				throw error;
			}
		});
	}
	return result;
}
