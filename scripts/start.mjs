// `npm start`: opens a copy of example/ in VS Code with this extension, to try an update by hand.
//
// With desktop VS Code (`code` on PATH) it builds the extension and opens the copy in an
// Extension Development Host. Otherwise, or with --code-server, it installs code-server
// (scripts/setup-e2e.mjs), packages the extension and serves VS Code on 127.0.0.1 until Ctrl-C.
// PORT selects the port; a free one is chosen when it is unset.
//
// Usage: npm start [-- --code-server]

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { require as tsxRequire } from 'tsx/cjs/api';

import { setupE2e } from './setup-e2e.mjs';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const EXAMPLE_DIR = path.join(REPO_ROOT, 'example');
const VSIX_PATH = path.join(REPO_ROOT, 'dist-vsix', 'python-ota-update.vsix');

function log(line) {
  console.log(`start: ${line}`);
}

function hasDesktopCode() {
  const result = spawnSync('code', ['--version'], { stdio: 'ignore' });
  return result.error === undefined && result.status === 0;
}

function runNpmScript(name) {
  const started = performance.now();
  const result = spawnSync('npm', ['run', name], { cwd: REPO_ROOT, stdio: 'inherit' });
  if (result.error) {
    throw new Error(`npm run ${name} failed to start: ${result.error.message}`);
  }
  if (result.status !== 0) {
    throw new Error(`npm run ${name} exited with code ${result.status ?? result.signal}`);
  }
  log(`npm run ${name} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
}

// Copies example/ without update/ into `example/` of a new temporary folder, so the window's
// title reads "example" and the repository's copy stays untouched.
async function createWorkspace() {
  const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'ota-start-'));
  const workspace = path.join(parent, 'example');
  const updateDir = path.join(EXAMPLE_DIR, 'update');
  await fs.cp(EXAMPLE_DIR, workspace, { recursive: true, filter: (source) => source !== updateDir });
  await fs.mkdir(path.join(workspace, 'deposit'), { recursive: true });
  return workspace;
}

function printUpdateHint(workspace) {
  console.log('');
  console.log('Run "Python OTA: Start" from the command palette (F1), then deliver version 2:');
  console.log(`  cp -r ${path.join(EXAMPLE_DIR, 'update')}/. ${path.join(workspace, 'deposit')}/`);
  console.log('The status bar shows "OTA: updating", then "OTA: running", and the Output panel');
  console.log('("Python OTA Update") shows the lines of version 2.');
  console.log('');
}

// NOTE: untested, because the development machines have no desktop VS Code.
async function startDesktop(workspace) {
  runNpmScript('build');
  log(`opening ${workspace} in an Extension Development Host`);
  printUpdateHint(workspace);
  const child = spawn('code', ['--new-window', `--extensionDevelopmentPath=${REPO_ROOT}`, workspace], {
    stdio: 'inherit',
  });
  await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  log(`the workspace stays in ${workspace}`);
}

async function startCodeServerSession(workspace) {
  await setupE2e({ log });
  runNpmScript('package');

  // The harness is TypeScript, loaded through tsx's require so that it runs as CommonJS, as it
  // does in the tests.
  const harness = tsxRequire('../test/e2e/harness.ts', import.meta.url);
  const port = process.env.PORT ? Number(process.env.PORT) : undefined;
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) {
    throw new Error(`PORT must be a port number from 1 to 65535, got "${process.env.PORT}"`);
  }
  const server = await harness.startCodeServer({
    vsixPaths: [VSIX_PATH],
    port,
    defaultFolder: workspace,
    log,
  });

  try {
    console.log('');
    console.log(`VS Code is serving the example workspace at ${server.folderUrl(workspace)}`);
    printUpdateHint(workspace);
    console.log('Press Ctrl-C to stop.');

    const stopSignal = await Promise.race([
      new Promise((resolve) => process.once('SIGINT', () => resolve('SIGINT'))),
      new Promise((resolve) => process.once('SIGTERM', () => resolve('SIGTERM'))),
      server.exited.then((status) => {
        throw new Error(`code-server ${status}. Last output:\n${server.outputTail()}`);
      }),
    ]);
    log(`${stopSignal} received, stopping code-server (process group ${server.pid})`);
  } finally {
    await server.stop();
    await fs.rm(path.dirname(workspace), { recursive: true, force: true });
    log('stopped code-server and removed the workspace');
  }
}

async function main() {
  const useCodeServer = process.argv.includes('--code-server') || !hasDesktopCode();
  const workspace = await createWorkspace();
  if (useCodeServer) {
    await startCodeServerSession(workspace);
  } else {
    await startDesktop(workspace);
  }
}

main().catch((error) => {
  console.error(`start: failed: ${error.message}`);
  process.exitCode = 1;
});
