import * as vscode from 'vscode';
import type { RootController } from '../rootController';
import type { EntryNode, OtaNode } from './otaTree';

const t = vscode.l10n.t;

function isEntry(node: unknown): node is EntryNode {
	return typeof node === 'object' && node !== null && (node as OtaNode).type === 'entry';
}

/** The main/ file that a deposit entry will replace. */
function counterpartInMain(node: EntryNode): vscode.Uri {
	return vscode.Uri.joinPath(node.controller.rootUri, 'main', ...node.relative.split('/'));
}

async function compareWithMain(node: unknown): Promise<void> {
	if (!isEntry(node) || node.section !== 'deposit' || node.isFolder) {
		return;
	}
	const name = node.relative;
	await vscode.commands.executeCommand('vscode.diff', counterpartInMain(node), node.uri, t('{0} (main ↔ deposit)', name));
}

/**
 * Moves a deposit entry to the trash after the user confirms. On Linux the freedesktop trash
 * is used (over Remote-SSH that is the device's); elsewhere VS Code's own. When there is no
 * trash, the user may delete the entry for good.
 */
async function removeFromDeposit(node: unknown): Promise<void> {
	if (!isEntry(node) || node.section !== 'deposit') {
		return;
	}
	const remove = t('Move to Trash');
	const question = node.isFolder
		? t('Remove the folder deposit/{0} and everything in it from the deposit? It moves to the trash.', node.relative)
		: t('Remove deposit/{0} from the deposit? It moves to the trash.', node.relative);
	if (await vscode.window.showWarningMessage(question, { modal: true }, remove) !== remove) {
		return;
	}
	try {
		await moveToTrash(node.uri);
	} catch (error) {
		const deleteForGood = t('Delete Permanently');
		const choice = await vscode.window.showWarningMessage(
			t('deposit/{0} could not be moved to the trash ({1}). Delete it permanently?', node.relative, (error as Error).message),
			{ modal: true },
			deleteForGood,
		);
		if (choice === deleteForGood) {
			await vscode.workspace.fs.delete(node.uri, { recursive: true, useTrash: false });
		}
	}
}

async function moveToTrash(uri: vscode.Uri): Promise<void> {
	if (process.platform === 'linux') {
		const { default: trash } = await import('trash');
		await trash(uri.fsPath, { glob: false });
		return;
	}
	await vscode.workspace.fs.delete(uri, { recursive: true, useTrash: true });
}

function revealInExplorer(node: unknown): Thenable<unknown> | undefined {
	return isEntry(node) ? vscode.commands.executeCommand('revealInExplorer', node.uri) : undefined;
}

function revealInOS(node: unknown): Thenable<unknown> | undefined {
	return isEntry(node) ? vscode.commands.executeCommand('revealFileInOS', node.uri) : undefined;
}

/**
 * Shows the deposit folder where files can be dropped into it: the system's file manager on
 * a local desktop, otherwise the Explorer view, which accepts files dragged onto it.
 */
async function openDeposit(controller: RootController): Promise<void> {
	const deposit = vscode.Uri.joinPath(controller.rootUri, 'deposit');
	await vscode.workspace.fs.createDirectory(deposit);
	if (vscode.env.remoteName === undefined && vscode.env.uiKind === vscode.UIKind.Desktop) {
		await vscode.commands.executeCommand('revealFileInOS', deposit);
	} else {
		await vscode.commands.executeCommand('revealInExplorer', deposit);
	}
}

export function registerTreeCommands(
	context: vscode.ExtensionContext,
	withRoot: (action: (controller: RootController) => Promise<unknown>, needsTrust?: boolean) => (argument?: unknown) => Promise<void>,
): void {
	context.subscriptions.push(
		vscode.commands.registerCommand('pythonOta.compareWithMain', compareWithMain),
		vscode.commands.registerCommand('pythonOta.removeFromDeposit', removeFromDeposit),
		vscode.commands.registerCommand('pythonOta.revealInExplorer', revealInExplorer),
		vscode.commands.registerCommand('pythonOta.revealInOS', revealInOS),
		vscode.commands.registerCommand('pythonOta.openDeposit', withRoot(openDeposit, false)),
	);
}
