import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const CORE = path.resolve(import.meta.dirname, '..', '..', 'src', 'core');

/** Matches `import … from 'vscode'`, `import 'vscode'`, `import('vscode')` and `require('vscode')`. */
const VSCODE_IMPORT = /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)['"]vscode['"]/;

function sourceFiles(folder: string): string[] {
	return fs.readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
		const file = path.join(folder, entry.name);
		if (entry.isDirectory()) {
			return sourceFiles(file);
		}
		return /\.[cm]?[jt]s$/.test(entry.name) ? [file] : [];
	});
}

test('core imports no vscode', () => {
	const files = sourceFiles(CORE);
	assert.ok(files.length >= 10, `expected the engine's sources in ${CORE}, found ${files.length}`);
	for (const file of files) {
		const text = fs.readFileSync(file, 'utf8');
		assert.doesNotMatch(text, VSCODE_IMPORT, `${path.relative(process.cwd(), file)} imports 'vscode'; src/core must stay plain Node.js`);
	}
});

test('core import pattern matches', () => {
	for (const line of [`import * as vscode from 'vscode';`, `import type { Uri } from "vscode";`, `import 'vscode';`, `const v = require('vscode');`, `await import('vscode')`]) {
		assert.match(line, VSCODE_IMPORT, line);
	}
	assert.doesNotMatch(`import { x } from './vscodeAdapter';`, VSCODE_IMPORT);
});
