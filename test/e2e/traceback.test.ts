// End-to-end test of the traceback links in real VS Code (code-server and headless chromium):
// a program that crashes on start, its traceback in the Output panel, and a Ctrl+click on a
// frame that opens the file at that line.
//
// Needs `node scripts/setup-e2e.mjs` and `npm run package` first; support.ts lists the
// environment variables that change what a run keeps and writes.

import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';

import { waitFor, type Workbench } from './harness';
import { createWorkspace, OUTPUT_CHANNEL, removeWorkspace, vsixPath, withWorkbench } from './support';

// The program fails five times within the minimum uptime, with restart delays of 1, 2, 4 and
// 8 s, before the status bar shows "crashed". The deadline leaves room for a slow machine.
const CRASHED_TIMEOUT_MS = 60_000;
// A link appears once the link provider has run on the changed Output document, which VS Code
// schedules after a short delay. Opening the file takes well under a second.
const LINK_TIMEOUT_MS = 15_000;
const TEST_TIMEOUT_MS = 180_000;

// The module raises on import, at line 5 of sensor.py.
const SENSOR_LINE = 5;
const SENSOR_SOURCE = [
  '"""Reads the sensor when it is imported."""',
  '',
  '',
  'def read_sensor():',
  '    raise RuntimeError("sensor not connected")',
  '',
  '',
  'read_sensor()',
  '',
].join('\n');
// A frame line of a file that does not exist, printed before the crash, which must get no link.
const MISSING_FILE = '/nonexistent/ota-e2e/ghost.py';
const MAIN_SOURCE = [
  'import sys',
  '',
  `print('  File "${MISSING_FILE}", line 3, in ghost', file=sys.stderr, flush=True)`,
  'import sensor',
  '',
].join('\n');

const OUTPUT_LINES = '.part.panel .view-lines .view-line';

/** Returns a locator of the last rendered Output line that contains `text`. */
function outputLine(workbench: Workbench, text: string) {
  return workbench.page.locator(OUTPUT_LINES).filter({ hasText: text }).last();
}

test('traceback link opens the frame', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  // A space, '#', '%' and Cyrillic letters in the path check that the link's file URI is encoded.
  const workspace = await createWorkspace('trace #1 %41 датчик');
  const mainDir = path.join(workspace, 'main');
  await fs.writeFile(path.join(mainDir, 'main.py'), MAIN_SOURCE);
  await fs.writeFile(path.join(mainDir, 'sensor.py'), SENSOR_SOURCE);
  // The Output panel wraps long lines, so the frame is found by the end of its line.
  const frameEnd = `line ${SENSOR_LINE}, in read_sensor`;

  try {
    await withWorkbench(t, { folder: workspace, vsixPaths: [vsixPath()] }, async (workbench) => {
      const recorder = await workbench.recordStatusBar(/OTA: \w+/);
      await workbench.runCommand('Python OTA: Start');
      await workbench.openOutputChannel(OUTPUT_CHANNEL);
      // Once the program has crashed for good, the Output panel stops moving.
      await recorder.waitForSequence([/OTA: crashed/], { timeoutMs: CRASHED_TIMEOUT_MS });
      // A notification toast could cover the end of the Output panel, and a maximized panel
      // shows the whole last traceback.
      await workbench.runCommand('Notifications: Clear All Notifications');
      await workbench.runCommand('View: Toggle Maximized Panel');
      await workbench.waitForOutputLine(frameEnd);

      // The link covers the whole reference, so the word "line" after the file name, where
      // VS Code's own link for workspace paths cannot be, is a link too. Monaco renders the
      // link in several spans, one per token.
      const line = outputLine(workbench, frameEnd);
      const linkPart = line.locator('.detected-link', { hasText: /line/ });
      await linkPart.first().waitFor({ state: 'visible', timeout: LINK_TIMEOUT_MS }).catch(async (error: Error) => {
        const html = await line.innerHTML().catch(() => '(line not rendered)');
        throw new Error(`No link on "line ${SENSOR_LINE}" of the frame line: ${error.message}\nRendered line: ${html}`);
      });

      // Links are computed for the whole document at once, so the missing file's line, printed
      // before the traceback, has been checked by now.
      const missingLine = outputLine(workbench, 'line 3, in ghost');
      await missingLine.waitFor({ state: 'visible' });
      assert.equal(
        await missingLine.locator('.detected-link').count(),
        0,
        `a reference to ${MISSING_FILE}, which does not exist, should not be a link`,
      );

      await linkPart.first().click({ modifiers: ['Control'] });

      const tab = workbench.page.locator('.tabs-container .tab.active', { hasText: 'sensor.py' });
      await tab.waitFor({ state: 'visible', timeout: LINK_TIMEOUT_MS });
      const cursor = await workbench.statusBarText(new RegExp(`^Ln ${SENSOR_LINE}, Col \\d+`), { timeoutMs: LINK_TIMEOUT_MS });
      t.diagnostic(`Cursor after the click: ${cursor}`);
      const editorText = await waitFor('the editor of sensor.py to show its text', async () => {
        const text = await workbench.page.locator('.part.editor .monaco-editor .view-lines').first().innerText().catch(() => '');
        return text.includes('read_sensor') ? text : undefined;
      }, { timeoutMs: LINK_TIMEOUT_MS });
      assert.match(editorText.replace(/\u00a0/g, ' '), /raise RuntimeError\("sensor not connected"\)/);
      // The breadcrumbs show the path below the workspace folder, so a wrongly encoded URI
      // (one that names another file) fails here even if it opened.
      const breadcrumbs = await waitFor('breadcrumbs that name main/sensor.py', async () => {
        const text = await workbench.page.locator('.part.editor .breadcrumbs-control').first().innerText().catch(() => '');
        return /main\W+sensor\.py/.test(text) ? text : undefined;
      }, { timeoutMs: LINK_TIMEOUT_MS });
      t.diagnostic(`Breadcrumbs: ${JSON.stringify(breadcrumbs)}`);

      // The crash's innermost frame in main/ is in the Problems panel, with the exception.
      await workbench.runCommand('Problems: Focus on Problems View');
      const problem = await waitFor('the crash in the Problems panel', async () => {
        const rows = await workbench.page.locator('.markers-panel .monaco-list-row').allInnerTexts().catch(() => []);
        return rows.find((row) => row.includes('RuntimeError: sensor not connected'));
      }, { timeoutMs: LINK_TIMEOUT_MS });
      assert.match(problem.replace(/\s+/g, ' '), new RegExp(`\\[Ln ${SENSOR_LINE}, Col 1\\]`), 'the problem points at the raising line');
    });
  } finally {
    await removeWorkspace(workspace);
  }
});

test('rolled-back crash stays in Problems', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  // A short minimum uptime, so that the restored version soon counts as a good start.
  const minUptimeMs = 2_000;
  const workspace = await createWorkspace('rollback', { 'pythonOta.minUptime': minUptimeMs });
  const broken = [
    'import time',
    '',
    '',
    'raise RuntimeError("version 2 is broken")',
    '',
  ].join('\n');
  try {
    await withWorkbench(t, { folder: workspace, vsixPaths: [vsixPath()] }, async (workbench) => {
      await workbench.runCommand('Python OTA: Start');
      await workbench.openOutputChannel(OUTPUT_CHANNEL);
      await workbench.waitForOutputLine(/\[v1\]/, { timeoutMs: CRASHED_TIMEOUT_MS });

      await fs.writeFile(path.join(workspace, 'deposit', 'main.py'), broken);
      await workbench.waitForOutputLine(/rolled back/, { timeoutMs: CRASHED_TIMEOUT_MS });
      // The restored version 1 prints every 2 s; its second line comes after the minimum uptime.
      const restoredAt = Date.now();
      await waitFor('version 1 running past the minimum uptime', async () =>
        Date.now() - restoredAt > minUptimeMs + 1_000 && (await workbench.outputVisibleLines()).some((line) => /\[v1\]/.test(line)) ? true : undefined, {
        timeoutMs: CRASHED_TIMEOUT_MS,
      });

      await workbench.runCommand('Notifications: Clear All Notifications');
      await workbench.runCommand('Problems: Focus on Problems View');
      const problem = await waitFor('the rolled-back crash in the Problems panel', async () => {
        const rows = await workbench.page.locator('.markers-panel .monaco-list-row').allInnerTexts().catch(() => []);
        const index = rows.findIndex((row) => row.includes('RuntimeError: version 2 is broken'));
        return index > 0 ? rows.slice(index - 1, index + 1).join(' ') : undefined;
      }, { timeoutMs: LINK_TIMEOUT_MS });
      t.diagnostic(`Problems: ${problem}`);
      // The file row above the problem names the file and its folder: the rejected copy, not main/.
      assert.match(problem, /main\.py\s*rejected\//, 'the problem points at the rejected copy of main.py');
    });
  } finally {
    await removeWorkspace(workspace);
  }
});
