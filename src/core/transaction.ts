/**
 * Updates as transactions. Before the first file moves, a journal of the update is
 * written to `<root>/.ota-update/updates/<id>/journal.json`. Each replaced or deleted
 * file of `main/` is moved into that update's `backup/` folder rather than destroyed, so
 * the update can be rolled back. A supervisor killed at any point leaves a state that
 * `recoverInterruptedUpdates` finishes on the next start. Every step is a `rename`, so
 * each file is at every moment whole in exactly one place: the deposit, `main/` or the
 * backup. The only exception is a move across file systems, where a file is copied and
 * briefly exists in two places, both whole.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import pMap from 'p-map';
import { FS_CONCURRENCY, lstatOrUndefined, toNative } from './fsPaths';
import type { OtaLayout } from './layout';
import { sameSnapshot, type FileSnapshot, type MergePlan, type PlannedFile } from './mergePlan';

/** Folder of the OTA root that holds the journals, backups and the owner lock. */
export const STATE_FOLDER = '.ota-update';
/** Folder beside the deposit that receives the files of a rolled-back update. */
export const REJECTED_FOLDER = 'rejected';

export type UpdateStatus = 'applying' | 'applied' | 'failed' | 'rollingBack' | 'rolledBack';

/** A planned file as the journal records it. */
export type JournalFile = PlannedFile;

/** The journal of one update, rewritten atomically at each change of status. */
export interface Journal {
	id: string;
	startedAt: string;
	status: UpdateStatus;
	files: JournalFile[];
	/** Paths removed from `main/` by the deletion list, moved to the backup. */
	deletions: string[];
	/** Folders this update created in `main/`, parents first. */
	folders: string[];
	/** The deletion list this update consumes, by path relative to the deposit, as it was when planned. */
	deletionList?: FileSnapshot & { path: string };
	/** Files that changed after planning and stayed in the deposit. */
	changed: string[];
	finishedAt?: string;
	/** Remark for the history, such as the reason for a rollback. */
	note?: string;
}

/** Test hook, called before each file system change, with the change and its path. */
export type OperationHook = (operation: string, target: string) => void;

export interface TransactionOptions {
	beforeMove?: (file: PlannedFile) => void | Promise<void>;
	beforeOperation?: OperationHook;
	/** Path of the deletion list in the deposit, consumed with the batch. */
	deletionList?: string;
}

export interface MergeResult {
	id: string;
	added: string[];
	replaced: string[];
	deleted: string[];
	/** Files left in the deposit because they changed after planning; the next batch takes them. */
	changed: string[];
}

/** A source file changed while it was copied across file systems; it stays where it is. */
class SourceChangedError extends Error {
	constructor(readonly source: string) {
		super(`${source} changed while it was being copied`);
	}
}

/** A merge that failed part-way and was undone; `path` is the file the error concerns. */
export class MergeFailedError extends Error {
	constructor(
		readonly path: string | undefined,
		readonly errorCode: string | undefined,
		readonly failure: Error,
		readonly undone: boolean,
	) {
		super(failure.message);
		this.name = 'MergeFailedError';
	}
}

export function updatesFolder(layout: OtaLayout): string {
	return path.join(layout.root, STATE_FOLDER, 'updates');
}

function updateFolder(layout: OtaLayout, id: string): string {
	return path.join(updatesFolder(layout), id);
}

function backupPath(layout: OtaLayout, id: string, relativePath: string): string {
	return path.join(updateFolder(layout, id), 'backup', toNative(relativePath));
}

function twoDigits(value: number): string {
	return String(value).padStart(2, '0');
}

/** Time of the last id made by this process, so that ids of updates made in quick succession still sort in order. */
let lastIdTime = 0;

/**
 * Creates a sortable, unique update id: local date and time to the millisecond plus a
 * random suffix. Within one process each id is at least a millisecond later than the last.
 * NOTE: the order follows the system clock, so a clock set back between two updates
 * (a device without a real-time clock, before NTP) sorts the later update first.
 */
export function newUpdateId(now = new Date()): string {
	const time = Math.max(now.getTime(), lastIdTime + 1);
	lastIdTime = time;
	const at = new Date(time);
	const date = `${at.getFullYear()}${twoDigits(at.getMonth() + 1)}${twoDigits(at.getDate())}`;
	const clock = `${twoDigits(at.getHours())}${twoDigits(at.getMinutes())}${twoDigits(at.getSeconds())}${String(at.getMilliseconds()).padStart(3, '0')}`;
	return `${date}-${clock}-${randomBytes(3).toString('hex')}`;
}

async function snapshotOf(file: string): Promise<FileSnapshot | undefined> {
	const stat = await lstatOrUndefined(file);
	return stat?.isFile() ? { size: stat.size, mtimeMs: stat.mtimeMs } : undefined;
}

async function fsyncPath(file: string): Promise<void> {
	const handle = await fs.promises.open(file, 'r');
	try {
		await handle.sync();
	} finally {
		await handle.close();
	}
}

/** Writes a journal atomically: a temporary file, flushed, renamed over the old one. */
export async function writeJournal(layout: OtaLayout, journal: Journal, hook?: OperationHook): Promise<void> {
	const folder = updateFolder(layout, journal.id);
	await fs.promises.mkdir(folder, { recursive: true });
	const file = path.join(folder, 'journal.json');
	const temporary = `${file}.tmp`;
	hook?.('journal', file);
	await fs.promises.writeFile(temporary, JSON.stringify(journal, null, '\t') + '\n');
	await fsyncPath(temporary);
	await fs.promises.rename(temporary, file);
	await fsyncPath(folder).catch(() => undefined); // not every platform can fsync a folder
}

export async function readJournal(layout: OtaLayout, id: string): Promise<Journal | undefined> {
	try {
		return JSON.parse(await fs.promises.readFile(path.join(updateFolder(layout, id), 'journal.json'), 'utf8')) as Journal;
	} catch {
		return undefined; // a journal never written (crash before the first rename) means nothing moved
	}
}

/** Lists the journals of past updates, newest first. */
export async function listJournals(layout: OtaLayout): Promise<Journal[]> {
	const ids = await fs.promises.readdir(updatesFolder(layout)).catch(() => [] as string[]);
	ids.sort().reverse();
	const journals: Journal[] = [];
	for (const id of ids) {
		const journal = await readJournal(layout, id);
		if (journal !== undefined) {
			journals.push(journal);
		}
	}
	return journals;
}

/**
 * Moves a file. Within one file system this is one `rename`. Across file systems the
 * copy goes to a temporary dot-name beside the target, keeps the source's mtime, is
 * flushed to disk and renamed over the target. Only then is the source removed.
 */
async function moveFile(source: string, target: string, hook: OperationHook | undefined, mode?: number): Promise<void> {
	hook?.('move', target);
	if (mode !== undefined) {
		// An upload account may own the file. Without ownership the bits cannot change, but
		// the file still moves, because a rename needs only write access to the folders.
		await fs.promises.chmod(source, mode).catch((error: NodeJS.ErrnoException) => {
			if (error.code !== 'EPERM') {
				throw error;
			}
		});
	}
	try {
		await fs.promises.rename(source, target);
		return;
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code !== 'EXDEV') {
			throw error;
		}
	}
	const stat = await fs.promises.lstat(source);
	if (stat.isDirectory()) {
		await fs.promises.cp(source, target, { recursive: true, preserveTimestamps: true, errorOnExist: true, force: false });
		await fs.promises.rm(source, { recursive: true });
		return;
	}
	// NOTE: a crash between the copy and the rename leaves this dot-named temporary file
	// beside the target. Every merge ignores it, and it is safe to delete.
	const temporary = path.join(path.dirname(target), `.ota-update-${randomBytes(6).toString('hex')}.tmp`);
	try {
		await fs.promises.copyFile(source, temporary, fs.constants.COPYFILE_EXCL);
		await fs.promises.chmod(temporary, mode ?? stat.mode & 0o7777);
		await fs.promises.utimes(temporary, stat.atime, stat.mtime);
		await fsyncPath(temporary);
		// A writer still appending to the source would lose what it writes after the unlink.
		const after = await fs.promises.lstat(source);
		if (after.size !== stat.size || after.mtimeMs !== stat.mtimeMs) {
			throw new SourceChangedError(source);
		}
		hook?.('rename', target);
		await fs.promises.rename(temporary, target);
	} catch (error) {
		await fs.promises.rm(temporary, { force: true });
		throw error;
	}
	hook?.('unlink', source);
	await fs.promises.unlink(source);
}

/** Moves `source` to `target`, creating the target's folder first. */
async function moveInto(source: string, target: string, hook: OperationHook | undefined): Promise<void> {
	await fs.promises.mkdir(path.dirname(target), { recursive: true });
	await moveFile(source, target, hook);
}

/**
 * Removes `__pycache__/<module>.*.pyc` of a replaced module. Python validates a cache by
 * the source's mtime in whole seconds and its size, so a replacement of the same size
 * uploaded within the same second would otherwise run the old bytecode.
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

async function removeEmptyFolders(folders: readonly string[], base: string): Promise<void> {
	const deepestFirst = [...folders].sort((a, b) => b.split('/').length - a.split('/').length);
	for (const folder of deepestFirst) {
		await fs.promises.rmdir(path.join(base, toNative(folder))).catch((error: NodeJS.ErrnoException) => {
			// A folder that still contains ignored or changed files stays.
			if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST' && error.code !== 'ENOENT') {
				throw error;
			}
		});
	}
}

/** Steps done so far by `applyUpdate`, in order, so that a failure can undo them. */
type DoneStep =
	| { kind: 'deleted'; path: string }
	| { kind: 'backedUp'; path: string }
	| { kind: 'moved'; path: string };

async function undoSteps(layout: OtaLayout, id: string, steps: DoneStep[]): Promise<void> {
	for (const step of [...steps].reverse()) {
		const main = path.join(layout.main, toNative(step.path));
		if (step.kind === 'moved') {
			await moveInto(main, path.join(layout.deposit, toNative(step.path)), undefined);
		} else {
			await moveInto(backupPath(layout, id, step.path), main, undefined);
		}
	}
}

/**
 * Applies a plan without problems as one update: journal first, then deletions and
 * replaced files into the backup, then each new file into place. Each file is checked once
 * more just before it moves; one that changed stays in the deposit and is reported in
 * `changed`. On an error, the steps done so far are undone and `MergeFailedError` is thrown.
 */
export async function applyUpdate(layout: OtaLayout, plan: MergePlan, options: TransactionOptions = {}): Promise<MergeResult> {
	if (plan.problems.length > 0) {
		throw new Error('applyUpdate was given a plan with problems');
	}
	const hook = options.beforeOperation;
	const journal: Journal = {
		id: newUpdateId(),
		startedAt: new Date().toISOString(),
		status: 'applying',
		files: plan.files.map((file) => ({ ...file })),
		deletions: [...plan.deletions],
		folders: [...plan.folders],
		changed: [],
	};
	const deletionListSnapshot = options.deletionList === undefined ? undefined : await snapshotOf(options.deletionList);
	if (options.deletionList !== undefined && deletionListSnapshot !== undefined) {
		journal.deletionList = { path: path.relative(layout.deposit, options.deletionList).split(path.sep).join('/'), ...deletionListSnapshot };
	}
	await writeJournal(layout, journal, hook);
	const result: MergeResult = { id: journal.id, added: [], replaced: [], deleted: [], changed: [] };
	const steps: DoneStep[] = [];
	let failedPath: string | undefined;
	try {
		for (const deletion of plan.deletions) {
			failedPath = `main/${deletion}`;
			await moveInto(path.join(layout.main, toNative(deletion)), backupPath(layout, journal.id, deletion), hook);
			steps.push({ kind: 'deleted', path: deletion });
			result.deleted.push(deletion);
		}
		for (const folder of plan.folders) {
			failedPath = `main/${folder}`;
			hook?.('mkdir', folder);
			await fs.promises.mkdir(path.join(layout.main, toNative(folder)), { recursive: true });
		}
		const cacheListings = new Map<string, Promise<string[]>>();
		// After the first error no file starts to move, and the undo below waits for the
		// moves already in flight: p-map's stopOnError would reject while they still run.
		let firstError: unknown;
		let failed = false;
		const fail = (error: unknown, file?: PlannedFile): void => {
			if (!failed) {
				failed = true;
				firstError = error;
				failedPath = file === undefined ? failedPath : `deposit/${file.path}`;
			}
		};
		const moveOne = async (file: PlannedFile): Promise<void> => {
			await options.beforeMove?.(file);
			if (failed) {
				return;
			}
			const source = path.join(layout.deposit, toNative(file.path));
			if (!sameSnapshot(file, await snapshotOf(source))) {
				result.changed.push(file.path);
				return;
			}
			const target = path.join(layout.main, toNative(file.path));
			try {
				if (file.action === 'replace') {
					await moveInto(target, backupPath(layout, journal.id, file.path), hook);
					steps.push({ kind: 'backedUp', path: file.path });
				}
				await moveFile(source, target, hook, file.mode === file.sourceMode ? undefined : file.mode);
				steps.push({ kind: 'moved', path: file.path });
			} catch (error) {
				if (error instanceof SourceChangedError) {
					// Still being written: it stays in the deposit, and the file it would replace comes back.
					if (file.action === 'replace') {
						await moveInto(backupPath(layout, journal.id, file.path), target, undefined);
						const backedUp = steps.findIndex((step) => step.kind === 'backedUp' && step.path === file.path);
						if (backedUp !== -1) {
							steps.splice(backedUp, 1);
						}
					}
					result.changed.push(file.path);
					return;
				}
				fail(error, file);
				return;
			}
			if (file.action === 'replace') {
				await removeBytecodeCache(layout.main, file.path, cacheListings);
				result.replaced.push(file.path);
			} else {
				result.added.push(file.path);
			}
		};
		await pMap(plan.files, async (file) => {
			if (!failed) {
				await moveOne(file).catch((error: unknown) => fail(error));
			}
		}, { concurrency: FS_CONCURRENCY });
		if (failed) {
			throw firstError;
		}
	} catch (error) {
		const failure = error as NodeJS.ErrnoException;
		let undone = true;
		try {
			await undoSteps(layout, journal.id, steps);
			await removeEmptyFolders(plan.folders, layout.main);
			journal.status = 'failed';
			journal.note = failure.message;
			await writeJournal(layout, journal);
		} catch {
			undone = false; // the journal stays "applying": the next start finishes the update
		}
		throw new MergeFailedError(failedPath, failure.code, failure, undone);
	}

	for (const list of [result.added, result.replaced, result.changed]) {
		list.sort();
	}
	// The deletion list is removed before the journal is marked "applied". A crash in between
	// leaves an "applying" journal, which recovery finishes, and never a list that a later batch would apply again.
	if (options.deletionList !== undefined) {
		await fs.promises.rm(options.deletionList, { force: true });
	}
	journal.status = 'applied';
	journal.changed = result.changed;
	journal.finishedAt = new Date().toISOString();
	await writeJournal(layout, journal, hook);
	await removeEmptyFolders(plan.depositFolders, layout.deposit);
	return result;
}

/** Outcome of the recovery of one interrupted update. */
export interface RecoveryResult {
	id: string;
	/** Files moved into place to finish the update. */
	finished: string[];
	/** Files put back from the backup because their deposit copy changed meanwhile. */
	restored: string[];
	/** Whether an interrupted rollback was completed rather than an update. */
	rollback: boolean;
}

/**
 * Finishes every update that a crash interrupted, from its journal: each file is found
 * in the deposit, `main/` or the backup and its remaining steps are done. A deposit file
 * that changed since the journal was written is left for the next batch and the file it
 * would have replaced comes back from the backup.
 */
export async function recoverInterruptedUpdates(layout: OtaLayout, hook?: OperationHook): Promise<RecoveryResult[]> {
	const results: RecoveryResult[] = [];
	for (const journal of await listJournals(layout)) {
		if (journal.status === 'applying') {
			results.push(await finishUpdate(layout, journal, hook));
		} else if (journal.status === 'rollingBack') {
			await rollBackUpdate(layout, journal, journal.note ?? 'rollback finished after an interruption', hook);
			results.push({ id: journal.id, finished: [], restored: [], rollback: true });
		}
	}
	return results;
}

async function finishUpdate(layout: OtaLayout, journal: Journal, hook?: OperationHook): Promise<RecoveryResult> {
	const result: RecoveryResult = { id: journal.id, finished: [], restored: [], rollback: false };
	for (const deletion of journal.deletions) {
		const main = path.join(layout.main, toNative(deletion));
		const backup = backupPath(layout, journal.id, deletion);
		if (await lstatOrUndefined(main) !== undefined && await lstatOrUndefined(backup) === undefined) {
			await moveInto(main, backup, hook);
		}
	}
	for (const folder of journal.folders) {
		await fs.promises.mkdir(path.join(layout.main, toNative(folder)), { recursive: true });
	}
	const changed: string[] = [];
	for (const file of journal.files) {
		const deposit = path.join(layout.deposit, toNative(file.path));
		const main = path.join(layout.main, toNative(file.path));
		const backup = backupPath(layout, journal.id, file.path);
		const depositMatches = sameSnapshot(file, await snapshotOf(deposit));
		const mainMatches = sameSnapshot(file, await snapshotOf(main));
		const backedUp = await lstatOrUndefined(backup) !== undefined;
		if (mainMatches && (file.action === 'add' || backedUp)) {
			// Already in place; a copy across file systems may still have its source.
			if (depositMatches) {
				await fs.promises.unlink(deposit);
			}
			continue;
		}
		if (depositMatches) {
			if (file.action === 'replace' && !backedUp && await lstatOrUndefined(main) !== undefined) {
				await moveInto(main, backup, hook);
			}
			await moveFile(deposit, main, hook, file.mode === file.sourceMode ? undefined : file.mode);
			result.finished.push(file.path);
		} else {
			changed.push(file.path);
			if (backedUp && await lstatOrUndefined(main) === undefined) {
				await moveInto(backup, main, hook);
				result.restored.push(file.path);
			}
		}
	}
	const deletionList = journal.deletionList;
	if (deletionList !== undefined) {
		const listFile = path.join(layout.deposit, toNative(deletionList.path));
		// A list uploaded again since then belongs to the next batch.
		if (sameSnapshot(deletionList, await snapshotOf(listFile))) {
			await fs.promises.rm(listFile, { force: true });
		}
	}
	journal.status = 'applied';
	journal.changed = changed;
	journal.finishedAt = new Date().toISOString();
	journal.note = 'finished after an interruption';
	await writeJournal(layout, journal, hook);
	return result;
}

export interface RollbackResult {
	id: string;
	/** Files of the update moved out of `main/` into `rejected/<id>/`. */
	rejected: string[];
	/** Files put back into `main/` from the backup. */
	restored: string[];
}

/**
 * Rolls one applied update back: its added and replacing files leave `main/` for
 * `rejected/<id>/` beside the deposit (never deleted), and the files it replaced or
 * deleted come back from its backup. Safe to run again after an interruption.
 */
export async function rollBackUpdate(layout: OtaLayout, journal: Journal, note: string, hook?: OperationHook): Promise<RollbackResult> {
	journal.status = 'rollingBack';
	journal.note = note;
	await writeJournal(layout, journal, hook);
	const result: RollbackResult = { id: journal.id, rejected: [], restored: [] };
	const rejectedFolder = path.join(layout.root, REJECTED_FOLDER, journal.id);
	const listings = new Map<string, Promise<string[]>>();
	for (const file of journal.files) {
		if (journal.changed.includes(file.path)) {
			continue; // it never left the deposit
		}
		const main = path.join(layout.main, toNative(file.path));
		const backup = backupPath(layout, journal.id, file.path);
		const rejected = path.join(rejectedFolder, toNative(file.path));
		if (await lstatOrUndefined(main) !== undefined && (file.action === 'add' || await lstatOrUndefined(backup) !== undefined)) {
			await moveInto(main, rejected, hook);
			result.rejected.push(file.path);
		}
		if (file.action === 'replace' && await lstatOrUndefined(backup) !== undefined) {
			await moveInto(backup, main, hook);
			await removeBytecodeCache(layout.main, file.path, listings);
			result.restored.push(file.path);
		}
	}
	// The folders this update created go before the deleted paths come back, because a
	// deleted file may have the name of such a folder (a file `lib` replaced by `lib/`).
	// Bytecode that the rolled-back version wrote there would keep them from being empty.
	for (const folder of journal.folders) {
		await fs.promises.rm(path.join(layout.main, toNative(folder), '__pycache__'), { recursive: true, force: true });
	}
	await removeEmptyFolders(journal.folders, layout.main);
	for (const deletion of journal.deletions) {
		const backup = backupPath(layout, journal.id, deletion);
		if (await lstatOrUndefined(backup) !== undefined) {
			// NOTE: this fails when the rolled-back version wrote other files into a folder
			// that has the name of a deleted file. The rollback then stays unfinished.
			await moveInto(backup, path.join(layout.main, toNative(deletion)), hook);
			result.restored.push(deletion);
		}
	}
	journal.status = 'rolledBack';
	journal.finishedAt = new Date().toISOString();
	await writeJournal(layout, journal, hook);
	return result;
}

/**
 * Keeps the journals and backups of the newest `maxUpdates` updates (0 keeps all) and
 * removes older ones. An update still in progress is never removed.
 */
export async function pruneHistory(layout: OtaLayout, maxUpdates: number): Promise<string[]> {
	if (maxUpdates <= 0) {
		return [];
	}
	const removed: string[] = [];
	const journals = await listJournals(layout);
	for (const journal of journals.slice(maxUpdates)) {
		if (journal.status === 'applying' || journal.status === 'rollingBack') {
			continue;
		}
		await fs.promises.rm(updateFolder(layout, journal.id), { recursive: true, force: true });
		removed.push(journal.id);
	}
	return removed;
}
