import * as vscode from 'vscode';
import { SETTING_KEYS, SETTINGS_SECTION } from '../core/layout';
import { resolveOptions, type OtaOptions, type RawOptions } from '../core/options';

export interface FolderSettings {
	/** OTA root relative to the workspace folder; '' is the folder itself. */
	root: string;
	/** True when `pythonOta.root` is set explicitly for this folder. */
	rootConfigured: boolean;
	autoStart: boolean;
	options: OtaOptions;
}

/**
 * Reads every `pythonOta.*` setting for one workspace folder into the engine's typed
 * options. Throws `OptionsError` naming the setting when a value is invalid.
 */
export function readFolderSettings(folder: vscode.WorkspaceFolder): FolderSettings {
	const configuration = vscode.workspace.getConfiguration(SETTINGS_SECTION, folder.uri);
	const raw: RawOptions = {};
	for (const [setting, option] of SETTING_KEYS) {
		const value = configuration.get<unknown>(setting);
		if (value !== undefined) {
			raw[option] = value;
		}
	}
	const rootInspection = configuration.inspect<string>('root');
	const configuredRoot = rootInspection?.workspaceFolderValue ?? rootInspection?.workspaceValue ?? rootInspection?.globalValue;
	return {
		root: configuration.get<string>('root', '').trim(),
		rootConfigured: typeof configuredRoot === 'string' && configuredRoot.trim() !== '',
		autoStart: configuration.get<boolean>('autoStart', false),
		options: resolveOptions(raw),
	};
}

/** Setting names, as shown to users, for error messages that name a setting. */
export function settingName(option: keyof OtaOptions): string {
	const setting = SETTING_KEYS.find(([, key]) => key === option)?.[0] ?? option;
	return `${SETTINGS_SECTION}.${setting}`;
}
