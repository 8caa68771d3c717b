// What the end-to-end test files share: the package under test, temporary OTA workspaces made
// from example/, and a workbench that is always closed and reports what it saw on failure.
//
// OTA_VSIX selects another .vsix. OTA_E2E_KEEP=1 keeps the temporary workspaces and code-server
// folders for inspection. OTA_UPDATE_DOCS_IMAGES=1 rewrites the pictures in docs/images/ and
// media/walkthrough/; otherwise they go to test-results/, so that a run leaves the tree clean.

import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';

import { openWorkbench, REPO_ROOT, type Workbench, type WorkbenchOptions } from './harness';

export const EXAMPLE_DIR = path.join(REPO_ROOT, 'example');
export const UPDATE_DIR = path.join(EXAMPLE_DIR, 'update');
export const OUTPUT_CHANNEL = 'Python OTA Update';
export const KEEP_TEMP = process.env.OTA_E2E_KEEP === '1';
const RESULTS_DIR = path.join(REPO_ROOT, 'test-results');
const WRITE_DOCS_IMAGES = process.env.OTA_UPDATE_DOCS_IMAGES === '1';

/** Returns the path for a docs picture: its place in the repository on request, else test-results/. */
export function docsImagePath(relativePath: string): string {
  return WRITE_DOCS_IMAGES ? path.join(REPO_ROOT, relativePath) : path.join(RESULTS_DIR, relativePath);
}

export function vsixPath(): string {
  const vsix = process.env.OTA_VSIX
    ? path.resolve(process.env.OTA_VSIX)
    : path.join(REPO_ROOT, 'dist-vsix', 'python-ota-update.vsix');
  if (!existsSync(vsix)) {
    throw new Error(`Extension package not found: ${vsix}. Build it with "npm run package", or set OTA_VSIX to a .vsix file.`);
  }
  return vsix;
}

/**
 * Copies example/ without update/ into `<name>/` of a new temporary folder, with a short settle
 * time so that an update starts half a second after a copy into deposit/.
 */
export async function createWorkspace(name = 'example', settings: Record<string, unknown> = {}): Promise<string> {
  const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'ota-e2e-'));
  const workspace = path.join(parent, name);
  await fs.cp(EXAMPLE_DIR, workspace, { recursive: true, filter: (source) => source !== UPDATE_DIR });
  await fs.mkdir(path.join(workspace, 'deposit'), { recursive: true });
  await writeSettings(workspace, { 'pythonOta.settleTime': 500, ...settings });
  return workspace;
}

export async function writeSettings(folder: string, settings: Record<string, unknown>): Promise<void> {
  await fs.mkdir(path.join(folder, '.vscode'), { recursive: true });
  await fs.writeFile(path.join(folder, '.vscode', 'settings.json'), `${JSON.stringify(settings, null, 2)}\n`);
}

export async function listFiles(root: string, relative = ''): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await fs.readdir(path.join(root, relative), { withFileTypes: true })) {
    const entryPath = path.join(relative, entry.name);
    if (entry.isDirectory()) {
      files.push(...(await listFiles(root, entryPath)));
    } else {
      files.push(entryPath);
    }
  }
  return files;
}

/** Copies example/update/ into a deposit folder and returns the copied paths. */
export async function copyUpdateInto(depositDir: string): Promise<string[]> {
  const files = await listFiles(UPDATE_DIR);
  for (const file of files) {
    await fs.mkdir(path.dirname(path.join(depositDir, file)), { recursive: true });
    await fs.copyFile(path.join(UPDATE_DIR, file), path.join(depositDir, file));
  }
  return files;
}

/**
 * Opens the workbench, runs `body` and always closes it. On failure, saves a screenshot to
 * test-results/ and reports what code-server printed and the page's errors.
 */
export async function withWorkbench(
  t: TestContext,
  options: WorkbenchOptions,
  body: (workbench: Workbench) => Promise<void>,
): Promise<void> {
  const workbench = await openWorkbench({ ...options, keepTempDir: KEEP_TEMP, log: (line) => t.diagnostic(line) });
  try {
    await body(workbench);
  } catch (error) {
    const slug = t.name.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
    const screenshot = path.join(RESULTS_DIR, `e2e-${slug}.png`);
    await workbench.screenshot(screenshot).catch((screenshotError: Error) => {
      t.diagnostic(`Saving the failure screenshot failed: ${screenshotError.message}`);
    });
    t.diagnostic(`Status bar: ${await workbench.describeStatusBar().catch(() => '(unavailable)')}`);
    t.diagnostic(`code-server output:\n${workbench.server.outputTail()}`);
    t.diagnostic(`Page errors: ${workbench.pageErrors.slice(-10).join('\n') || 'none'}`);
    throw error;
  } finally {
    if (workbench.blockedRequests.length > 0) {
      t.diagnostic(`Requests blocked because their host is not 127.0.0.1: ${workbench.blockedRequests.join(', ')}`);
    }
    await workbench.close();
  }
}

/** Removes a workspace made by createWorkspace (its temporary parent folder), unless kept. */
export async function removeWorkspace(workspace: string): Promise<void> {
  if (!KEEP_TEMP) {
    await fs.rm(path.dirname(workspace), { recursive: true, force: true });
  }
}
