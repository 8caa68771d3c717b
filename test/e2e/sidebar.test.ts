// End-to-end tests of the sidebar in real VS Code (code-server and headless chromium): the
// tree of deposit and main, its marks and actions, and the welcome content of an empty folder.
//
// Needs `node scripts/setup-e2e.mjs` and `npm run package` first; support.ts lists the
// environment variables that change what a run keeps and writes.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';

import { waitFor } from './harness';
import { sameText, Sidebar } from './sidebar';
import { copyUpdateInto, createWorkspace, docsImagePath, KEEP_TEMP, OUTPUT_CHANNEL, removeWorkspace, vsixPath, withWorkbench, writeSettings } from './support';

// Deadlines for the tree to show a change on disk (a watcher event and a short redraw delay)
// and for the program to start or update. Both leave room for a slow machine.
const TREE_TIMEOUT_MS = 15_000;
const PROGRAM_TIMEOUT_MS = 30_000;
const TEST_TIMEOUT_MS = 180_000;

test('sidebar marks, diff and apply', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const workspace = await createWorkspace();
  const depositDir = path.join(workspace, 'deposit');
  try {
    await withWorkbench(t, { folder: workspace, vsixPaths: [vsixPath()] }, async (workbench) => {
      const sidebar = new Sidebar(workbench);
      await sidebar.open();
      await sidebar.waitForRow('Main', 'main/main.py', (row) => row.label === 'main.py', { timeoutMs: TREE_TIMEOUT_MS });
      await sidebar.waitForRow('Main', 'main/message.txt', (row) => row.label === 'message.txt');

      // Supervision is off, so the files stay in the deposit and show what an update would do.
      await copyUpdateInto(depositDir);
      await fs.writeFile(path.join(depositDir, 'notes.txt.part'), 'an upload in progress\n');
      // The badge comes from the decoration provider and the tooltip from the tree item, which
      // redraw one after the other.
      await sidebar.waitForRow('Deposit', 'main.py marked R, with a tooltip that says it replaces', (row) =>
        row.label === 'main.py' && row.badge === 'R' && /replaces/.test(row.ariaLabel), { timeoutMs: TREE_TIMEOUT_MS });
      const ignored = await sidebar.waitForRow('Deposit', 'notes.txt.part marked I', (row) => row.label === 'notes.txt.part' && row.badge === 'I');
      assert.equal(ignored.description, 'ignored');
      await sidebar.clickRow('data');
      await sidebar.waitForRow('Deposit', 'data/extra.txt marked A, with a tooltip that says it adds', (row) =>
        row.label === 'extra.txt' && row.badge === 'A' && /adds/.test(row.ariaLabel));
      assert.ok(!(await sidebar.section('Main')).some((row) => row.badge !== ''), 'main/ has no marks before any update');

      await sidebar.clickInlineAction('main.py', 'Compare with main/');
      const diffTab = workbench.page.locator('.tabs-container .tab', { hasText: 'main.py (main ↔ deposit)' });
      await diffTab.waitFor({ state: 'visible', timeout: TREE_TIMEOUT_MS });
      const diffEditor = workbench.page.locator('.monaco-diff-editor').first();
      await waitFor('the diff editor to show both versions of main.py', async () => {
        const text = await diffEditor.innerText().catch(() => '');
        return /"v1"/.test(text) && /"v2"/.test(text);
      }, { timeoutMs: TREE_TIMEOUT_MS });

      // The upload temporary goes to the trash, after a confirmation, and nowhere else.
      await sidebar.clickInlineAction('notes.txt.part', 'Remove from Deposit');
      await workbench.page.locator('.monaco-dialog-box .monaco-button', { hasText: 'Move to Trash' }).click();
      await sidebar.waitForNoRow('Deposit', 'notes.txt.part', (row) => row.label === 'notes.txt.part', { timeoutMs: TREE_TIMEOUT_MS });
      assert.ok(!existsSync(path.join(depositDir, 'notes.txt.part')), 'deposit/notes.txt.part is removed');
      // The harness gives code-server XDG_DATA_HOME=<temp>/xdg-data, where the freedesktop trash lives.
      const trashed = await trashedCopy(path.join(workbench.server.tempDir, 'xdg-data', 'Trash'), path.join(depositDir, 'notes.txt.part'));
      assert.equal(trashed, 'an upload in progress\n', 'the removed file is in the trash of the server\'s user');

      await sidebar.screenshot(docsImagePath('media/walkthrough/deposit.png'));
      await sidebar.clickTitleAction('Apply Deposit Now');
      await sidebar.waitForNoRow('Deposit', 'main.py', (row) => row.label === 'main.py', { timeoutMs: PROGRAM_TIMEOUT_MS });
      await sidebar.waitForRow('Main', 'main/main.py marked U, replaced by the last update', (row) =>
        row.label === 'main.py' && row.badge === 'U' && /Replaced by the last update/.test(row.ariaLabel), { timeoutMs: TREE_TIMEOUT_MS });
      await sidebar.waitForRow('Main', 'main/data marked', (row) => row.label === 'data');
      const message = (await sidebar.section('Main')).find((row) => row.label === 'message.txt');
      assert.equal(message?.badge, '', 'main/message.txt, which the update did not touch, has no mark');
      assert.ok((await sidebar.section('Deposit')).every((row) => row.label !== 'data'), 'the emptied deposit/data/ is gone from the tree');
      await sidebar.screenshot(docsImagePath('media/walkthrough/updated.png'));
      await workbench.screenshot(docsImagePath('docs/images/sidebar.png'));
    });
  } finally {
    await removeWorkspace(workspace);
  }
});

/**
 * Returns the content of the file that a freedesktop trash keeps for `original`: its `info/`
 * entry records the original path, and `files/` has the file under the same name.
 */
async function trashedCopy(trash: string, original: string): Promise<string | undefined> {
  const infos = await fs.readdir(path.join(trash, 'info')).catch(() => []);
  for (const info of infos) {
    const text = await fs.readFile(path.join(trash, 'info', info), 'utf8');
    const recorded = /^Path=(.*)$/m.exec(text)?.[1];
    if (recorded !== undefined && decodeURIComponent(recorded) === original) {
      return fs.readFile(path.join(trash, 'files', info.replace(/\.trashinfo$/, '')), 'utf8');
    }
  }
  return undefined;
}

test('sidebar welcome initializes empty folder', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'ota-e2e-'));
  const workspace = path.join(parent, 'device');
  await fs.mkdir(workspace);
  await writeSettings(workspace, { 'pythonOta.settleTime': 500 });
  try {
    const viewport = { width: 1100, height: 700 };
    await withWorkbench(t, { folder: workspace, vsixPaths: [vsixPath()], viewport }, async (workbench) => {
      const sidebar = new Sidebar(workbench);
      await sidebar.open();
      const welcome = await waitFor('the welcome content for a folder without an OTA folder', async () => {
        const text = await sidebar.welcomeText();
        return /No OTA folder here yet/.test(text) ? text : undefined;
      }, { timeoutMs: TREE_TIMEOUT_MS });
      assert.match(welcome, /Initialize OTA Folder/);
      await sidebar.screenshot(docsImagePath('media/walkthrough/welcome.png'));

      await sidebar.clickWelcomeButton('Initialize OTA Folder');
      await waitFor('deposit/, main/ and logs/ in the folder', () =>
        ['deposit', 'main', 'logs'].every((name) => existsSync(path.join(workspace, name))), { timeoutMs: TREE_TIMEOUT_MS });
      const noEntry = await waitFor('the welcome content that explains the deposit', async () => {
        const text = await sidebar.welcomeText();
        return /no main\.py yet/.test(text) ? text : undefined;
      }, { timeoutMs: TREE_TIMEOUT_MS });
      assert.match(noEntry, /Open Deposit Folder/);

      await fs.writeFile(path.join(workspace, 'deposit', 'main.py'), [
        'import time',
        'print("hello from the first deployment", flush=True)',
        'while True:',
        '    time.sleep(1)',
        '',
      ].join('\n'));
      await sidebar.waitForRow('Deposit', 'main.py marked A', (row) => row.label === 'main.py' && row.badge === 'A', { timeoutMs: TREE_TIMEOUT_MS });
      await sidebar.waitForTitleAction('Start');
      await sidebar.clickTitleAction('Start');
      await sidebar.waitForRow('Main', 'main/main.py marked U', (row) => row.label === 'main.py' && row.badge === 'U', { timeoutMs: PROGRAM_TIMEOUT_MS });
      await sidebar.waitForNoRow('Deposit', 'main.py', (row) => row.label === 'main.py');
      await workbench.openOutputChannel(OUTPUT_CHANNEL);
      await workbench.waitForOutputLine(/hello from the first deployment/, { timeoutMs: PROGRAM_TIMEOUT_MS });
      await workbench.statusBarText(/OTA: running/, { timeoutMs: PROGRAM_TIMEOUT_MS });
      await sidebar.waitForTitleAction('Stop');
      await workbench.runCommand('Notifications: Clear All Notifications');
      await workbench.screenshot(docsImagePath('media/walkthrough/running.png'));
      await sidebar.clickTitleAction('Stop');
      await workbench.statusBarText(/OTA: stopped/, { timeoutMs: PROGRAM_TIMEOUT_MS });
    });
  } finally {
    if (!KEEP_TEMP) {
      await fs.rm(parent, { recursive: true, force: true });
    }
  }
});

test('sidebar multi-root with odd names', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const plain = await createWorkspace('plain');
  const parent = path.dirname(plain);
  // A decomposed "é" (e + U+0301), as macOS file names have it, beside "#", "%" and Cyrillic.
  const oddName = 'Cafe\u0301 #1 %20 Привет';
  const oddFolder = path.join(parent, oddName);
  const oddRoot = path.join(oddFolder, 'device ota');
  await fs.mkdir(oddFolder);
  await fs.cp(path.join(plain, 'main'), path.join(oddRoot, 'main'), { recursive: true });
  await fs.mkdir(path.join(oddRoot, 'deposit'));
  await writeSettings(oddFolder, { 'pythonOta.root': 'device ota' });
  const workspaceFile = path.join(parent, 'devices.code-workspace');
  await fs.writeFile(workspaceFile, JSON.stringify({ folders: [{ path: plain }, { path: oddFolder }], settings: { 'pythonOta.settleTime': 500 } }, null, 2));
  const oddLabel = `${oddName}/device ota`;
  try {
    await withWorkbench(t, { folder: workspaceFile, vsixPaths: [vsixPath()] }, async (workbench) => {
      const sidebar = new Sidebar(workbench);
      await sidebar.open();
      await sidebar.waitForRow('Main', 'main.py of the plain root', (row) => row.label === 'main.py', { root: 'plain', timeoutMs: TREE_TIMEOUT_MS });
      await sidebar.waitForRow('Main', 'main.py of the oddly named root', (row) => row.label === 'main.py', { root: oddLabel });

      await copyUpdateInto(path.join(oddRoot, 'deposit'));
      await sidebar.waitForRow('Deposit', 'main.py marked R', (row) => row.label === 'main.py' && row.badge === 'R', { root: oddLabel, timeoutMs: TREE_TIMEOUT_MS });
      assert.ok(!(await sidebar.section('Deposit', 'plain')).some((row) => row.label === 'main.py'), 'the plain root\'s deposit stays empty');

      // With two roots, Start shows a quick pick of them.
      await workbench.runCommandAndPick('Python OTA: Start', oddLabel);
      await sidebar.waitForRow('Main', 'main.py marked U after the update', (row) => row.label === 'main.py' && row.badge === 'U', { root: oddLabel, timeoutMs: PROGRAM_TIMEOUT_MS });
      await workbench.openOutputChannel(OUTPUT_CHANNEL);
      await workbench.waitForOutputLine(/\[v2\]/, { timeoutMs: PROGRAM_TIMEOUT_MS });
      const merged = await fs.readFile(path.join(oddRoot, 'main', 'main.py'), 'utf8');
      assert.match(merged, /VERSION = "v2"/, 'the update went into the oddly named root');
      assert.match(await fs.readFile(path.join(plain, 'main', 'main.py'), 'utf8'), /VERSION = "v1"/, 'the plain root is untouched');
      const statusTexts = (await workbench.statusBarItems()).map((item) => item.text.normalize('NFC')).filter((text) => text.startsWith('OTA:'));
      t.diagnostic(`Status bar: ${JSON.stringify(statusTexts)}`);
      assert.ok(statusTexts.some((text) => text.includes('running') && text.includes(oddLabel.normalize('NFC'))), 'the odd root has a running status item');
      assert.ok(statusTexts.some((text) => text.includes('stopped') && text.includes('plain')), 'the plain root has its own, stopped status item');
    });
  } finally {
    await removeWorkspace(plain);
  }
});

test('walkthrough shows its steps and images', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const workspace = await createWorkspace();
  try {
    await withWorkbench(t, { folder: workspace, vsixPaths: [vsixPath()] }, async (workbench) => {
      await workbench.runCommandAndPick('Welcome: Open Walkthrough...', 'Get Started with Python OTA Update');
      const page = workbench.page;
      const steps = page.locator('.gettingStartedContainer .getting-started-step .step-title');
      await waitFor('the walkthrough\'s five steps', async () => (await steps.count()) === 5 ? true : undefined, { timeoutMs: TREE_TIMEOUT_MS });
      const titles = (await steps.allInnerTexts()).map((title) => title.trim());
      assert.deepEqual(titles, ['Create the OTA folder', 'Put main.py into deposit/', 'Start the program', 'Update it over the air', 'Choose the interpreter']);
      // The first step's picture comes from the extension package; a missing file loads as 0 × 0.
      const image = page.locator('.gettingStartedContainer .getting-started-media img').first();
      await waitFor('the first step\'s picture to load', async () =>
        (await image.evaluate((element) => (element as HTMLImageElement).naturalWidth).catch(() => 0)) > 0 ? true : undefined, { timeoutMs: TREE_TIMEOUT_MS });
      await workbench.screenshot(docsImagePath('docs/images/walkthrough.png'));
    });
  } finally {
    await removeWorkspace(workspace);
  }
});

test('sidebar finds folder made outside', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'ota-e2e-'));
  const workspace = path.join(parent, 'device');
  await fs.mkdir(workspace);
  try {
    await withWorkbench(t, { folder: workspace, vsixPaths: [vsixPath()] }, async (workbench) => {
      const sidebar = new Sidebar(workbench);
      await sidebar.open();
      await waitFor('the welcome content for a folder without an OTA folder', async () => /No OTA folder here yet/.test(await sidebar.welcomeText()), { timeoutMs: TREE_TIMEOUT_MS });

      // As a terminal or an upload would make it, without any command of the extension.
      await fs.mkdir(path.join(workspace, 'deposit'));
      await fs.mkdir(path.join(workspace, 'main'));
      await fs.writeFile(path.join(workspace, 'main', 'main.py'), 'print("made outside")\n');
      await sidebar.waitForRow('Main', 'main/main.py', (row) => row.label === 'main.py', { timeoutMs: TREE_TIMEOUT_MS });
      await workbench.statusBarText(/OTA: stopped/, { timeoutMs: TREE_TIMEOUT_MS });
    });
  } finally {
    if (!KEEP_TEMP) {
      await fs.rm(parent, { recursive: true, force: true });
    }
  }
});
