import * as path from 'node:path';
import * as vscode from 'vscode';
import { describeProblem } from '../../core/describe';
import { depositMarks, mainMarks, type DepositMark, type MainMarkKind } from '../../core/outlook';
import type { RootController } from '../rootController';

const t = vscode.l10n.t;

export type Section = 'deposit' | 'main';

interface RootMarks {
	deposit: Map<string, DepositMark>;
	main: Map<string, MainMarkKind>;
	/** When the update behind the `main` marks started. */
	updatedAt: string | undefined;
}

/** The part of a path that lies inside a root's deposit or main folder. */
export interface Located {
	controller: RootController;
	section: Section;
	/** Path relative to the section folder, with `/`; '' for the folder itself. */
	relative: string;
}

/**
 * Badges and colours for deposit and main entries: what the next update will do with a deposit
 * entry, and which main files the last update changed. VS Code shows them wherever those files
 * appear, in the OTA tree, the Explorer and editor tabs.
 */
export class OtaMarks implements vscode.FileDecorationProvider, vscode.Disposable {
	private readonly marks = new Map<RootController, RootMarks>();
	private readonly changeEmitter = new vscode.EventEmitter<vscode.Uri[]>();
	readonly onDidChangeFileDecorations = this.changeEmitter.event;
	private readonly registration: vscode.Disposable;

	constructor(private readonly roots: () => readonly RootController[]) {
		this.registration = vscode.window.registerFileDecorationProvider(this);
	}

	/** Finds the root, section and relative path of a file URI, if it is in a deposit or main folder. */
	locate(uri: vscode.Uri): Located | undefined {
		if (uri.scheme !== 'file') {
			return undefined;
		}
		for (const controller of this.roots()) {
			for (const section of ['deposit', 'main'] as const) {
				const relative = path.relative(path.join(controller.root, section), uri.fsPath);
				if (relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative))) {
					return { controller, section, relative: relative.split(path.sep).join('/') };
				}
			}
		}
		return undefined;
	}

	depositMark(controller: RootController, relative: string): DepositMark | undefined {
		return this.marks.get(controller)?.deposit.get(relative);
	}

	mainMark(controller: RootController, relative: string): MainMarkKind | undefined {
		return this.marks.get(controller)?.main.get(relative);
	}

	/** Counts the deposit files that the next update adds, replaces or waits for, and reports whether it is rejected. */
	depositSummary(controller: RootController): { add: number; replace: number; waiting: number; rejected: boolean } {
		const summary = { add: 0, replace: 0, waiting: 0, rejected: false };
		for (const mark of this.marks.get(controller)?.deposit.values() ?? []) {
			if (mark.kind === 'add' || mark.kind === 'replace' || mark.kind === 'waiting') {
				summary[mark.kind]++;
			} else if (mark.kind === 'rejected') {
				summary.rejected = true;
			}
		}
		return summary;
	}

	lastUpdateTime(controller: RootController): string | undefined {
		return this.marks.get(controller)?.updatedAt;
	}

	/** Reads what the next update would do, and marks the deposit's entries accordingly. */
	async refreshDeposit(controller: RootController): Promise<void> {
		const plan = await controller.previewDeposit().catch(() => undefined);
		const next = plan === undefined
			? new Map<string, DepositMark>()
			: depositMarks(plan, controller.lastProblems, controller.waitingFiles, plan.hasDeletionList);
		const current = this.entryOf(controller);
		const changed = changedKeys(current.deposit, next, sameDepositMark);
		current.deposit = next;
		this.fire(controller, 'deposit', changed);
	}

	/** Reads the last applied update, and marks the main files it changed. */
	async refreshMain(controller: RootController): Promise<void> {
		const journal = await controller.lastUpdate().catch(() => undefined);
		const next = mainMarks(journal);
		const current = this.entryOf(controller);
		const changed = changedKeys(current.main, next, (a, b) => a === b);
		current.main = next;
		current.updatedAt = journal?.startedAt;
		this.fire(controller, 'main', changed);
	}

	/** Forgets the marks of roots that are gone. */
	prune(): void {
		const live = new Set(this.roots());
		for (const controller of [...this.marks.keys()]) {
			if (!live.has(controller)) {
				this.marks.delete(controller);
			}
		}
	}

	private entryOf(controller: RootController): RootMarks {
		let entry = this.marks.get(controller);
		if (entry === undefined) {
			entry = { deposit: new Map(), main: new Map(), updatedAt: undefined };
			this.marks.set(controller, entry);
		}
		return entry;
	}

	private fire(controller: RootController, section: Section, relativePaths: readonly string[]): void {
		if (relativePaths.length > 0) {
			const folder = vscode.Uri.joinPath(controller.rootUri, section);
			this.changeEmitter.fire(relativePaths.map((relative) => vscode.Uri.joinPath(folder, ...relative.split('/'))));
		}
	}

	async provideFileDecoration(uri: vscode.Uri): Promise<vscode.FileDecoration | undefined> {
		const located = this.locate(uri);
		if (located === undefined || located.relative === '') {
			return undefined;
		}
		const { controller, section, relative } = located;
		if (section === 'main') {
			const mark = this.mainMark(controller, relative);
			return mark === undefined ? undefined : mainDecoration(mark);
		}
		const mark = this.depositMark(controller, relative);
		if (mark !== undefined) {
			return depositDecoration(mark);
		}
		return await isIgnored(controller, uri, relative) ? ignoredDecoration() : undefined;
	}

	dispose(): void {
		this.registration.dispose();
		this.changeEmitter.dispose();
	}
}

async function isIgnored(controller: RootController, uri: vscode.Uri, relative: string): Promise<boolean> {
	if (controller.ignores(relative, false) === controller.ignores(relative, true)) {
		return controller.ignores(relative, false);
	}
	// Only a folder-only pattern such as `__pycache__/` matches one kind and not the other, so the file type decides.
	const type = await Promise.resolve(vscode.workspace.fs.stat(uri)).then((stat) => stat.type, () => undefined);
	return type !== undefined && controller.ignores(relative, (type & vscode.FileType.Directory) !== 0);
}

/** Describes a deposit mark in the words of the tree's description and tooltip. */
export function describeDepositMark(mark: DepositMark): { short: string; long: string } {
	switch (mark.kind) {
		case 'add':
			return { short: t('add'), long: t('The next update adds this file to main/.') };
		case 'replace':
			return { short: t('replace'), long: t('The next update replaces the file of the same name in main/.') };
		case 'waiting':
			return { short: t('waiting'), long: t('Still changing: the update waits until it has settled.') };
		case 'deletionList':
			return { short: t('deletion list'), long: t('Deletion list: the next update removes {0} path(s) from main/.', mark.deletions ?? 0) };
		case 'rejected':
			return {
				short: t('rejected'),
				long: [t('The update is rejected:'), ...(mark.problems ?? []).map((problem) => describeProblem(problem, t))].join('\n'),
			};
	}
}

export function describeMainMark(mark: MainMarkKind): string {
	return mark === 'added' ? t('Added by the last update.') : t('Replaced by the last update.');
}

function depositDecoration(mark: DepositMark): vscode.FileDecoration {
	const { long } = describeDepositMark(mark);
	switch (mark.kind) {
		case 'add':
			return decoration('A', long, 'gitDecoration.addedResourceForeground', true);
		case 'replace':
			return decoration('R', long, 'gitDecoration.modifiedResourceForeground', true);
		case 'waiting':
			return decoration('W', long, 'editorWarning.foreground', true);
		case 'deletionList':
			return decoration('D', long, 'gitDecoration.deletedResourceForeground', false);
		case 'rejected':
			return decoration('!', long, 'errorForeground', true);
	}
}

function mainDecoration(mark: MainMarkKind): vscode.FileDecoration {
	return decoration('U', describeMainMark(mark), mark === 'added' ? 'gitDecoration.addedResourceForeground' : 'gitDecoration.modifiedResourceForeground', true);
}

function ignoredDecoration(): vscode.FileDecoration {
	return decoration('I', t('Ignored: updates never move this entry.'), 'gitDecoration.ignoredResourceForeground', false);
}

function decoration(badge: string, tooltip: string, color: string, propagate: boolean): vscode.FileDecoration {
	const result = new vscode.FileDecoration(badge, tooltip, new vscode.ThemeColor(color));
	result.propagate = propagate;
	return result;
}

function sameDepositMark(a: DepositMark, b: DepositMark): boolean {
	return a.kind === b.kind && a.deletions === b.deletions && JSON.stringify(a.problems) === JSON.stringify(b.problems);
}

function changedKeys<V>(before: ReadonlyMap<string, V>, after: ReadonlyMap<string, V>, same: (a: V, b: V) => boolean): string[] {
	const changed: string[] = [];
	for (const [key, value] of after) {
		const old = before.get(key);
		if (old === undefined || !same(old, value)) {
			changed.push(key);
		}
	}
	for (const key of before.keys()) {
		if (!after.has(key)) {
			changed.push(key);
		}
	}
	return changed;
}
