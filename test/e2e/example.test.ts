// End-to-end tests of the packaged extension in real VS Code (code-server and headless
// chromium), driven through the command palette, the status bar and the Output panel.
//
// Needs `node scripts/setup-e2e.mjs` and `npm run package` first; support.ts lists the
// environment variables that change what a run keeps and writes.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';

import { processesWithCwdUnder, waitFor } from './harness';
import { Sidebar } from './sidebar';
import { copyUpdateInto, createWorkspace, docsImagePath, listFiles, OUTPUT_CHANNEL, removeWorkspace, UPDATE_DIR, vsixPath, withWorkbench } from './support';

// The README's screenshot is rewritten only on request (OTA_UPDATE_DOCS_IMAGES=1).
const SCREENSHOT_PATH = docsImagePath('docs/images/update-in-vscode.png');

// Starting the program includes finding a Python interpreter. An update includes the settle
// time, stopping the old program and starting the new one. Both take a few seconds here, and
// the deadlines leave room for a slow CI machine.
const START_TIMEOUT_MS = 30_000;
const UPDATE_TIMEOUT_MS = 30_000;
const TEST_TIMEOUT_MS = 180_000;
// A restricted workspace must show that nothing happens, which needs a window of time: three
// print intervals of the example program (2 s each), far beyond the 500 ms settle time.
const RESTRICTED_OBSERVATION_MS = 6_000;

test('deposit update restarts the program', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const vsix = vsixPath();
  const workspace = await createWorkspace();
  const mainDir = path.join(workspace, 'main');
  const depositDir = path.join(workspace, 'deposit');
  const messageBefore = await fs.readFile(path.join(mainDir, 'message.txt'), 'utf8');

  try {
    // Dark Modern is desktop VS Code's default theme, so the picture looks like a user's window.
    const userSettings = { 'workbench.colorTheme': 'Default Dark Modern' };
    await withWorkbench(t, { folder: workspace, vsixPaths: [vsix], userSettings }, async (workbench) => {
      const recorder = await workbench.recordStatusBar(/OTA: \w+/);

      await workbench.runCommand('Python OTA: Start');
      await recorder.waitForSequence([/OTA: running/], { timeoutMs: START_TIMEOUT_MS });
      await workbench.openOutputChannel(OUTPUT_CHANNEL);
      await workbench.waitForOutputLine(/\[v1\]/, { timeoutMs: START_TIMEOUT_MS });

      const updateStart = (await recorder.texts()).length;
      const updateFiles = await copyUpdateInto(depositDir);
      const texts = await recorder.waitForSequence([/OTA: updating/, /OTA: running/], {
        from: updateStart,
        timeoutMs: UPDATE_TIMEOUT_MS,
      });
      t.diagnostic(`Status-bar texts: ${JSON.stringify(texts)}`);
      await workbench.waitForOutputLine(/\[v2\]/, { timeoutMs: UPDATE_TIMEOUT_MS });

      for (const file of updateFiles) {
        const expected = await fs.readFile(path.join(UPDATE_DIR, file), 'utf8');
        const merged = await fs.readFile(path.join(mainDir, file), 'utf8').catch(() => undefined);
        assert.equal(merged, expected, `main/${file} should hold the file from the update`);
        assert.ok(!existsSync(path.join(depositDir, file)), `deposit/${file} should be gone after the merge`);
      }
      assert.ok(!existsSync(path.join(depositDir, 'data')), 'the emptied deposit/data/ should be removed');
      assert.equal(
        await fs.readFile(path.join(mainDir, 'message.txt'), 'utf8'),
        messageBefore,
        'main/message.txt, which the update does not contain, should stay as it was',
      );

      await workbench.openFile('main/main.py');
      await workbench.waitForOutputLine(/\[v2\]/);
      await workbench.screenshot(SCREENSHOT_PATH);

      const stopStart = (await recorder.texts()).length;
      await workbench.runCommand('Python OTA: Stop');
      await recorder.waitForSequence([/OTA: stopped/], { from: stopStart, timeoutMs: START_TIMEOUT_MS });
      await waitFor('no process running in main/ after Stop', () => processesWithCwdUnder(mainDir).length === 0, {
        timeoutMs: START_TIMEOUT_MS,
        describeState: () => `Still running: ${JSON.stringify(processesWithCwdUnder(mainDir))}`,
      });
    });
  } finally {
    await removeWorkspace(workspace);
  }
});

test('restricted workspace starts nothing', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const vsix = vsixPath();
  const workspace = await createWorkspace();
  const mainDir = path.join(workspace, 'main');
  const depositDir = path.join(workspace, 'deposit');
  const logsDir = path.join(workspace, 'logs');
  const mainPyBefore = await fs.readFile(path.join(mainDir, 'main.py'), 'utf8');
  // Files waiting in the deposit must not move either.
  const depositFiles = await copyUpdateInto(depositDir);

  try {
    await withWorkbench(t, { folder: workspace, vsixPaths: [vsix], trust: 'restricted' }, async (workbench) => {
      await workbench.statusBarText('Restricted Mode');
      const recorder = await workbench.recordStatusBar(/OTA: \w+/);

      await workbench.runCommand('Python OTA: Start');
      const notice = await waitFor('a notification that names workspace trust', async () =>
        (await workbench.notificationTexts()).find((text) => /trust/i.test(text)),
      );
      t.diagnostic(`Notification: ${JSON.stringify(notice)}`);

      const observeUntil = Date.now() + RESTRICTED_OBSERVATION_MS;
      const runningPrograms = await waitFor(
        `a program in main/ or the end of the ${RESTRICTED_OBSERVATION_MS} ms observation window`,
        () => {
          const found = processesWithCwdUnder(mainDir);
          return found.length > 0 || Date.now() >= observeUntil ? found : undefined;
        },
        { timeoutMs: RESTRICTED_OBSERVATION_MS + 5_000 },
      );
      assert.deepEqual(runningPrograms, [], 'no program should run in main/');

      // The sidebar still lists the files and shows why nothing runs.
      const sidebar = new Sidebar(workbench);
      await sidebar.open();
      await waitFor('the Restricted Mode notice in the sidebar', async () => (await sidebar.rows()).find((row) => row.label.startsWith('Restricted Mode')), {
        describeState: async () => `Sidebar:\n${await sidebar.describe()}`,
      });
      await sidebar.waitForRow('Deposit', 'deposit/main.py', (row) => row.label === 'main.py');

      const texts = await recorder.texts();
      t.diagnostic(`Status-bar texts: ${JSON.stringify(texts)}`);
      for (const state of ['starting', 'running', 'updating']) {
        assert.ok(!texts.some((text) => text.includes(`OTA: ${state}`)), `the status bar should never show "OTA: ${state}"`);
      }

      const logFiles = existsSync(logsDir) ? await listFiles(logsDir) : [];
      for (const file of logFiles) {
        const text = await fs.readFile(path.join(logsDir, file), 'utf8');
        assert.doesNotMatch(text, /\[v[12]\]/, `logs/${file} should contain no line of the program`);
      }

      for (const file of depositFiles) {
        assert.ok(existsSync(path.join(depositDir, file)), `deposit/${file} should stay in the deposit`);
      }
      assert.equal(await fs.readFile(path.join(mainDir, 'main.py'), 'utf8'), mainPyBefore, 'main/main.py should be unchanged');
    });
  } finally {
    await removeWorkspace(workspace);
  }
});
