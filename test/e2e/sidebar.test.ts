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
import { Sidebar } from './sidebar';
import { copyUpdateInto, createWorkspace, docsImagePath, KEEP_TEMP, OUTPUT_CHANNEL, removeWorkspace, vsixPath, withWorkbench, writeSettings } from './support';

// Deadlines for what the tree shows after a change on disk (a watcher event and a short
// redraw delay) and for starting or updating the program; both leave room for a slow machine.
const TREE_TIMEOUT_MS = 15_000;
const PROGRAM_TIMEOUT_MS = 30_000;
const TEST_TIMEOUT_MS = 180_000;

test('sidebar marks deposit files, compares one with main/ and shows what the update changed', { timeout: TEST_TIMEOUT_MS }, async (t) => {
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
      const replacing = await sidebar.waitForRow('Deposit', 'main.py marked R', (row) => row.label === 'main.py' && row.badge === 'R', { timeoutMs: TREE_TIMEOUT_MS });
      assert.match(replacing.ariaLabel, /replaces/, 'the tooltip of a replacing file says so');
      const ignored = await sidebar.waitForRow('Deposit', 'notes.txt.part marked I', (row) => row.label === 'notes.txt.part' && row.badge === 'I');
      assert.equal(ignored.description, 'ignored');
      await sidebar.clickRow('data');
      const adding = await sidebar.waitForRow('Deposit', 'data/extra.txt marked A', (row) => row.label === 'extra.txt' && row.badge === 'A');
      assert.match(adding.ariaLabel, /adds/, 'the tooltip of an added file says so');
      assert.ok(!(await sidebar.section('Main')).some((row) => row.badge !== ''), 'main/ has no marks before any update');

      await sidebar.clickInlineAction('main.py', 'Compare with main/');
      const diffTab = workbench.page.locator('.tabs-container .tab', { hasText: 'main.py (main ↔ deposit)' });
      await diffTab.waitFor({ state: 'visible', timeout: TREE_TIMEOUT_MS });
      const diffEditor = workbench.page.locator('.monaco-diff-editor').first();
      await waitFor('the diff editor to show both versions of main.py', async () => {
        const text = await diffEditor.innerText().catch(() => '');
        return /"v1"/.test(text) && /"v2"/.test(text);
      }, { timeoutMs: TREE_TIMEOUT_MS });

      await sidebar.screenshot(docsImagePath('media/walkthrough/deposit.png'));
      await sidebar.clickTitleAction('Apply Deposit Now');
      await sidebar.waitForNoRow('Deposit', 'main.py', (row) => row.label === 'main.py', { timeoutMs: PROGRAM_TIMEOUT_MS });
      const replaced = await sidebar.waitForRow('Main', 'main/main.py marked U', (row) => row.label === 'main.py' && row.badge === 'U', { timeoutMs: TREE_TIMEOUT_MS });
      assert.match(replaced.ariaLabel, /Replaced by the last update/);
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

test('welcome content initializes an empty folder, and the first deposit starts the program', { timeout: TEST_TIMEOUT_MS }, async (t) => {
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
