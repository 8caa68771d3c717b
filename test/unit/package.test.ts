import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, test } from 'node:test';

// The suite runs from the repository's top folder (scripts/test.mjs sets it).
const repo = process.cwd();
const vsix = path.join(repo, 'dist-vsix', 'python-ota-update.vsix');

/** Lists the entry names of a zip file from its central directory. */
function zipEntries(file: string): string[] {
	const data = fs.readFileSync(file);
	const endSignature = 0x06054b50;
	let end = data.length - 22;
	while (end >= 0 && data.readUInt32LE(end) !== endSignature) {
		end--;
	}
	assert.ok(end >= 0, `${file} has no zip end-of-central-directory record`);
	const count = data.readUInt16LE(end + 10);
	let offset = data.readUInt32LE(end + 16);
	const names: string[] = [];
	for (let index = 0; index < count; index++) {
		assert.equal(data.readUInt32LE(offset), 0x02014b50, `bad central directory entry ${index} in ${file}`);
		const nameLength = data.readUInt16LE(offset + 28);
		const extraLength = data.readUInt16LE(offset + 30);
		const commentLength = data.readUInt16LE(offset + 32);
		names.push(data.toString('utf8', offset + 46, offset + 46 + nameLength));
		offset += 46 + nameLength + extraLength + commentLength;
	}
	return names;
}

const ALLOWED = [
	/^\[Content_Types\]\.xml$/,
	/^extension\.vsixmanifest$/,
	/^extension\/dist\/(extension|cli)\.js$/,
	/^extension\/media\//,
	/^extension\/(readme|changelog)\.md$/i,
	/^extension\/LICENSE(\.txt)?$/,
	/^extension\/package\.json$/,
	/^extension\/package\.nls(\.[\w-]+)?\.json$/,
];

before(() => {
	execFileSync('npm', ['run', '--silent', 'package'], { cwd: repo, stdio: 'pipe' });
});

test('vsix holds only allowed files', () => {
	const entries = zipEntries(vsix);
	const unexpected = entries.filter((name) => !ALLOWED.some((pattern) => pattern.test(name)));
	assert.deepEqual(unexpected, [], `unexpected files in ${vsix}`);
});

test('vsix holds both bundles and the manifest', () => {
	const entries = zipEntries(vsix);
	for (const required of ['extension/dist/extension.js', 'extension/dist/cli.js', 'extension/package.json', 'extension/package.nls.json']) {
		assert.ok(entries.includes(required), `${vsix} lacks ${required}`);
	}
});

test('bundled cli runs without node_modules', () => {
	const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'ota-cli-'));
	try {
		fs.copyFileSync(path.join(repo, 'dist', 'cli.js'), path.join(copy, 'cli.js'));
		const output = execFileSync(process.execPath, [path.join(copy, 'cli.js'), 'init', path.join(copy, 'root')], { encoding: 'utf8' });
		assert.match(output, /Created/);
		assert.ok(fs.statSync(path.join(copy, 'root', 'deposit')).isDirectory());
	} finally {
		fs.rmSync(copy, { recursive: true, force: true });
	}
});

test('manifest strings are all in package.nls.json', () => {
	const manifest = fs.readFileSync(path.join(repo, 'package.json'), 'utf8');
	const strings = JSON.parse(fs.readFileSync(path.join(repo, 'package.nls.json'), 'utf8')) as Record<string, string>;
	const keys = [...manifest.matchAll(/"%([^"%]+)%"/g)].map((match) => match[1]);
	assert.ok(keys.length > 10, 'package.json uses no %key% strings');
	const missing = keys.filter((key) => strings[key] === undefined);
	assert.deepEqual(missing, [], 'keys used in package.json but missing from package.nls.json');
});
