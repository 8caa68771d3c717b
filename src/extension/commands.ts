import * as vscode from 'vscode';
import { describeState } from '../core/describe';
import { ensureLayout, layoutOf, LayoutError } from '../core/layout';
import { readFolderSettings } from './configuration';
import { selectInterpreter } from './interpreter';
import type { Journal } from '../core/transaction';
import type { RootController } from './rootController';
import type { RootRegistry } from './rootRegistry';
import { rootOf } from './roots';
import { registerTreeCommands } from './tree/treeCommands';

const t = vscode.l10n.t;

/** Running the program executes the workspace's code, so it waits for workspace trust. */
async function requireTrust(): Promise<boolean> {
	if (vscode.workspace.isTrusted) {
		return true;
	}
	const manage = t('Manage Workspace Trust');
	const choice = await vscode.window.showWarningMessage(
		t('Python OTA Update runs and updates main.py, which executes this workspace\'s code, so it does nothing in an untrusted workspace. Trust the workspace to use it.'),
		manage,
	);
	if (choice === manage) {
		await vscode.commands.executeCommand('workbench.trust.manage');
	}
	return false;
}

/**
 * Picks the root a command acts on: the one whose path the status-bar item passes, the
 * only one, or the one the user selects.
 */
async function pickRoot(registry: RootRegistry, argument: unknown, prefer?: (controller: RootController) => boolean): Promise<RootController | undefined> {
	const roots = registry.all;
	// The status bar passes the root's path; tree nodes carry it in `root`.
	const rootPath = typeof argument === 'object' && argument !== null && typeof (argument as { root?: unknown }).root === 'string'
		? (argument as { root: string }).root
		: argument;
	if (typeof rootPath === 'string') {
		const match = roots.find((controller) => controller.root === rootPath);
		if (match !== undefined) {
			return match;
		}
	}
	if (roots.length === 1) {
		return roots[0];
	}
	if (roots.length === 0) {
		const initialize = t('Initialize OTA Folder');
		const choice = await vscode.window.showInformationMessage(
			t('No OTA folder is open: a workspace folder needs deposit/ or main/main.py, or the pythonOta.root setting.'),
			initialize,
		);
		if (choice === initialize) {
			await vscode.commands.executeCommand('pythonOta.initialize');
		}
		return undefined;
	}
	// When one root suits the command (the only running one, for Stop), it needs no question.
	const suitable = prefer === undefined ? roots : roots.filter(prefer);
	if (suitable.length === 1) {
		return suitable[0];
	}
	const candidates = suitable.length > 0 ? suitable : roots;
	const picked = await vscode.window.showQuickPick(
		candidates.map((controller) => ({ label: controller.name, description: describeState(controller.state, t), detail: controller.root, controller })),
		{ placeHolder: t('Select the OTA folder') },
	);
	return picked?.controller;
}

/** Asks which workspace folder to initialize, saying which ones are OTA folders already. */
async function pickFolderToInitialize(registry: RootRegistry, folders: readonly vscode.WorkspaceFolder[]): Promise<vscode.WorkspaceFolder | undefined> {
	const items = folders.map((folder) => {
		const initialized = registry.all.some((controller) => controller.folder.uri.toString() === folder.uri.toString());
		return { label: folder.name, description: initialized ? t('already an OTA folder') : undefined, detail: folder.uri.fsPath, folder, initialized };
	});
	items.sort((a, b) => Number(a.initialized) - Number(b.initialized));
	const picked = await vscode.window.showQuickPick(items, { placeHolder: t('Select the folder to initialize') });
	return picked?.folder;
}

async function initialize(registry: RootRegistry): Promise<void> {
	const folders = vscode.workspace.workspaceFolders ?? [];
	if (folders.length === 0) {
		const open = t('Open Folder');
		if (await vscode.window.showInformationMessage(t('Open a folder first: the OTA folder is created inside it.'), open) === open) {
			await vscode.commands.executeCommand('vscode.openFolder');
		}
		return;
	}
	const folder = folders.length === 1 ? folders[0] : await pickFolderToInitialize(registry, folders);
	if (folder === undefined) {
		return;
	}
	const root = rootOf(folder, readFolderSettings(folder).root);
	try {
		const created = await ensureLayout(layoutOf(root.fsPath));
		await registry.refresh();
		void vscode.window.showInformationMessage(created.length === 0
			? t('{0} already has deposit/, main/ and logs/.', root.fsPath)
			: t('Created deposit/, main/ and logs/ in {0}. Put main.py into deposit/ to deploy it.', root.fsPath));
	} catch (error) {
		if (error instanceof LayoutError) {
			void vscode.window.showErrorMessage(t('{0} exists but is not a folder: rename or remove it, then initialize again.', error.path));
			return;
		}
		throw error;
	}
}

function describeJournal(journal: Journal): vscode.QuickPickItem {
	const counts = {
		added: journal.files.filter((file) => file.action === 'add').length,
		replaced: journal.files.filter((file) => file.action === 'replace').length,
		deleted: journal.deletions.length,
	};
	const statusText: Record<Journal['status'], string> = {
		applying: t('interrupted'),
		applied: t('applied'),
		failed: t('failed and undone'),
		rollingBack: t('rollback interrupted'),
		rolledBack: t('rolled back'),
	};
	return {
		label: new Date(journal.startedAt).toLocaleString(),
		description: `${statusText[journal.status]} · ${t('{0} added, {1} replaced, {2} deleted', counts.added, counts.replaced, counts.deleted)}`,
		detail: [journal.id, journal.note, journal.files.slice(0, 5).map((file) => file.path).join(', ')].filter(Boolean).join(' · '),
	};
}

/**
 * Asks for confirmation and rolls back `journal` together with every later update, or the
 * last applied update when `journal` is undefined.
 */
async function rollBack(controller: RootController, journal: Journal | undefined): Promise<void> {
	const target = journal ?? (await controller.history()).find((candidate) => candidate.status === 'applied');
	if (target === undefined) {
		void vscode.window.showInformationMessage(t('{0} has no applied update to roll back.', controller.name));
		return;
	}
	const label = `${new Date(target.startedAt).toLocaleString()} (${target.id})`;
	const confirm = t('Roll Back');
	const question = journal === undefined
		? t('Roll back the last update of {0}, from {1}? The program restarts with the previous files; the update\'s files move to rejected/.', controller.name, label)
		: t('Roll back the update of {0} and every later update of {1}? The program restarts with the files from before it; the updates\' files move to rejected/.', label, controller.name);
	if (await vscode.window.showWarningMessage(question, { modal: true }, confirm) !== confirm) {
		return;
	}
	try {
		const results = await controller.rollBack(journal === undefined ? undefined : target.id);
		const restored = results.reduce((sum, result) => sum + result.restored.length, 0);
		const removed = results.reduce((sum, result) => sum + result.rejected.length, 0);
		void vscode.window.showInformationMessage(t('Rolled back {0} update(s) of {1}: {2} file(s) restored, {3} moved to rejected/.', results.length, controller.name, restored, removed));
	} catch (error) {
		void vscode.window.showErrorMessage((error as Error).message);
	}
}

async function showHistory(controller: RootController): Promise<void> {
	const journals = await controller.history();
	if (journals.length === 0) {
		void vscode.window.showInformationMessage(t('{0} has no updates in its history yet.', controller.name));
		return;
	}
	const picked = await vscode.window.showQuickPick(
		journals.map((journal) => ({ ...describeJournal(journal), journal })),
		{ placeHolder: t('Updates of {0}, newest first. Select an applied update to roll back to before it.', controller.name), matchOnDetail: true },
	);
	if (picked === undefined) {
		return;
	}
	if (picked.journal.status !== 'applied') {
		void vscode.window.showInformationMessage(t('Update {0} is {1}: only applied updates can be rolled back.', picked.journal.id, picked.description ?? ''));
		return;
	}
	await rollBack(controller, picked.journal);
}

export function registerCommands(context: vscode.ExtensionContext, registry: RootRegistry, channel: vscode.LogOutputChannel): void {
	const withRoot = (action: (controller: RootController) => Promise<unknown>, needsTrust = true, prefer?: (controller: RootController) => boolean) => async (argument?: unknown): Promise<void> => {
		if (needsTrust && !(await requireTrust())) {
			return;
		}
		const controller = await pickRoot(registry, argument, prefer);
		if (controller !== undefined) {
			await action(controller);
		}
	};
	context.subscriptions.push(
		vscode.commands.registerCommand('pythonOta.initialize', () => initialize(registry)),
		vscode.commands.registerCommand('pythonOta.start', withRoot((controller) => controller.start(), true, (controller) => controller.state !== 'running')),
		vscode.commands.registerCommand('pythonOta.stop', withRoot((controller) => controller.stop(), true, (controller) => controller.state !== 'stopped')),
		vscode.commands.registerCommand('pythonOta.restart', withRoot((controller) => controller.restart(), true, (controller) => controller.state !== 'stopped')),
		vscode.commands.registerCommand('pythonOta.applyNow', withRoot(async (controller) => {
			const outcome = await controller.applyNow();
			if (outcome === 'nothing') {
				void vscode.window.showInformationMessage(t('{0}: the deposit is empty, nothing to merge.', controller.name));
			}
		})),
		vscode.commands.registerCommand('pythonOta.rollBack', withRoot((controller) => rollBack(controller, undefined))),
		vscode.commands.registerCommand('pythonOta.showHistory', withRoot((controller) => showHistory(controller))),
		vscode.commands.registerCommand('pythonOta.showLog', () => channel.show(true)),
		vscode.commands.registerCommand('pythonOta.selectInterpreter', withRoot((controller) => selectInterpreter(controller.folder), false)),
	);
	registerTreeCommands(context, withRoot);
}
