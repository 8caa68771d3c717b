/**
 * The merge plan as a pure function of `lstat` results: which deposit files are added
 * to `main/`, which replace a file there, and which conflicts reject the whole batch.
 * Types always come from `lstat`, never from the shape of a name, so `Makefile` is a
 * file and `my.pkg/` is a folder.
 */

export type EntryKind = 'file' | 'folder' | 'symlink' | 'other';

/** A deposit entry, with a path relative to the deposit using `/` separators. */
export interface DepositEntry {
	path: string;
	kind: EntryKind;
	size: number;
	mtimeMs: number;
	mode: number;
}

/** Result of `lstat` at the same relative path in `main/`. */
export interface MainEntry {
	kind: EntryKind | 'missing';
	mode: number;
	/** For a symlink: whether its real path is a folder inside `main/`. */
	linkIsFolderInsideMain?: boolean;
}

export type MergeProblemCode =
	| 'FILE_MEETS_FOLDER'
	| 'FOLDER_MEETS_FILE'
	| 'SYMLINK_IN_DEPOSIT'
	| 'SPECIAL_FILE_IN_DEPOSIT'
	| 'SYMLINK_IN_MAIN'
	| 'SPECIAL_FILE_IN_MAIN'
	| 'OUTSIDE_MAIN'
	| 'INVALID_DELETION'
	| 'SYNTAX_ERROR'
	| 'CHECK_FAILED';

export interface MergeProblem {
	code: MergeProblemCode;
	/** Path relative to the deposit (and to `main/`); the command for CHECK_FAILED. */
	path: string;
	/** Line of a syntax error, counted from 1. */
	line?: number;
	/** Absolute path of the file with a syntax error, so that editors can link to it. */
	file?: string;
	/** The compiler's message, or the end of a failed check's output. */
	detail?: string;
}

export interface PlannedFile {
	path: string;
	action: 'add' | 'replace';
	size: number;
	mtimeMs: number;
	/** Permission bits the file gets in `main/`: those of the file it replaces, else its own. */
	mode: number;
	/** Permission bits of the file in the deposit. */
	sourceMode: number;
}

export interface MergePlan {
	files: PlannedFile[];
	/** Folders to create in `main/`, parents before children. */
	folders: string[];
	/** Deposit folders, deepest first, to remove once they are empty. */
	depositFolders: string[];
	/** Paths of `main/` that the deletion list removes (into the update's backup). */
	deletions: string[];
	problems: MergeProblem[];
}

const PERMISSION_BITS = 0o7777;

function isUnder(path: string, folders: ReadonlySet<string>): boolean {
	for (let slash = path.lastIndexOf('/'); slash > 0; slash = path.lastIndexOf('/', slash - 1)) {
		if (folders.has(path.slice(0, slash))) {
			return true;
		}
	}
	return false;
}

function depth(path: string): number {
	return path.split('/').length;
}

/**
 * Checks one line of the deletion list: a relative path inside `main/` with `/`
 * separators. Returns it normalised, or undefined when it is invalid.
 */
export function normaliseDeletion(line: string): string | undefined {
	const trimmed = line.trim().replace(/\\/g, '/').replace(/\/+$/, '');
	if (trimmed === '' || trimmed.startsWith('/') || /^[A-Za-z]:/.test(trimmed)) {
		return undefined;
	}
	const parts = trimmed.split('/').filter((part) => part !== '' && part !== '.');
	if (parts.length === 0 || parts.includes('..')) {
		return undefined;
	}
	return parts.join('/');
}

/**
 * Plans a merge. `entries` must list every folder before its contents (a top-down walk);
 * `main` gives the `lstat` result in `main/` for each entry's path, as it is before the
 * deletions. `deletions` are paths of `main/` to remove first (only those that exist);
 * `invalidDeletions` are lines of the deletion list that name no path inside `main/`.
 */
export function planMerge(
	entries: readonly DepositEntry[],
	main: ReadonlyMap<string, MainEntry>,
	deletions: readonly string[] = [],
	invalidDeletions: readonly string[] = [],
): MergePlan {
	const plan: MergePlan = { files: [], folders: [], depositFolders: [], deletions: [...deletions], problems: [] };
	for (const line of invalidDeletions) {
		plan.problems.push({ code: 'INVALID_DELETION', path: line });
	}
	const deleted = new Set(deletions);
	const isDeleted = (relativePath: string): boolean => deleted.has(relativePath) || isUnder(relativePath, deleted);
	// Children of a folder that already has a problem would only repeat it.
	const rejectedFolders = new Set<string>();

	for (const entry of entries) {
		if (isUnder(entry.path, rejectedFolders)) {
			continue;
		}
		const target = isDeleted(entry.path) ? { kind: 'missing' as const, mode: 0 } : main.get(entry.path) ?? { kind: 'missing', mode: 0 };
		const problem = (code: MergeProblemCode): void => {
			plan.problems.push({ code, path: entry.path });
			if (entry.kind === 'folder') {
				rejectedFolders.add(entry.path);
			}
		};

		switch (entry.kind) {
			case 'symlink':
				problem('SYMLINK_IN_DEPOSIT');
				break;
			case 'other':
				problem('SPECIAL_FILE_IN_DEPOSIT');
				break;
			case 'folder':
				plan.depositFolders.push(entry.path);
				if (target.kind === 'missing') {
					plan.folders.push(entry.path);
				} else if (target.kind === 'symlink') {
					if (!target.linkIsFolderInsideMain) {
						problem('OUTSIDE_MAIN');
					}
				} else if (target.kind !== 'folder') {
					problem('FOLDER_MEETS_FILE');
				}
				break;
			case 'file':
				if (target.kind === 'missing') {
					plan.files.push({ path: entry.path, action: 'add', size: entry.size, mtimeMs: entry.mtimeMs, mode: entry.mode & PERMISSION_BITS, sourceMode: entry.mode & PERMISSION_BITS });
				} else if (target.kind === 'file') {
					plan.files.push({ path: entry.path, action: 'replace', size: entry.size, mtimeMs: entry.mtimeMs, mode: target.mode & PERMISSION_BITS, sourceMode: entry.mode & PERMISSION_BITS });
				} else if (target.kind === 'folder') {
					problem('FILE_MEETS_FOLDER');
				} else if (target.kind === 'symlink') {
					problem(target.linkIsFolderInsideMain ? 'FILE_MEETS_FOLDER' : 'SYMLINK_IN_MAIN');
				} else {
					problem('SPECIAL_FILE_IN_MAIN');
				}
				break;
		}
	}

	plan.depositFolders.sort((a, b) => depth(b) - depth(a));
	return plan;
}

/** Size and modification time of a file, compared to tell whether it is still changing. */
export interface FileSnapshot {
	size: number;
	mtimeMs: number;
}

export function sameSnapshot(a: FileSnapshot | undefined, b: FileSnapshot | undefined): boolean {
	return a !== undefined && b !== undefined && a.size === b.size && a.mtimeMs === b.mtimeMs;
}
