import * as vscode from 'vscode';
import { registerCommands } from './extension/commands';
import { OutputBatcher } from './extension/outputBatcher';
import { RootRegistry } from './extension/rootRegistry';

/** Time the program gets to exit after the stop signal when the editor shuts down; VS Code
 * waits about 5 s for `deactivate`, and SIGKILL plus reaping must fit in what is left. */
const DEACTIVATE_GRACE_MS = 2000;

let registry: RootRegistry | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
	const channel = vscode.window.createOutputChannel(vscode.l10n.t('Python OTA Update'), { log: true });
	const output = new OutputBatcher(channel, (count) => vscode.l10n.t('{0} lines of output not shown here to keep the editor responsive; the log file has them all.', count));
	registry = new RootRegistry(output, channel);
	context.subscriptions.push(channel, output);
	registerCommands(context, registry, channel);
	context.subscriptions.push(vscode.workspace.onDidGrantWorkspaceTrust(() => void registry?.autoStartAll()));
	// If the extension host exits without calling deactivate, SIGKILL the programs'
	// trees on the way out rather than leave them running unsupervised.
	// NOTE: a host ended by an unhandled SIGKILL or SIGTERM never gets here.
	const killOnExit = (): void => registry?.killNow();
	process.on('exit', killOnExit);
	context.subscriptions.push({ dispose: () => process.off('exit', killOnExit) });
	await registry.refresh();
}

export async function deactivate(): Promise<void> {
	await registry?.dispose(DEACTIVATE_GRACE_MS);
	registry = undefined;
}
