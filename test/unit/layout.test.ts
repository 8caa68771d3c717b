import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureLayout, layoutOf, LayoutError, looksLikeOtaRoot, readWorkspaceSettings, SettingsFileError } from '../../src/core/layout';
import { makeTempFolder, writeFiles } from './helpers';

test('layout ensureLayout creates missing folders', async (t) => {
	const root = makeTempFolder(t);
	fs.mkdirSync(path.join(root, 'main'));
	const layout = layoutOf(root);

	const created = await ensureLayout(layout);

	assert.deepEqual(created, [layout.deposit, layout.logs]);
	for (const folder of [layout.deposit, layout.main, layout.logs]) {
		assert.ok(fs.statSync(folder).isDirectory(), `${folder} is not a folder`);
	}
	assert.deepEqual(await ensureLayout(layout), []);
});

test('layout file in the way rejected', async (t) => {
	const root = makeTempFolder(t);
	writeFiles(root, { deposit: 'not a folder' });
	const layout = layoutOf(root);

	await assert.rejects(ensureLayout(layout), (error: unknown) => {
		assert.ok(error instanceof LayoutError, `expected a LayoutError, got ${String(error)}`);
		assert.equal(error.code, 'NOT_A_FOLDER');
		assert.equal(error.path, layout.deposit);
		assert.ok(error.message.includes(layout.deposit));
		return true;
	});
	assert.equal(fs.readFileSync(layout.deposit, 'utf8'), 'not a folder');
});

test('layout looksLikeOtaRoot', (t) => {
	const root = makeTempFolder(t);
	assert.equal(looksLikeOtaRoot(root), false);
	writeFiles(root, { 'main/main.py': '' });
	assert.equal(looksLikeOtaRoot(root), true);
	assert.equal(looksLikeOtaRoot(root, 'app.py'), false);
});

test('layout settings read from JSONC', async (t) => {
	const root = makeTempFolder(t);
	writeFiles(root, {
		'.vscode/settings.json': [
			'{',
			'  // Comments and trailing commas are allowed in VS Code settings.',
			'  "editor.tabSize": 4,',
			'  "pythonOta.entry": "app.py", /* block comment */',
			'  "pythonOta.settleTime": 500,',
			'  "pythonOta.pythonPath": "/usr/bin/python3",',
			'  "pythonOta.ignore": ["*.bak",],',
			'  "pythonOta.logs.maxFiles": 7,',
			'}',
			'',
		].join('\n'),
	});

	assert.deepEqual(await readWorkspaceSettings(root), {
		entry: 'app.py',
		settleTimeMs: 500,
		python: '/usr/bin/python3',
		ignore: ['*.bak'],
		maxLogFiles: 7,
	});
});

test('layout settings file missing', async (t) => {
	const root = makeTempFolder(t);
	assert.deepEqual(await readWorkspaceSettings(root), {});
});

test('layout settings syntax error names file', async (t) => {
	const root = makeTempFolder(t);
	writeFiles(root, { '.vscode/settings.json': '{\n  "pythonOta.entry": "app.py"\n  "pythonOta.settleTime": 500\n}\n' });
	const file = path.join(root, '.vscode', 'settings.json');

	await assert.rejects(readWorkspaceSettings(root), (error: unknown) => {
		assert.ok(error instanceof SettingsFileError, `expected a SettingsFileError, got ${String(error)}`);
		assert.equal(error.path, file);
		assert.ok(error.message.includes(file), `message "${error.message}" does not name ${file}`);
		assert.match(error.message, /line 3/);
		return true;
	});
});

test('layout settings top level not object', async (t) => {
	const root = makeTempFolder(t);
	writeFiles(root, { '.vscode/settings.json': '["pythonOta.entry"]' });

	await assert.rejects(readWorkspaceSettings(root), SettingsFileError);
});
