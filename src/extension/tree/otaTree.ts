import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { describeState } from '../../core/describe';
import { DELETION_LIST } from '../../core/merge';
import type { SessionState } from '../../core/events';
import type { RootChange, RootController } from '../rootController';
import type { RootRegistry } from '../rootRegistry';
import { describeDepositMark, describeMainMark, OtaMarks, type Section } from './marks';

const t = vscode.l10n.t;

/** Entries listed per folder. A folder with more shows how many are left out and where to see them. */
export const MAX_CHILDREN = 1000;
/** Engine events and file changes come in bursts; the tree redraws once per burst. */
const REFRESH_DELAY_MS = 150;
/** Delay for file changes in main/, which a running program may make many times a second. */
const MAIN_REFRESH_DELAY_MS = 1000;

export type Notice = 'untrusted' | 'pythonMissing' | 'entryMissing';

export type OtaNode =
	| { type: 'root'; controller: RootController; root: string }
	| { type: 'section'; controller: RootController; root: string; section: Section }
	| { type: 'entry'; controller: RootController; root: string; section: Section; uri: vscode.Uri; relative: string; isFolder: boolean; parent: OtaNode }
	| { type: 'notice'; controller: RootController; root: string; notice: Notice }
	| { type: 'more'; folder: vscode.Uri; hidden: number; parent: OtaNode };

export type EntryNode = Extract<OtaNode, { type: 'entry' }>;

const STATE_ICONS: Record<SessionState, string> = {
	stopped: 'debug-stop',
	starting: 'loading~spin',
	running: 'play-circle',
	updating: 'sync~spin',
	stopping: 'loading~spin',
	exited: 'circle-outline',
	restarting: 'history',
	crashed: 'error',
	waitingForEntry: 'watch',
	waitingForProgram: 'lock',
};

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

interface RootNodes {
	root: OtaNode & { type: 'root' };
	deposit: OtaNode & { type: 'section' };
	main: OtaNode & { type: 'section' };
	watcher: vscode.FileSystemWatcher;
	unsubscribe: vscode.Disposable;
	pending: Set<RootChange>;
	timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * The sidebar tree: for each OTA root, its deposit and main folders. Folders are read when
 * they are expanded, so a large main/ costs nothing until it is opened. The engine's events
 * and file changes redraw the affected part after a short delay.
 */
export class OtaTree implements vscode.TreeDataProvider<OtaNode>, vscode.Disposable {
	private readonly changeEmitter = new vscode.EventEmitter<OtaNode | undefined>();
	readonly onDidChangeTreeData = this.changeEmitter.event;
	private readonly nodes = new Map<RootController, RootNodes>();
	private readonly disposables: vscode.Disposable[] = [];
	readonly marks: OtaMarks;
	readonly view: vscode.TreeView<OtaNode>;

	constructor(private readonly registry: RootRegistry) {
		this.marks = new OtaMarks(() => registry.all);
		this.view = vscode.window.createTreeView('pythonOta.files', { treeDataProvider: this, showCollapseAll: true, canSelectMany: false });
		this.disposables.push(
			this.marks,
			this.view,
			this.changeEmitter,
			registry.onDidChangeRoots(() => this.syncRoots()),
			vscode.workspace.onDidGrantWorkspaceTrust(() => this.changeEmitter.fire(undefined)),
		);
		this.syncRoots();
	}

	/** Creates the nodes of new roots and drops those of roots that are gone. */
	private syncRoots(): void {
		const live = new Set(this.registry.all);
		for (const [controller, nodes] of this.nodes) {
			if (!live.has(controller)) {
				this.dropRoot(nodes);
				this.nodes.delete(controller);
			}
		}
		for (const controller of this.registry.all) {
			if (!this.nodes.has(controller)) {
				this.nodes.set(controller, this.createRoot(controller));
			}
		}
		this.marks.prune();
		this.changeEmitter.fire(undefined);
	}

	private createRoot(controller: RootController): RootNodes {
		const root = controller.root;
		const pattern = new vscode.RelativePattern(controller.rootUri, '{deposit,main}/**');
		const watcher = vscode.workspace.createFileSystemWatcher(pattern, false, false, false);
		const nodes: RootNodes = {
			root: { type: 'root', controller, root },
			deposit: { type: 'section', controller, root, section: 'deposit' },
			main: { type: 'section', controller, root, section: 'main' },
			watcher,
			unsubscribe: controller.onDidChange((change) => this.schedule(nodes, change)),
			pending: new Set(),
			timer: undefined,
		};
		const onFile = (uri: vscode.Uri): void => {
			const located = this.marks.locate(uri);
			if (located?.controller === controller) {
				// A program that keeps writing files in main/ must not keep the tree busy.
				this.schedule(nodes, located.section, located.section === 'main' ? MAIN_REFRESH_DELAY_MS : REFRESH_DELAY_MS);
			}
		};
		watcher.onDidCreate(onFile);
		watcher.onDidDelete(onFile);
		// Of the changes to file contents, only the deletion list's change what the tree shows.
		watcher.onDidChange((uri) => {
			const located = this.marks.locate(uri);
			if (located?.controller === controller && located.section === 'deposit' && located.relative === DELETION_LIST) {
				this.schedule(nodes, 'deposit');
			}
		});
		this.schedule(nodes, 'deposit');
		this.schedule(nodes, 'main');
		return nodes;
	}

	private dropRoot(nodes: RootNodes): void {
		clearTimeout(nodes.timer);
		nodes.watcher.dispose();
		nodes.unsubscribe.dispose();
	}

	private schedule(nodes: RootNodes, change: RootChange, delayMs = REFRESH_DELAY_MS): void {
		nodes.pending.add(change);
		if (nodes.timer === undefined) {
			nodes.timer = setTimeout(() => void this.flush(nodes), delayMs);
		}
	}

	private async flush(nodes: RootNodes): Promise<void> {
		nodes.timer = undefined;
		const changes = new Set(nodes.pending);
		nodes.pending.clear();
		const controller = nodes.root.controller;
		// A stop ends the waiting, and main/ decides whether a deposit entry adds or replaces,
		// so both read the deposit's outlook again.
		if (changes.has('deposit') || changes.has('state') || changes.has('main')) {
			await this.marks.refreshDeposit(controller);
		}
		if (changes.has('main')) {
			await this.marks.refreshMain(controller);
		}
		if (this.nodes.get(controller) !== nodes) {
			return; // the root went away meanwhile
		}
		// The notices and the welcome content depend on the state and on main/<entry>; a
		// root whose deposit and main are both empty shows the welcome content instead.
		const entryMissing = !existsSync(path.join(controller.root, 'main', controller.options.entry));
		const single = this.registry.all.length === 1;
		if (changes.has('state') || changes.has('main') || (single && entryMissing)) {
			this.changeEmitter.fire(single ? undefined : nodes.root);
		} else {
			this.changeEmitter.fire(nodes.deposit);
		}
	}

	async getChildren(node?: OtaNode): Promise<OtaNode[]> {
		if (node === undefined) {
			return this.topLevel();
		}
		switch (node.type) {
			case 'root':
				return this.rootChildren(node.controller);
			case 'section':
				return this.listFolder(node, vscode.Uri.joinPath(node.controller.rootUri, node.section), '');
			case 'entry':
				return node.isFolder ? this.listFolder(node, node.uri, node.relative) : [];
			default:
				return [];
		}
	}

	private async topLevel(): Promise<OtaNode[]> {
		const controllers = this.registry.all;
		let emptyRoot = false;
		let children: OtaNode[] = [];
		if (controllers.length === 1) {
			const controller = controllers[0];
			emptyRoot = !existsSync(path.join(controller.root, 'main', controller.options.entry)) && await isEmptyFolder(vscode.Uri.joinPath(controller.rootUri, 'deposit'));
			children = emptyRoot ? [] : this.rootChildren(controller);
		} else {
			children = controllers.flatMap((controller) => {
				const nodes = this.nodes.get(controller);
				return nodes === undefined ? [] : [nodes.root];
			});
		}
		void vscode.commands.executeCommand('setContext', 'pythonOta.emptyRoot', emptyRoot);
		void vscode.commands.executeCommand('setContext', 'pythonOta.hasFiles', controllers.length > 0 && !emptyRoot);
		void vscode.commands.executeCommand('setContext', 'pythonOta.pythonMissing', controllers.some((controller) => controller.pythonMissing));
		return children;
	}

	private rootChildren(controller: RootController): OtaNode[] {
		const nodes = this.nodes.get(controller);
		if (nodes === undefined) {
			return [];
		}
		const notices: OtaNode[] = [];
		const add = (notice: Notice): void => void notices.push({ type: 'notice', controller, root: controller.root, notice });
		if (!vscode.workspace.isTrusted) {
			add('untrusted');
		}
		if (controller.pythonMissing) {
			add('pythonMissing');
		}
		if (!existsSync(path.join(controller.root, 'main', controller.options.entry))) {
			add('entryMissing');
		}
		return [...notices, nodes.deposit, nodes.main];
	}

	private async listFolder(parent: OtaNode & { controller: RootController; section: Section }, folder: vscode.Uri, relative: string): Promise<OtaNode[]> {
		let entries: [string, vscode.FileType][];
		try {
			entries = await vscode.workspace.fs.readDirectory(folder);
		} catch {
			return [];
		}
		// A symbolic link in the deposit is rejected, not followed, so it shows as a leaf there.
		const isFolder = (type: vscode.FileType): boolean =>
			(type & vscode.FileType.Directory) !== 0 && !(parent.section === 'deposit' && (type & vscode.FileType.SymbolicLink) !== 0);
		entries.sort(([nameA, typeA], [nameB, typeB]) => Number(isFolder(typeB)) - Number(isFolder(typeA)) || collator.compare(nameA, nameB));
		const listed = entries.slice(0, MAX_CHILDREN).map(([name, type]): OtaNode => ({
			type: 'entry',
			controller: parent.controller,
			root: parent.controller.root,
			section: parent.section,
			uri: vscode.Uri.joinPath(folder, name),
			relative: relative === '' ? name : `${relative}/${name}`,
			isFolder: isFolder(type),
			parent,
		}));
		if (entries.length > MAX_CHILDREN) {
			listed.push({ type: 'more', folder, hidden: entries.length - MAX_CHILDREN, parent });
		}
		return listed;
	}

	getParent(node: OtaNode): OtaNode | undefined {
		switch (node.type) {
			case 'entry':
			case 'more':
				return node.parent;
			case 'section':
			case 'notice':
				return this.registry.all.length > 1 ? this.nodes.get(node.controller)?.root : undefined;
			default:
				return undefined;
		}
	}

	getTreeItem(node: OtaNode): vscode.TreeItem {
		switch (node.type) {
			case 'root':
				return this.rootItem(node.controller);
			case 'section':
				return this.sectionItem(node.controller, node.section);
			case 'entry':
				return this.entryItem(node);
			case 'notice':
				return noticeItem(node.notice, node.controller);
			case 'more': {
				const item = new vscode.TreeItem(t('{0} more entries, not shown here', node.hidden), vscode.TreeItemCollapsibleState.None);
				item.iconPath = new vscode.ThemeIcon('ellipsis');
				item.tooltip = t('This folder has more than {0} entries. The Explorer view shows them all.', MAX_CHILDREN);
				item.command = { command: 'revealInExplorer', title: t('Reveal in Explorer View'), arguments: [node.folder] };
				item.contextValue = 'more';
				return item;
			}
		}
	}

	private rootItem(controller: RootController): vscode.TreeItem {
		const item = new vscode.TreeItem(controller.name, vscode.TreeItemCollapsibleState.Expanded);
		item.id = `root|${controller.rootUri.toString()}`;
		item.description = describeState(controller.state, t);
		item.tooltip = controller.root;
		item.iconPath = new vscode.ThemeIcon(STATE_ICONS[controller.state]);
		item.contextValue = `root.${controller.state === 'stopped' ? 'stopped' : 'supervising'}`;
		return item;
	}

	private sectionItem(controller: RootController, section: Section): vscode.TreeItem {
		const uri = vscode.Uri.joinPath(controller.rootUri, section);
		const item = new vscode.TreeItem(section === 'deposit' ? t('Deposit') : t('Main'), vscode.TreeItemCollapsibleState.Expanded);
		item.id = `${section}|${uri.toString()}`;
		item.iconPath = new vscode.ThemeIcon(section === 'deposit' ? 'inbox' : 'package');
		if (section === 'deposit') {
			const summary = this.marks.depositSummary(controller);
			const parts = [
				summary.add > 0 ? t('{0} to add', summary.add) : undefined,
				summary.replace > 0 ? t('{0} to replace', summary.replace) : undefined,
				summary.waiting > 0 ? t('{0} settling', summary.waiting) : undefined,
				summary.rejected ? t('rejected') : undefined,
			].filter((part) => part !== undefined);
			item.description = parts.join(', ');
			item.tooltip = t('{0}\nFiles put here move into main/ once the upload has settled.', uri.fsPath);
		} else {
			const updatedAt = this.marks.lastUpdateTime(controller);
			item.description = updatedAt === undefined ? '' : t('updated {0}', shortTime(new Date(updatedAt)));
			item.tooltip = t('{0}\nThe running program. Updates add and replace files here; U marks what the last update changed.', uri.fsPath);
		}
		item.contextValue = `section.${section}`;
		return item;
	}

	private entryItem(node: EntryNode): vscode.TreeItem {
		const item = new vscode.TreeItem(node.uri, node.isFolder ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
		item.id = `${node.section}|${node.uri.toString()}`;
		// The hover shows the path and the decoration's sentence; screen readers get the sentence
		// from the accessible label, because they do not read decorations.
		let markName = '';
		let sentence: string | undefined;
		if (node.section === 'deposit') {
			const mark = this.marks.depositMark(node.controller, node.relative);
			if (mark !== undefined) {
				const words = describeDepositMark(mark);
				markName = `.${mark.kind}`;
				sentence = words.long;
				if (mark.kind === 'rejected' || mark.kind === 'waiting') {
					item.description = words.short;
				}
			} else if (node.controller.ignores(node.relative, node.isFolder)) {
				markName = '.ignored';
				item.description = t('ignored');
				sentence = t('Ignored: updates never move this entry.');
			}
		} else {
			const mark = this.marks.mainMark(node.controller, node.relative);
			if (mark !== undefined) {
				markName = `.${mark}`;
				sentence = describeMainMark(mark);
			}
		}
		if (sentence !== undefined) {
			item.accessibilityInformation = { label: `${path.basename(node.uri.fsPath)}, ${sentence}` };
		}
		item.contextValue = `${node.section}.${node.isFolder ? 'folder' : 'file'}${markName}`;
		if (!node.isFolder) {
			item.command = { command: 'vscode.open', title: t('Open'), arguments: [node.uri] };
		}
		return item;
	}

	dispose(): void {
		for (const nodes of this.nodes.values()) {
			this.dropRoot(nodes);
		}
		this.nodes.clear();
		for (const disposable of this.disposables) {
			disposable.dispose();
		}
	}
}

function noticeItem(notice: Notice, controller: RootController): vscode.TreeItem {
	const texts: Record<Notice, { label: string; tooltip: string; command: vscode.Command; icon: string }> = {
		untrusted: {
			label: t('Restricted Mode: nothing runs or moves'),
			tooltip: t('Running main.py executes this workspace\'s code, so the program neither starts nor updates until you trust the workspace.'),
			command: { command: 'workbench.trust.manage', title: t('Manage Workspace Trust') },
			icon: 'shield',
		},
		pythonMissing: {
			label: t('No Python interpreter found'),
			tooltip: t('Select the interpreter that runs main.py.'),
			command: { command: 'pythonOta.selectInterpreter', title: t('Select Interpreter'), arguments: [controller.root] },
			icon: 'warning',
		},
		entryMissing: {
			label: t('main/{0} does not exist yet', controller.options.entry),
			tooltip: t('Put {0} into deposit/: once the upload has settled it moves into main/ and the program starts.', controller.options.entry),
			command: { command: 'pythonOta.openDeposit', title: t('Open Deposit Folder'), arguments: [controller.root] },
			icon: 'info',
		},
	};
	const text = texts[notice];
	const item = new vscode.TreeItem(text.label, vscode.TreeItemCollapsibleState.None);
	item.tooltip = text.tooltip;
	item.command = text.command;
	item.iconPath = new vscode.ThemeIcon(text.icon);
	item.contextValue = `notice.${notice}`;
	return item;
}

/** Formats a time of today as the time alone, and any other as date and time. */
function shortTime(date: Date): string {
	return date.toDateString() === new Date().toDateString() ? date.toLocaleTimeString() : date.toLocaleString();
}

async function isEmptyFolder(folder: vscode.Uri): Promise<boolean> {
	try {
		return (await vscode.workspace.fs.readDirectory(folder)).length === 0;
	} catch {
		return true;
	}
}
