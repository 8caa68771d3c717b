import * as fs from 'node:fs';
import * as path from 'node:path';
import pMap from 'p-map';
import type { IgnoreMatcher } from './ignore';
import type { OtaLayout } from './layout';
import { applyUpdate, type MergeResult, type OperationHook } from './transaction';
import {
	normaliseDeletion, planMerge, sameSnapshot,
	type DepositEntry, type EntryKind, type FileSnapshot, type MainEntry, type MergePlan, type PlannedFile,
} from './mergePlan';

import { FS_CONCURRENCY, lstatOrUndefined, toNative } from './fsPaths';

export type { MergeResult } from './transaction';

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

/**
 * Name of the deletion list: a text file at the top of the deposit naming, one per line,
 * paths of `main/` to remove with the batch (moved to the update's backup). Lines
 * starting with `#` are comments. It is a dot-name, so it is never merged itself.
 */
export const DELETION_LIST = '.ota-delete';

async function readDeletionList(layout: OtaLayout): Promise<{ deletions: string[]; invalid: string[] } | undefined> {
	let text: string;
	try {
		text = await fs.promises.readFile(path.join(layout.deposit, DELETION_LIST), 'utf8');
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
			return undefined;
		}
		throw error;
	}
	const deletions: string[] = [];
	const invalid: string[] = [];
	for (const line of text.split(/\r?\n/)) {
		if (line.trim() === '' || line.trim().startsWith('#')) {
			continue;
		}
		const normalised = normaliseDeletion(line);
		if (normalised === undefined || await passesThroughLink(layout.main, normalised)) {
			invalid.push(line.trim());
		} else if (await lstatOrUndefined(path.join(layout.main, toNative(normalised))) !== undefined) {
			deletions.push(normalised);
		}
	}
	return { deletions: [...new Set(deletions)], invalid };
}

/**
 * Tells whether a path of `main/` (relative, with `/`) goes through a folder that is a
 * symbolic link or no folder at all. Deleting through a link could remove a file outside
 * `main/`, so such a deletion is refused.
 */
async function passesThroughLink(main: string, relativePath: string): Promise<boolean> {
	const parts = relativePath.split('/');
	for (let depth = 1; depth < parts.length; depth++) {
		const stats = await lstatOrUndefined(path.join(main, ...parts.slice(0, depth)));
		if (stats === undefined) {
			return false; // nothing below a missing folder exists to delete
		}
		if (!stats.isDirectory()) {
			return true;
		}
	}
	return false;
}

/** Scans the deposit and plans its merge into `main/` without changing anything. */
export async function planDeposit(layout: OtaLayout, isIgnored: IgnoreMatcher): Promise<MergePlan & { hasDeletionList: boolean }> {
	const entries = await scanDeposit(layout.deposit, isIgnored);
	const main = await inspectMain(layout.main, entries);
	const list = await readDeletionList(layout);
	return { ...planMerge(entries, main, list?.deletions, list?.invalid), hasDeletionList: list !== undefined };
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

/** Test hook: called before each file moves, so a test can change the file or end the process. */
export type BeforeMoveHook = (file: PlannedFile) => void | Promise<void>;

/**
 * Applies a plan that has no problems as one journaled update (see `transaction.ts`).
 * Each file is checked once more just before it moves; one that changed stays in the
 * deposit and is reported in `changed`. Emptied deposit sub-folders are removed, the
 * deposit itself stays.
 */
export function applyPlan(layout: OtaLayout, plan: MergePlan, beforeMove?: BeforeMoveHook, beforeOperation?: OperationHook): Promise<MergeResult> {
	return applyUpdate(layout, plan, { beforeMove, beforeOperation, deletionList: path.join(layout.deposit, DELETION_LIST) });
}
