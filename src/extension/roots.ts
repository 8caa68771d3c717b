import * as vscode from 'vscode';
import { looksLikeOtaRoot } from '../core/layout';
import { OptionsError } from '../core/options';
import { readFolderSettings, settingName } from './configuration';
import type { RootInfo } from './rootController';

export interface RootProblem {
	folder: vscode.WorkspaceFolder;
	message: string;
}

export function describeOptionsError(error: OptionsError, folderName: string): string {
	return vscode.l10n.t('Invalid setting {0} in {1}: {2} is not {3}. Fix it in the settings.', settingName(error.key), folderName, JSON.stringify(error.value), error.expected);
}

/** Absolute OTA root of a workspace folder, from `pythonOta.root` (relative to the folder). */
export function rootOf(folder: vscode.WorkspaceFolder, relativeRoot: string): vscode.Uri {
	return relativeRoot === '' ? folder.uri : vscode.Uri.joinPath(folder.uri, relativeRoot);
}

/**
 * Finds the OTA roots of the open workspace: each folder whose configured root (or the
 * folder itself) has `deposit/` or `main/<entry>`, and each folder whose `pythonOta.root`
 * is set. Folders with invalid settings are reported, not skipped silently.
 */
export function findRoots(): { roots: RootInfo[]; problems: RootProblem[] } {
	const roots: RootInfo[] = [];
	const problems: RootProblem[] = [];
	for (const folder of vscode.workspace.workspaceFolders ?? []) {
		if (folder.uri.scheme !== 'file') {
			continue;
		}
		try {
			const settings = readFolderSettings(folder);
			const root = rootOf(folder, settings.root).fsPath;
			if (settings.rootConfigured || looksLikeOtaRoot(root, settings.options.entry)) {
				roots.push({ folder, root, options: settings.options });
			}
		} catch (error) {
			if (!(error instanceof OptionsError)) {
				throw error;
			}
			problems.push({ folder, message: describeOptionsError(error, folder.name) });
		}
	}
	return { roots, problems };
}
