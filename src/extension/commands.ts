import * as vscode from 'vscode';
import { ensureLayout, layoutOf, LayoutError } from '../core/layout';
import { readFolderSettings } from './configuration';
import type { RootController } from './rootController';
import type { RootRegistry } from './rootRegistry';
import { rootOf } from './roots';

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
async function pickRoot(registry: RootRegistry, argument: unknown): Promise<RootController | undefined> {
	const roots = registry.all;
	if (typeof argument === 'string') {
		const match = roots.find((controller) => controller.root === argument);
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
	const picked = await vscode.window.showQuickPick(
		roots.map((controller) => ({ label: controller.name, description: controller.root, controller })),
		{ placeHolder: t('Select the OTA folder') },
	);
	return picked?.controller;
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
	const folder = folders.length === 1
		? folders[0]
		: await vscode.window.showWorkspaceFolderPick({ placeHolder: t('Select the folder to initialize') });
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

export function registerCommands(context: vscode.ExtensionContext, registry: RootRegistry, channel: vscode.LogOutputChannel): void {
	const withRoot = (action: (controller: RootController) => Promise<unknown>) => async (argument?: unknown): Promise<void> => {
		if (!(await requireTrust())) {
			return;
		}
		const controller = await pickRoot(registry, argument);
		if (controller !== undefined) {
			await action(controller);
		}
	};
	context.subscriptions.push(
		vscode.commands.registerCommand('pythonOta.initialize', () => initialize(registry)),
		vscode.commands.registerCommand('pythonOta.start', withRoot((controller) => controller.start())),
		vscode.commands.registerCommand('pythonOta.stop', withRoot((controller) => controller.stop())),
		vscode.commands.registerCommand('pythonOta.restart', withRoot((controller) => controller.restart())),
		vscode.commands.registerCommand('pythonOta.applyNow', withRoot(async (controller) => {
			const outcome = await controller.applyNow();
			if (outcome === 'nothing') {
				void vscode.window.showInformationMessage(t('{0}: the deposit is empty, nothing to merge.', controller.name));
			}
		})),
		vscode.commands.registerCommand('pythonOta.showLog', () => channel.show(true)),
	);
}
