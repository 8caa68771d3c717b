// End-to-end tests of the interpreter choice in real VS Code (code-server), against a stand-in of
// the Python extension (fixtures/python-stand-in/, id ms-python.python) whose selection a test
// sets through a file in the workspace folder. The real Python extension is not installed.
//
// Needs `node scripts/setup-e2e.mjs` and `npm run package` first, and python3 with the venv
// module. OTA_VSIX selects another .vsix of the extension. OTA_E2E_KEEP=1 keeps the temporary
// folders for inspection.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { waitFor, type Workbench } from './harness';
import { packagePythonStandIn, readStandInSelection, writeStandInSelection } from './pythonStandIn';
import { createWorkspace, OUTPUT_CHANNEL, removeWorkspace, vsixPath, withWorkbench } from './support';

const execFileAsync = promisify(execFile);

// The variable that the stand-in adds to the environment and the probe program prints.
const MARK_VARIABLE = 'OTA_STAND_IN_MARK';

// Starting the program includes activating the stand-in and asking it for the interpreter, a
// second or two here. The deadlines leave room for a slow CI machine.
const START_TIMEOUT_MS = 30_000;
const STAND_IN_TIMEOUT_MS = 15_000;
const TEST_TIMEOUT_MS = 180_000;
// How long the command palette gets to list a command before it is opened again. It lists only
// the commands whose `when` clause held when it opened.
const PALETTE_RETRY_MS = 1_000;
// Creating a venv without pip copies no packages and takes well under a second.
const VENV_TIMEOUT_MS = 60_000;

const QUICK_INPUT = '.quick-input-widget';
const QUICK_INPUT_BOX = '.quick-input-widget .quick-input-box input';
const QUICK_INPUT_ROWS = '.quick-input-widget .quick-input-list .monaco-list-row';
const STATUS_BAR = '#workbench\\.parts\\.statusbar';

// Prints the interpreter it runs on and the stand-in's variable every second, so that each run
// leaves a line in the Output panel that names both.
const PROBE_PROGRAM = `"""Prints the interpreter and ${MARK_VARIABLE} every second."""
import os
import signal
import sys
import time

signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
while True:
    print(f"executable={sys.executable} mark={os.environ.get('${MARK_VARIABLE}', '(unset)')}", flush=True)
    time.sleep(1)
`;

let standInDir: string | undefined;
let standInVsix: string;

before(async () => {
  standInDir = await fs.mkdtemp(path.join(os.tmpdir(), 'ota-python-stand-in-'));
  standInVsix = await packagePythonStandIn(standInDir);
});

after(async () => {
  if (standInDir !== undefined) {
    await fs.rm(standInDir, { recursive: true, force: true });
  }
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Matches the probe's line for one interpreter and mark. */
function probeLine(python: string, mark: string): RegExp {
  return new RegExp(`executable=${escapeRegExp(python)} mark=${escapeRegExp(mark)}(\\s|$)`);
}

/** Creates a temporary OTA workspace (see createWorkspace) whose main/main.py is the probe program. */
async function createProbeWorkspace(settings: Record<string, unknown> = {}): Promise<string> {
  const workspace = await createWorkspace('example', settings);
  await fs.writeFile(path.join(workspace, 'main', 'main.py'), PROBE_PROGRAM);
  return workspace;
}

async function readWorkspaceSettings(workspace: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(workspace, '.vscode', 'settings.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    // VS Code may be between truncating and writing the file.
    return undefined;
  }
}

/** Creates a venv beside the workspace without pip (nothing is downloaded) and returns its bin/python. */
async function createVenv(workspace: string): Promise<string> {
  const venv = path.join(path.dirname(workspace), 'venv');
  await execFileAsync('python3', ['-m', 'venv', '--without-pip', venv], { timeout: VENV_TIMEOUT_MS });
  const python = path.join(venv, 'bin', 'python');
  assert.ok(existsSync(python), `python3 -m venv should create ${python}`);
  return python;
}

/** Returns the real executable of python3 on PATH (not a shim or the venv's link). */
async function systemPython(): Promise<string> {
  const { stdout } = await execFileAsync('python3', ['-c', 'import sys; print(sys.executable)']);
  return stdout.trim();
}

/**
 * Runs the command `title` from the command palette, which opens a quick input of its own, and
 * returns once that second quick input shows, for a quick input other than a quick pick. The palette is opened again while the command is
 * missing, because it lists only the commands available when it opened.
 */
async function runCommandWithQuickInput(workbench: Workbench, title: string, timeoutMs = STAND_IN_TIMEOUT_MS): Promise<void> {
  const page = workbench.page;
  const input = page.locator(QUICK_INPUT_BOX);
  const commandRow = quickInputRow(workbench, title);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // The workbench handles keys only when the page has focus, which a click on the status bar gives.
    await page.locator(STATUS_BAR).click({ position: { x: 1, y: 1 } });
    await page.keyboard.press('F1');
    await input.waitFor({ state: 'visible', timeout: timeoutMs });
    await input.fill(`>${title}`);
    const found = await commandRow.waitFor({ state: 'visible', timeout: PALETTE_RETRY_MS }).then(() => true, () => false);
    if (found) {
      break;
    }
    await page.keyboard.press('Escape');
    await page.locator(QUICK_INPUT).waitFor({ state: 'hidden', timeout: timeoutMs });
    if (Date.now() >= deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for "${title}" in the command palette`);
    }
  }
  await commandRow.click();
  await waitFor(
    `the quick input that "${title}" opens`,
    async () => (await input.isVisible()) && (await input.inputValue()) !== `>${title}`,
    { timeoutMs },
  );
}

function quickInputRow(workbench: Workbench, label: string) {
  const exactLabel = new RegExp(`^\\s*${escapeRegExp(label)}\\s*$`);
  return workbench.page
    .locator(QUICK_INPUT_ROWS)
    .filter({ has: workbench.page.locator('.label-name', { hasText: exactLabel }) })
    .first();
}

async function waitForStandInPath(workspace: string, expected: string): Promise<void> {
  await waitFor(`the stand-in's selection file to name ${expected}`, async () => (await readStandInSelection(workspace))?.path === expected, {
    timeoutMs: STAND_IN_TIMEOUT_MS,
    describeState: async () => `Selection file: ${JSON.stringify(await readStandInSelection(workspace))}`,
  });
}

test('Python extension stand-in: program follows selection', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const ourVsix = vsixPath();
  const workspace = await createProbeWorkspace();
  try {
    const venvPython = await createVenv(workspace);
    const otherPython = await systemPython();
    assert.notEqual(otherPython, venvPython, 'the second interpreter should differ from the venv');
    const known = [venvPython, otherPython];
    await writeStandInSelection(workspace, { path: venvPython, env: { [MARK_VARIABLE]: 'first' }, known });

    await withWorkbench(t, { folder: workspace, vsixPaths: [ourVsix, standInVsix] }, async (workbench) => {
      const recorder = await workbench.recordStatusBar(/OTA: \w+/);
      await workbench.runCommand('Python OTA: Start');
      await recorder.waitForSequence([/OTA: running/], { timeoutMs: START_TIMEOUT_MS });
      await workbench.openOutputChannel(OUTPUT_CHANNEL);
      const firstLine = await workbench.waitForOutputLine(probeLine(venvPython, 'first'), { timeoutMs: START_TIMEOUT_MS });
      t.diagnostic(`First run: ${firstLine}`);

      // The stand-in updates its status-bar item after it has fired its change events, so once
      // the item names the new interpreter, the extension has received them.
      await writeStandInSelection(workspace, { path: otherPython, env: { [MARK_VARIABLE]: 'second' }, known });
      await workbench.statusBarText(`Python stand-in: ${otherPython}`, { timeoutMs: STAND_IN_TIMEOUT_MS });
      await workbench.runCommand('Python OTA: Restart');
      const secondLine = await workbench.waitForOutputLine(probeLine(otherPython, 'second'), { timeoutMs: START_TIMEOUT_MS });
      t.diagnostic(`After the new selection and a restart: ${secondLine}`);
    });
  } finally {
    await removeWorkspace(workspace);
  }
});

test('Python extension stand-in: pythonPath setting wins', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const ourVsix = vsixPath();
  const otherPython = await systemPython();
  const workspace = await createProbeWorkspace({ 'pythonOta.pythonPath': otherPython });
  try {
    const venvPython = await createVenv(workspace);
    await writeStandInSelection(workspace, { path: venvPython, env: { [MARK_VARIABLE]: 'from-stand-in' }, known: [venvPython] });

    await withWorkbench(t, { folder: workspace, vsixPaths: [ourVsix, standInVsix] }, async (workbench) => {
      const recorder = await workbench.recordStatusBar(/OTA: \w+/);
      await workbench.runCommand('Python OTA: Start');
      await recorder.waitForSequence([/OTA: running/], { timeoutMs: START_TIMEOUT_MS });
      await workbench.openOutputChannel(OUTPUT_CHANNEL);
      // The stand-in's variables apply whichever interpreter runs, as a .env file does.
      const line = await workbench.waitForOutputLine(probeLine(otherPython, 'from-stand-in'), { timeoutMs: START_TIMEOUT_MS });
      t.diagnostic(`Run: ${line}`);

      const output = await workbench.readOutputText();
      assert.doesNotMatch(output, new RegExp(`executable=${escapeRegExp(venvPython)}`), 'the stand-in\'s venv should never run while pythonOta.pythonPath is set');
    });
  } finally {
    await removeWorkspace(workspace);
  }
});

test('Python extension stand-in: Select Interpreter picker', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const ourVsix = vsixPath();
  const workspace = await createProbeWorkspace();
  try {
    const venvPython = await createVenv(workspace);
    const otherPython = await systemPython();
    await writeStandInSelection(workspace, { path: otherPython, known: [otherPython, venvPython] });

    await withWorkbench(t, { folder: workspace, vsixPaths: [ourVsix, standInVsix] }, async (workbench) => {
      // The stand-in's own command first, so that a failure of the fixture shows as such.
      await workbench.runCommandAndPick('Python: Select Interpreter', venvPython);
      await waitForStandInPath(workspace, venvPython);
      await workbench.statusBarText(`Python stand-in: ${venvPython}`, { timeoutMs: STAND_IN_TIMEOUT_MS });
      t.diagnostic('The stand-in\'s picker selected the venv');

      await workbench.statusBarText(/OTA: \w+/, { timeoutMs: START_TIMEOUT_MS });
      await workbench.runCommandAndPick('Python OTA: Select Interpreter', otherPython);
      await waitForStandInPath(workspace, otherPython);
      assert.equal((await readWorkspaceSettings(workspace))?.['pythonOta.pythonPath'], undefined, 'pythonOta.pythonPath should stay unset');
    });
  } finally {
    await removeWorkspace(workspace);
  }
});

test('Python extension stand-in: activation failure falls back', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const ourVsix = vsixPath();
  const workspace = await createProbeWorkspace();
  try {
    const venvPython = await createVenv(workspace);
    await writeStandInSelection(workspace, { path: venvPython, env: { [MARK_VARIABLE]: 'from-stand-in' }, failActivation: true });

    await withWorkbench(t, { folder: workspace, vsixPaths: [ourVsix, standInVsix] }, async (workbench) => {
      const recorder = await workbench.recordStatusBar(/OTA: \w+/);
      await workbench.runCommand('Python OTA: Start');
      await recorder.waitForSequence([/OTA: running/], { timeoutMs: START_TIMEOUT_MS });
      await workbench.openOutputChannel(OUTPUT_CHANNEL);
      // Without the stand-in, python3 from PATH runs the program, without the stand-in's variable.
      const line = await workbench.waitForOutputLine(/executable=\S+ mark=\(unset\)/, { timeoutMs: START_TIMEOUT_MS });
      t.diagnostic(`Run: ${line}`);
      assert.doesNotMatch(line, new RegExp(escapeRegExp(venvPython)), 'the stand-in\'s venv should not run');

      const restartFrom = (await recorder.texts()).length;
      await workbench.runCommand('Python OTA: Restart');
      await recorder.waitForSequence([/OTA: (stopping|stopped|restarting|starting)/, /OTA: running/], {
        from: restartFrom,
        timeoutMs: START_TIMEOUT_MS,
      });
      const output = await workbench.readOutputText();
      const warnings = output.split('\n').filter((outputLine) => /Python extension failed to activate/.test(outputLine));
      assert.equal(warnings.length, 1, `the failed activation should be logged once over two starts: ${JSON.stringify(warnings)}`);
    });
  } finally {
    await removeWorkspace(workspace);
  }
});

test('no Python extension: Select Interpreter file picker', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const ourVsix = vsixPath();
  const workspace = await createProbeWorkspace();
  try {
    const python = await systemPython();

    await withWorkbench(t, { folder: workspace, vsixPaths: [ourVsix] }, async (workbench) => {
      await workbench.statusBarText(/OTA: \w+/, { timeoutMs: START_TIMEOUT_MS });
      await runCommandWithQuickInput(workbench, 'Python OTA: Select Interpreter');
      // In the browser, VS Code's open dialog is a quick input that takes a path. It ignores
      // Enter while it is still reading the typed path's folder. It may also replace the typed
      // text with its start folder once that is listed. So the path is typed again where needed,
      // and Enter is pressed until the dialog closes.
      const input = workbench.page.locator(QUICK_INPUT_BOX);
      await waitFor(
        'the open dialog to accept the typed path',
        async () => {
          if (!(await input.isVisible())) {
            return true;
          }
          // The dialog may close between the check and these steps. The next check then finds it closed.
          if ((await input.inputValue({ timeout: PALETTE_RETRY_MS }).catch(() => python)) !== python) {
            await input.fill(python, { timeout: PALETTE_RETRY_MS }).catch(() => undefined);
          }
          await input.press('Enter', { timeout: PALETTE_RETRY_MS }).catch(() => undefined);
          return false;
        },
        { timeoutMs: STAND_IN_TIMEOUT_MS, intervalMs: PALETTE_RETRY_MS },
      );

      const settings = await waitFor(
        'pythonOta.pythonPath in .vscode/settings.json',
        async () => {
          const current = await readWorkspaceSettings(workspace);
          return current?.['pythonOta.pythonPath'] !== undefined ? current : undefined;
        },
        { timeoutMs: STAND_IN_TIMEOUT_MS, describeState: async () => `settings.json: ${JSON.stringify(await readWorkspaceSettings(workspace))}` },
      );
      t.diagnostic(`settings.json: ${JSON.stringify(settings)}`);
      assert.equal(settings['pythonOta.pythonPath'], python);
      assert.equal(settings['pythonOta.settleTime'], 500, 'the other settings should stay');
    });
  } finally {
    await removeWorkspace(workspace);
  }
});
