import * as vscode from 'vscode';
import type { SessionState } from '../core/events';

const t = vscode.l10n.t;

const ICONS: Record<SessionState, string> = {
	stopped: '$(debug-stop)',
	starting: '$(loading~spin)',
	running: '$(play-circle)',
	updating: '$(sync~spin)',
	stopping: '$(loading~spin)',
	exited: '$(circle-outline)',
	restarting: '$(history)',
	crashed: '$(error)',
	waitingForEntry: '$(watch)',
	waitingForProgram: '$(lock)',
};

export interface StatusDetails {
	pid: number | undefined;
	startedAt: Date | undefined;
	python: string | undefined;
	entry: string;
}

/** The status-bar item of one OTA root: its state in words, and a click that restarts. */
export class StatusItem implements vscode.Disposable {
	private readonly item: vscode.StatusBarItem;

	constructor(root: string, private readonly label: string | undefined) {
		this.item = vscode.window.createStatusBarItem(`pythonOta.status.${root}`, vscode.StatusBarAlignment.Left, 50);
		this.item.name = t('Python OTA Update');
		this.item.command = { command: 'pythonOta.restart', title: t('Restart'), arguments: [root] };
		this.item.show();
	}

	render(state: SessionState, stateText: string, details: StatusDetails): void {
		const suffix = this.label === undefined ? '' : ` (${this.label})`;
		this.item.text = `${ICONS[state]} OTA: ${stateText}${suffix}`;
		this.item.backgroundColor = state === 'crashed' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;

		const tooltip = new vscode.MarkdownString(undefined, true);
		tooltip.appendMarkdown(`**${t('Python OTA Update')}**: ${stateText}\n\n`);
		tooltip.appendText(`${details.entry}\n`);
		if (details.pid !== undefined && state === 'running') {
			tooltip.appendText(t('pid {0}', details.pid) + '\n');
		}
		if (details.startedAt !== undefined) {
			tooltip.appendText(t('running since {0}', details.startedAt.toLocaleString()) + '\n');
		}
		if (details.python !== undefined) {
			tooltip.appendText(t('interpreter: {0}', details.python) + '\n');
		}
		tooltip.appendMarkdown(`\n${state === 'stopped' ? t('Click to start the program.') : t('Click to restart the program.')}`);
		this.item.tooltip = tooltip;
		this.item.accessibilityInformation = { label: `OTA: ${stateText}${suffix}` };
	}

	/** Shows that another supervisor (a window or `ota-update run`) owns this root. */
	renderOwnedElsewhere(stateText: string, detail: string): void {
		const suffix = this.label === undefined ? '' : ` (${this.label})`;
		this.item.text = `$(lock) OTA: ${stateText}${suffix}`;
		this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
		this.item.tooltip = detail;
		this.item.accessibilityInformation = { label: `OTA: ${stateText}${suffix}` };
	}

	dispose(): void {
		this.item.dispose();
	}
}
