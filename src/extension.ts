import * as vscode from 'vscode';
import { registerCommands } from './extension/commands';
import { Interpreters } from './extension/interpreter';
import { OutputBatcher } from './extension/outputBatcher';
import { RootRegistry } from './extension/rootRegistry';
import { registerTracebackLinks } from './extension/tracebackLinks';
import { OtaTree } from './extension/tree/otaTree';

/** Time the program gets to exit after the stop signal when the editor shuts down; VS Code
 * waits about 5 s for `deactivate`, and SIGKILL plus reaping must fit in what is left. */
const DEACTIVATE_GRACE_MS = 2000;

let registry: RootRegistry | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
	const channel = vscode.window.createOutputChannel(vscode.l10n.t('Python OTA Update'), { log: true });
	const output = new OutputBatcher(channel, (count) => vscode.l10n.t('{0} lines of output not shown here to keep the editor responsive; the log file has them all.', count));
	const interpreters = new Interpreters((message) => channel.warn(`[interpreter] ${message}`));
	registry = new RootRegistry(output, channel, interpreters);
	context.subscriptions.push(channel, output, interpreters);
	registerCommands(context, registry, channel);
	context.subscriptions.push(new OtaTree(registry));
	registerTracebackLinks(context);
	context.subscriptions.push(vscode.workspace.onDidGrantWorkspaceTrust(() => void registry?.autoStartAll()));
	registerHostExitHandlers(context);
	await registry.refresh();
}

/**
 * Stops the programs when the extension host ends without calling `deactivate`: a normal
 * exit sends SIGKILL to their trees, and SIGTERM or SIGHUP to the host (the server being
 * stopped) first passes the stop signal on, then lets the host end as it would have.
 * NOTE: a host ended by SIGKILL leaves the program running; the next start stops it.
 */
function registerHostExitHandlers(context: vscode.ExtensionContext): void {
	const killOnExit = (): void => registry?.killNow();
	const onTermination = (signal: NodeJS.Signals): void => {
		registry?.signalNow();
		process.off(signal, onTermination);
		if (process.listenerCount(signal) === 0) {
			process.kill(process.pid, signal); // the default action: end the host
		}
	};
	process.on('exit', killOnExit);
	process.on('SIGTERM', onTermination);
	process.on('SIGHUP', onTermination);
	context.subscriptions.push({
		dispose: () => {
			process.off('exit', killOnExit);
			process.off('SIGTERM', onTermination);
			process.off('SIGHUP', onTermination);
		},
	});
}

export async function deactivate(): Promise<void> {
	await registry?.dispose(DEACTIVATE_GRACE_MS);
	registry = undefined;
}
