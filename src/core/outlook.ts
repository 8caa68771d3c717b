/**
 * Outlook of a root: the effect of the next update on each deposit entry and of the last
 * update on `main/`. Editors show it as marks next to file names.
 */
import { DELETION_LIST } from './merge';
import type { MergePlan, MergeProblem } from './mergePlan';
import type { Journal } from './transaction';

export type DepositMarkKind = 'add' | 'replace' | 'waiting' | 'rejected' | 'deletionList';

export interface DepositMark {
	kind: DepositMarkKind;
	/** For `rejected`: the problems that name this path or a path inside it. */
	problems?: MergeProblem[];
	/** For `deletionList`: how many paths of `main/` it removes. */
	deletions?: number;
}

export type MainMarkKind = 'added' | 'replaced';

/**
 * Marks of deposit paths (relative, with `/`). A rejection outranks waiting, which outranks
 * add and replace: a file that is still changing is not yet what will be merged. Problems
 * also mark each folder above their path, so that a collapsed folder shows them.
 */
export function depositMarks(
	plan: Pick<MergePlan, 'files' | 'problems' | 'deletions'>,
	lastProblems: readonly MergeProblem[],
	waiting: readonly string[],
	hasDeletionList: boolean,
): Map<string, DepositMark> {
	const marks = new Map<string, DepositMark>();
	for (const file of plan.files) {
		marks.set(file.path, { kind: file.action });
	}
	if (hasDeletionList) {
		marks.set(DELETION_LIST, { kind: 'deletionList', deletions: plan.deletions.length });
	}
	for (const file of waiting) {
		marks.set(file, { kind: 'waiting' });
	}
	// The plan finds conflicts as they are now. Of the last rejection, only the checks that a
	// plan does not run (the compile check and the check command) still count.
	const checks = lastProblems.filter((problem) => problem.code === 'SYNTAX_ERROR' || problem.code === 'CHECK_FAILED');
	const problems = [...plan.problems, ...checks];
	for (const problem of problems) {
		// A failed check names a command, not a path, and rejects every file of the batch.
		const targets = problem.code === 'CHECK_FAILED'
			? plan.files.map((file) => file.path)
			: [problem.code === 'INVALID_DELETION' ? DELETION_LIST : problem.path];
		for (const path of targets.flatMap((target) => [target, ...ancestorsOf(target)])) {
			const mark = marks.get(path);
			if (mark?.kind === 'rejected') {
				mark.problems?.push(problem);
			} else {
				marks.set(path, { kind: 'rejected', problems: [problem] });
			}
		}
	}
	return marks;
}

/** Marks of `main/` paths that the given update added or replaced. */
export function mainMarks(journal: Journal | undefined): Map<string, MainMarkKind> {
	const marks = new Map<string, MainMarkKind>();
	for (const file of journal?.files ?? []) {
		marks.set(file.path, file.action === 'add' ? 'added' : 'replaced');
	}
	return marks;
}

function ancestorsOf(relativePath: string): string[] {
	const parts = relativePath.split('/');
	const ancestors: string[] = [];
	for (let depth = parts.length - 1; depth > 0; depth--) {
		ancestors.push(parts.slice(0, depth).join('/'));
	}
	return ancestors;
}
