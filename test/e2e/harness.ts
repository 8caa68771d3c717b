// Drives real VS Code for the end-to-end tests: code-server (VS Code 1.100.3 with a Node
// extension host) bound to 127.0.0.1, and Debian's chromium through playwright-core.
//
// Linux only: process groups are found through /proc, and the browser is /usr/bin/chromium.
// scripts/setup-e2e.mjs installs both.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync, readlinkSync, type WriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

interface SetupModule {
  codeServerPath(repoRoot?: string): string;
  isolatedCodeServerEnv(baseDir: string, baseEnv?: NodeJS.ProcessEnv): Promise<NodeJS.ProcessEnv>;
}

// The setup script is plain JavaScript without type declarations, so its two functions are typed
// here. tsx loads the ES module through require().
// eslint-disable-next-line @typescript-eslint/no-require-imports
const setup = require('../../scripts/setup-e2e.mjs') as SetupModule;

export const REPO_ROOT = path.resolve(__dirname, '..', '..');

const CHROMIUM_PATH = '/usr/bin/chromium';

// Flags that keep Debian's chromium from reaching any host on its own.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// code-server responds on /healthz within about a second on an idle machine. The deadline leaves
// room for a loaded CI machine.
const HEALTH_TIMEOUT_MS = 60_000;
const INSTALL_EXTENSION_TIMEOUT_MS = 120_000;
const WORKBENCH_TIMEOUT_MS = 60_000;
const DEFAULT_WAIT_TIMEOUT_MS = 15_000;
// How long each signal gets to end code-server's process group before the next step.
const STOP_GRACE_MS = 5_000;
const BROWSER_CLOSE_TIMEOUT_MS = 10_000;
const POLL_INTERVAL_MS = 100;
const QUICK_INPUT_REOPEN_MS = 1_000;
// A scroll of the Output editor renders within one animation frame. A view that has not changed
// after this long has reached the end.
const OUTPUT_SCROLL_SETTLE_MS = 1_000;

// ---------------------------------------------------------------------------------------------
// Polling

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
}

/**
 * Calls `check` until it returns a value other than `undefined`, `null` or `false`, and
 * returns that value. Throws "Timed out after N ms waiting for <description>" at the deadline,
 * and `describeState` adds what was seen last to that message.
 */
export async function waitFor<T>(
  description: string,
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  options: WaitOptions & { describeState?: () => string | Promise<string> } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
  const intervalMs = options.intervalMs ?? POLL_INTERVAL_MS;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await check();
    if (result !== undefined && result !== null && result !== false) {
      return result;
    }
    if (Date.now() >= deadline) {
      const state = options.describeState ? `\n${await options.describeState()}` : '';
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${description}.${state}`);
    }
    await delay(intervalMs);
  }
}

function delay(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, description: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${description}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Processes, read from /proc

interface ProcessInfo {
  pid: number;
  ppid: number;
  pgid: number;
  state: string;
  // Start time in clock ticks since boot, which distinguishes a process from a later one with the same PID.
  startTime: string;
  command: string;
}

function readProcessInfo(pid: number): ProcessInfo | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name is in brackets and may contain spaces, so fields are counted from the last ')'.
  const nameEnd = stat.lastIndexOf(')');
  const command = stat.slice(stat.indexOf('(') + 1, nameEnd);
  const fields = stat.slice(nameEnd + 2).split(' ');
  return {
    pid,
    state: fields[0],
    ppid: Number(fields[1]),
    pgid: Number(fields[2]),
    startTime: fields[19],
    command,
  };
}

function listProcesses(): ProcessInfo[] {
  const processes: ProcessInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (/^\d+$/.test(name)) {
      const info = readProcessInfo(Number(name));
      if (info) {
        processes.push(info);
      }
    }
  }
  return processes;
}

// Zombies are left out: they have exited and only wait for their parent to reap them.
function livingGroupMembers(pgid: number): ProcessInfo[] {
  return listProcesses().filter((info) => info.pgid === pgid && info.state !== 'Z');
}

function descendantsOf(rootPid: number): ProcessInfo[] {
  const processes = listProcesses();
  const found: ProcessInfo[] = [];
  const parents = new Set([rootPid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const info of processes) {
      if (parents.has(info.ppid) && !parents.has(info.pid)) {
        parents.add(info.pid);
        found.push(info);
        grew = true;
      }
    }
  }
  return found;
}

function isSameProcessAlive(info: ProcessInfo): boolean {
  const current = readProcessInfo(info.pid);
  return current !== undefined && current.startTime === info.startTime && current.state !== 'Z';
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') {
      throw error;
    }
  }
}

/**
 * Stops a process group: SIGTERM, up to `graceMs` for it to end, then SIGKILL and the same
 * wait again. Throws when members are still alive after that.
 */
export async function stopProcessGroup(pgid: number, graceMs = STOP_GRACE_MS): Promise<void> {
  signalGroup(pgid, 'SIGTERM');
  const endedOnTerm = await waitFor(`process group ${pgid} to end after SIGTERM`, () => livingGroupMembers(pgid).length === 0, {
    timeoutMs: graceMs,
  }).catch(() => false);
  if (endedOnTerm) {
    return;
  }

  signalGroup(pgid, 'SIGKILL');
  await waitFor(`process group ${pgid} to end after SIGKILL`, () => livingGroupMembers(pgid).length === 0, {
    timeoutMs: graceMs,
    describeState: () => `Still alive: ${formatProcesses(livingGroupMembers(pgid))}`,
  });
}

function formatProcesses(processes: ProcessInfo[]): string {
  return processes.map((info) => `${info.pid} (${info.command}, group ${info.pgid})`).join(', ') || 'none';
}

/** Returns the processes whose working directory is `dir` or a folder inside it. */
export function processesWithCwdUnder(dir: string): { pid: number; pgid: number; command: string; cwd: string }[] {
  const root = path.resolve(dir);
  const found = [];
  for (const info of listProcesses()) {
    let cwd: string;
    try {
      cwd = readlinkSync(`/proc/${info.pid}/cwd`);
    } catch {
      continue;
    }
    if (info.state !== 'Z' && (cwd === root || cwd.startsWith(`${root}${path.sep}`))) {
      found.push({ pid: info.pid, pgid: info.pgid, command: info.command, cwd });
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// code-server

export type WorkspaceTrust = 'trusted' | 'restricted';

export interface CodeServerOptions {
  /** `.vsix` files to install before the server starts. */
  vsixPaths?: string[];
  /**
   * 'trusted' (the default) turns workspace trust off, so every folder is trusted. 'restricted'
   * keeps it on without the start-up prompt, so a folder opens in restricted mode.
   */
  trust?: WorkspaceTrust;
  /** Port on 127.0.0.1. A free one is chosen when absent. */
  port?: number;
  /** Folder that code-server opens when the page URL names none. */
  defaultFolder?: string;
  /** Settings added to, or replacing, the User settings that the harness writes. */
  userSettings?: Record<string, unknown>;
  /** Receives progress lines. Nothing is logged when absent. */
  log?: (line: string) => void;
  /** Keeps the temporary folder (user data, extensions, logs) after stop(). */
  keepTempDir?: boolean;
  /** code-server executable. The default is the one that scripts/setup-e2e.mjs installs. */
  codeServerPath?: string;
}

function userSettingsFor(trust: WorkspaceTrust): Record<string, unknown> {
  return {
    'update.mode': 'none',
    'update.showReleaseNotes': false,
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'extensions.ignoreRecommendations': true,
    'telemetry.telemetryLevel': 'off',
    'workbench.enableExperiments': false,
    'workbench.startupEditor': 'none',
    'workbench.welcomePage.walkthroughs.openOnInstall': false,
    'workbench.tips.enabled': false,
    'security.workspace.trust.enabled': trust === 'restricted',
    'security.workspace.trust.startupPrompt': 'never',
    'security.workspace.trust.emptyWindow': false,
  };
}

/** A running code-server in its own process group, with its own temporary folders. */
export class CodeServer {
  /** Settles when code-server's main process exits, with "exited with code N" or "was killed by SIGNAL". */
  readonly exited: Promise<string>;
  private stopped = false;

  constructor(
    private readonly child: ChildProcess,
    private readonly logStream: WriteStream,
    readonly port: number,
    readonly tempDir: string,
    private readonly keepTempDir: boolean,
    private readonly log: (line: string) => void,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve(signal ? `was killed by ${signal}` : `exited with code ${code}`));
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get userDataDir(): string {
    return path.join(this.tempDir, 'user-data');
  }

  get extensionsDir(): string {
    return path.join(this.tempDir, 'extensions');
  }

  /** File that receives code-server's stdout and stderr. */
  get logFile(): string {
    return path.join(this.tempDir, 'code-server.log');
  }

  /** Returns the workbench URL that opens `folder`, which must be an absolute path. */
  /** Page URL that opens a folder, or a multi-root workspace when given a `.code-workspace` file. */
  folderUrl(folder: string): string {
    const kind = folder.endsWith('.code-workspace') ? 'workspace' : 'folder';
    return `${this.baseUrl}/?${kind}=${encodeURIComponent(path.resolve(folder))}`;
  }

  /** Returns the last `lineCount` lines that code-server printed. */
  outputTail(lineCount = 30): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lineCount).join('\n');
    } catch {
      return '(no output)';
    }
  }

  /**
   * Stops code-server's whole process group, which contains the extension hosts of every page
   * load, and then any process it started in a group of its own (a program that an extension
   * started detached). Removes the temporary folder unless it is kept.
   */
  async stop(): Promise<void> {
    if (this.stopped) {
      return;
    }
    this.stopped = true;

    // Taken before the group ends, because its orphans are re-parented and can no longer be
    // distinguished from other processes by their parent.
    const otherGroups = descendantsOf(this.pid).filter((info) => info.pgid !== this.pid);

    await stopProcessGroup(this.pid);

    for (const info of otherGroups.filter(isSameProcessAlive)) {
      this.log(`code-server: stopping leftover process ${formatProcesses([info])}`);
      await stopProcessGroup(info.pgid);
    }

    await new Promise<void>((resolve) => this.logStream.end(resolve));
    if (!this.keepTempDir) {
      await fs.rm(this.tempDir, { recursive: true, force: true });
    }
  }
}

function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function runCodeServerCli(binary: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(binary, args, { env, timeout: INSTALL_EXTENSION_TIMEOUT_MS }, (error, stdout, stderr) => {
      const output = `${stdout}${stderr}`.trim();
      if (error) {
        reject(new Error(`code-server ${args.join(' ')} failed: ${error.message}\n${output}`));
      } else {
        resolve(output);
      }
    });
  });
}

/**
 * Starts code-server on 127.0.0.1 in a process group of its own, with a throwaway home, XDG
 * folders, user data and extensions folder, and waits until /healthz responds.
 */
export async function startCodeServer(options: CodeServerOptions = {}): Promise<CodeServer> {
  const log = options.log ?? (() => {});
  const binary = options.codeServerPath ?? setup.codeServerPath(REPO_ROOT);
  if (!existsSync(binary)) {
    throw new Error(`code-server not found at ${binary}. Run "node scripts/setup-e2e.mjs" to install it.`);
  }

  const trust = options.trust ?? 'trusted';
  const tempDir = await fs.mkdtemp(path.join(os.tmpdir(), 'ota-code-server-'));
  const env = await setup.isolatedCodeServerEnv(tempDir);
  const userDataDir = path.join(tempDir, 'user-data');
  const extensionsDir = path.join(tempDir, 'extensions');
  const settingsDir = path.join(userDataDir, 'User');
  await fs.mkdir(settingsDir, { recursive: true });
  await fs.mkdir(extensionsDir, { recursive: true });
  const settings = { ...userSettingsFor(trust), ...options.userSettings };
  await fs.writeFile(path.join(settingsDir, 'settings.json'), `${JSON.stringify(settings, null, 2)}\n`);

  const dirArgs = ['--user-data-dir', userDataDir, '--extensions-dir', extensionsDir];
  for (const vsixPath of options.vsixPaths ?? []) {
    const started = Date.now();
    const output = await runCodeServerCli(binary, [...dirArgs, '--install-extension', path.resolve(vsixPath)], env);
    if (!/successfully installed/i.test(output)) {
      throw new Error(`Installing ${vsixPath} printed no success message:\n${output}`);
    }
    log(`code-server: installed ${path.basename(vsixPath)} (${Date.now() - started} ms)`);
  }

  // A port found free can be taken before code-server binds it, so a chosen port is retried.
  const attempts = options.port === undefined ? 3 : 1;
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await findFreePort());
    try {
      return await launchCodeServer({ binary, env, port, tempDir, dirArgs, trust, options, log });
    } catch (error) {
      if (!(error instanceof PortInUseError) || attempt >= attempts) {
        if (!options.keepTempDir) {
          await fs.rm(tempDir, { recursive: true, force: true });
        }
        throw error;
      }
      log(`code-server: port ${port} was taken, trying another`);
    }
  }
}

class PortInUseError extends Error {}

async function launchCodeServer(launch: {
  binary: string;
  env: NodeJS.ProcessEnv;
  port: number;
  tempDir: string;
  dirArgs: string[];
  trust: WorkspaceTrust;
  options: CodeServerOptions;
  log: (line: string) => void;
}): Promise<CodeServer> {
  const { binary, env, port, tempDir, dirArgs, trust, options, log } = launch;
  const args = [
    '--bind-addr',
    `127.0.0.1:${port}`,
    '--auth',
    'none',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-getting-started-override',
    ...dirArgs,
  ];
  if (trust === 'trusted') {
    args.push('--disable-workspace-trust');
  }
  if (options.defaultFolder) {
    args.push(path.resolve(options.defaultFolder));
  }

  const started = Date.now();
  const logStream = createWriteStream(path.join(tempDir, 'code-server.log'), { flags: 'a' });
  // detached: true makes the child the leader of a new process group (setsid), so stop() can
  // signal every process it starts.
  const child = spawn(binary, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(logStream, { end: false });
  child.stderr!.pipe(logStream, { end: false });
  const server = new CodeServer(child, logStream, port, tempDir, options.keepTempDir ?? false, log);

  let exitStatus: string | undefined;
  void server.exited.then((status) => {
    exitStatus = status;
  });
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });

  try {
    await waitFor(
      `code-server /healthz on port ${port}`,
      async () => {
        if (spawnError) {
          throw new Error(`code-server failed to start: ${spawnError.message}`);
        }
        if (exitStatus) {
          const tail = server.outputTail();
          const message = `code-server ${exitStatus} before /healthz responded. Last output:\n${tail}`;
          throw /EADDRINUSE/.test(tail) ? new PortInUseError(message) : new Error(message);
        }
        return isHealthy(port);
      },
      { timeoutMs: HEALTH_TIMEOUT_MS, describeState: () => `Last output:\n${server.outputTail()}` },
    );
  } catch (error) {
    if (child.pid !== undefined) {
      await stopProcessGroup(child.pid).catch(() => {});
    }
    logStream.end();
    throw error;
  }

  log(`code-server: listening on ${server.baseUrl}, process group ${child.pid} (${Date.now() - started} ms)`);
  return server;
}

async function isHealthy(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2_000) });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// The workbench in chromium

export interface WorkbenchOptions extends CodeServerOptions {
  /** Workspace folder to open. */
  folder: string;
  /** Browser window size in pixels, 1440 × 900 when absent. */
  viewport?: { width: number; height: number };
}

/** Entry of a status-bar recording: a text the item showed, in order of appearance. */
export interface StatusBarRecord {
  text: string;
  // Milliseconds since the recording started, measured in the page.
  atMs: number;
}

/** Status-bar item as shown: its text, without icons, and its accessible label. */
export interface StatusBarItem {
  id: string;
  text: string;
  ariaLabel: string;
}

const STATUS_BAR = '#workbench\\.parts\\.statusbar';
const QUICK_INPUT = '.quick-input-widget';
const QUICK_INPUT_BOX = '.quick-input-widget .quick-input-box input';
const QUICK_INPUT_ROWS = '.quick-input-widget .quick-input-list .monaco-list-row';
const PANEL_VIEW_LINES = '.part.panel .view-lines';

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// The global and sticky flags are dropped, because they make test() depend on earlier calls.
function toRegExp(matcher: string | RegExp): RegExp {
  return typeof matcher === 'string' ? new RegExp(escapeRegExp(matcher)) : new RegExp(matcher.source, matcher.flags.replace(/[gy]/g, ''));
}

/** Opens a folder in code-server in headless chromium and returns the ready workbench. */
export async function openWorkbench(options: WorkbenchOptions): Promise<Workbench> {
  const log = options.log ?? (() => {});
  if (!existsSync(options.folder)) {
    throw new Error(`Workspace folder not found: ${options.folder}`);
  }
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`chromium not found at ${CHROMIUM_PATH}. Run "node scripts/setup-e2e.mjs" to install it.`);
  }

  const server = await startCodeServer(options);
  let context: BrowserContext | undefined;
  try {
    const browserDir = path.join(server.tempDir, 'chromium');
    // chromium writes crash reports and a dconf cache under the home folder even with a
    // profile folder of its own, so it gets a throwaway home too.
    const browserEnv = await setup.isolatedCodeServerEnv(browserDir);
    context = await chromium.launchPersistentContext(path.join(browserDir, 'profile'), {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      env: browserEnv as Record<string, string>,
      viewport: options.viewport ?? { width: 1440, height: 900 },
    });
    const workbench = new Workbench(server, context, context.pages()[0] ?? (await context.newPage()), log);
    await workbench.blockOtherHosts();
    await workbench.load(options.folder);
    return workbench;
  } catch (error) {
    await context?.close().catch(() => {});
    await server.stop();
    throw error;
  }
}

// Runs in the page. It is source text rather than a function, because tsx's transform wraps
// named functions in a helper (__name) that does not exist in the page.
const STATUS_BAR_RECORDER_SOURCE = `({ selector, key, source, flags }) => {
  const pattern = new RegExp(source, flags);
  const records = [];
  window[key] = records;
  const startedAt = performance.now();
  let lastTexts = new Set();
  const scan = () => {
    const texts = new Set();
    const bar = document.querySelector(selector);
    for (const element of bar ? bar.querySelectorAll('.statusbar-item') : []) {
      const text = (element.textContent || '').replace(/\\s+/g, ' ').trim();
      const labelled = element.querySelector('[aria-label]');
      const label = (labelled && labelled.getAttribute('aria-label')) || '';
      const itemText = text || label;
      if (pattern.test(text) || pattern.test(label)) {
        texts.add(itemText);
        if (!lastTexts.has(itemText)) {
          records.push({ text: itemText, atMs: Math.round(performance.now() - startedAt) });
        }
      }
    }
    lastTexts = texts;
  };
  scan();
  // The whole workbench is observed, because the status bar may be re-created.
  new MutationObserver(scan).observe(document.body, {
    subtree: true,
    childList: true,
    characterData: true,
    attributes: true,
    attributeFilter: ['aria-label'],
  });
}`;

/** VS Code's workbench in a browser page, with helpers that read and drive it. */
export class Workbench {
  /** URLs of requests that were aborted because their host is not 127.0.0.1. */
  readonly blockedRequests: string[] = [];
  /** Errors thrown in the page and console messages of level error. */
  readonly pageErrors: string[] = [];
  private closed = false;
  private recorderCount = 0;

  constructor(
    readonly server: CodeServer,
    readonly context: BrowserContext,
    readonly page: Page,
    private readonly log: (line: string) => void,
  ) {
    page.on('pageerror', (error) => this.pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') {
        this.pageErrors.push(message.text());
      }
    });
  }

  /** Aborts every HTTP request whose host is not 127.0.0.1. */
  async blockOtherHosts(): Promise<void> {
    await this.context.route('**/*', async (route) => {
      const url = route.request().url();
      if (new URL(url).hostname === '127.0.0.1') {
        await route.continue();
      } else {
        this.blockedRequests.push(url);
        await route.abort('blockedbyclient');
      }
    });
  }

  async load(folder: string): Promise<void> {
    const started = Date.now();
    await this.page.goto(this.server.folderUrl(folder));
    await this.page
      .locator('.monaco-workbench')
      .waitFor({ state: 'attached', timeout: WORKBENCH_TIMEOUT_MS })
      .catch((error: Error) => {
        throw new Error(
          `The workbench (.monaco-workbench) did not appear within ${WORKBENCH_TIMEOUT_MS} ms: ${error.message}\n` +
            `code-server output:\n${this.server.outputTail()}`,
        );
      });
    await this.page.locator(STATUS_BAR).waitFor({ state: 'visible', timeout: WORKBENCH_TIMEOUT_MS });
    this.log(`workbench: loaded ${folder} (${Date.now() - started} ms)`);
  }

  /**
   * Runs a command through the command palette (F1), choosing the entry whose label equals
   * `title`, such as "Python OTA: Start".
   */
  async runCommand(title: string, timeoutMs = DEFAULT_WAIT_TIMEOUT_MS): Promise<void> {
    await this.pickFromQuickInput({ key: 'F1', text: `>${title}`, label: title, timeoutMs });
    this.log(`workbench: ran "${title}"`);
  }

  /** Runs a command through the command palette and picks `choice` in the quick pick that it opens. */
  async runCommandAndPick(title: string, choice: string, timeoutMs = DEFAULT_WAIT_TIMEOUT_MS): Promise<void> {
    await this.pickFromQuickInput({ key: 'F1', text: `>${title}`, label: title, timeoutMs, opensAnother: true });
    await this.pickFromQuickInput({ text: '', label: choice, timeoutMs });
    this.log(`workbench: ran "${title}" for "${choice}"`);
  }

  private async openQuickInput(key: string, timeoutMs: number): Promise<void> {
    await this.rejectModalDialog();
    // The workbench handles keys only when the page has focus, which a click on the status bar
    // gives without changing anything.
    await this.page.locator(STATUS_BAR).click({ position: { x: 1, y: 1 } });
    await this.page.keyboard.press(key);
    await this.page.locator(QUICK_INPUT_BOX).waitFor({ state: 'visible', timeout: timeoutMs });
  }

  // A modal dialog takes every click and key, so a step behind it would only time out.
  private async rejectModalDialog(): Promise<void> {
    const dialog = this.page.locator('.monaco-dialog-box');
    if ((await dialog.count()) > 0) {
      const text = (await dialog.first().innerText()).replace(/\s+/g, ' ').trim();
      throw new Error(`A modal dialog blocks the workbench: "${text}"`);
    }
  }

  /**
   * Types `text` into a quick input and clicks the row whose label is exactly `label`. Unless
   * the choice opens another quick pick, waits for the widget to close.
   *
   * With `key`, the quick input is opened by that key first, and reopened every
   * QUICK_INPUT_REOPEN_MS while the row is missing. A quick pick filters only the entries it
   * collected when it opened, so a command whose `when` clause becomes true later appears only
   * after a reopen. Without `key`, the quick input must be open already.
   */
  private async pickFromQuickInput(pick: {
    key?: string;
    text: string;
    label: string;
    timeoutMs: number;
    opensAnother?: boolean;
  }): Promise<void> {
    const { key, text, label, timeoutMs } = pick;
    const exactLabel = new RegExp(`^\\s*${escapeRegExp(label)}\\s*$`);
    const row = this.page
      .locator(QUICK_INPUT_ROWS)
      .filter({ has: this.page.locator('.label-name', { hasText: exactLabel }) })
      .first();
    const deadline = Date.now() + timeoutMs;

    for (;;) {
      if (key) {
        await this.openQuickInput(key, timeoutMs);
      }
      await this.page.locator(QUICK_INPUT_BOX).fill(text);
      const remainingMs = Math.max(deadline - Date.now(), 1);
      const attemptMs = key ? Math.min(QUICK_INPUT_REOPEN_MS, remainingMs) : remainingMs;
      const found = await row.waitFor({ state: 'visible', timeout: attemptMs }).then(
        () => true,
        () => false,
      );
      if (found) {
        break;
      }

      const visibleLabels = await this.page.locator(`${QUICK_INPUT_ROWS} .label-name`).allTextContents();
      await this.page.keyboard.press('Escape');
      await this.page.locator(QUICK_INPUT).waitFor({ state: 'hidden', timeout: timeoutMs });
      if (Date.now() >= deadline) {
        throw new Error(
          `Timed out after ${timeoutMs} ms waiting for "${label}" in the quick pick. ` +
            `Entries shown for "${text}": ${visibleLabels.map((entry) => `"${entry}"`).join(', ') || 'none'}`,
        );
      }
    }

    await row.click();
    if (pick.opensAnother) {
      // The next quick pick starts with an empty input.
      await waitFor(
        `the quick pick after "${label}"`,
        async () => (await this.page.locator(QUICK_INPUT_BOX).inputValue()) !== text,
        { timeoutMs },
      );
    } else {
      await this.page.locator(QUICK_INPUT).waitFor({ state: 'hidden', timeout: timeoutMs });
    }
  }

  /**
   * Opens a file of the workspace in an editor through Quick Open (Ctrl+P), choosing the
   * first entry named like the file.
   */
  async openFile(relativePath: string, timeoutMs = DEFAULT_WAIT_TIMEOUT_MS): Promise<void> {
    await this.pickFromQuickInput({ key: 'Control+P', text: relativePath, label: path.basename(relativePath), timeoutMs });
    const tab = this.page.locator('.tabs-container .tab.active', { hasText: path.basename(relativePath) });
    await tab.waitFor({ state: 'visible', timeout: timeoutMs });
    this.log(`workbench: opened ${relativePath}`);
  }

  /** Returns the status-bar items as shown now. */
  async statusBarItems(): Promise<StatusBarItem[]> {
    return this.page.locator(`${STATUS_BAR} .statusbar-item`).evaluateAll((elements) =>
      elements.map((element) => ({
        id: element.id,
        text: (element.textContent ?? '').replace(/\s+/g, ' ').trim(),
        ariaLabel: element.querySelector('[aria-label]')?.getAttribute('aria-label') ?? element.getAttribute('aria-label') ?? '',
      })),
    );
  }

  /**
   * Waits until a status-bar item's text or accessible label matches `matcher`, and returns
   * that item's text.
   */
  async statusBarText(matcher: string | RegExp, options: WaitOptions = {}): Promise<string> {
    const pattern = toRegExp(matcher);
    const item = await waitFor(
      `a status-bar item matching ${pattern}`,
      async () => (await this.statusBarItems()).find((entry) => pattern.test(entry.text) || pattern.test(entry.ariaLabel)),
      { ...options, describeState: async () => `Status bar: ${await this.describeStatusBar()}` },
    );
    return item.text;
  }

  async describeStatusBar(): Promise<string> {
    const items = await this.statusBarItems();
    return items.map((item) => `"${item.text || item.ariaLabel}"`).join(', ') || '(empty)';
  }

  /**
   * Records, from now on, every distinct text that status-bar items matching `matcher` take,
   * in order. A MutationObserver in the page records each change as VS Code renders it, so a
   * state shown for a few milliseconds is kept.
   */
  async recordStatusBar(matcher: string | RegExp): Promise<StatusBarRecorder> {
    const pattern = toRegExp(matcher);
    const key = `__otaE2eStatusBarRecord${this.recorderCount++}`;
    const settings = { selector: STATUS_BAR, key, source: pattern.source, flags: pattern.flags };
    await this.page.evaluate(`(${STATUS_BAR_RECORDER_SOURCE})(${JSON.stringify(settings)})`);
    return new StatusBarRecorder(this.page, key, pattern);
  }

  /**
   * Opens the Output panel on the channel named `name`, through the command "Output: Show
   * Output Channels...".
   */
  async openOutputChannel(name: string, timeoutMs = DEFAULT_WAIT_TIMEOUT_MS): Promise<void> {
    const command = 'Output: Show Output Channels...';
    await this.pickFromQuickInput({ key: 'F1', text: `>${command}`, label: command, timeoutMs, opensAnother: true });
    await this.pickFromQuickInput({ text: name, label: name, timeoutMs });
    await this.page.locator(PANEL_VIEW_LINES).first().waitFor({ state: 'visible', timeout: timeoutMs });
    this.log(`workbench: opened output channel "${name}"`);
  }

  /** Returns the lines of the Output panel that are rendered now, from top to bottom. */
  async outputVisibleLines(): Promise<string[]> {
    const lines = this.page.locator(`${PANEL_VIEW_LINES} .view-line`);
    const rows = await lines.evaluateAll((elements) =>
      elements.map((element) => ({
        top: Number.parseFloat((element as HTMLElement).style.top) || 0,
        // Monaco renders spaces as no-break spaces.
        text: (element.textContent ?? '').replace(/\u00a0/g, ' '),
      })),
    );
    return rows.sort((a, b) => a.top - b.top).map((row) => row.text);
  }

  /**
   * Waits until a rendered line of the Output panel matches `matcher`, and returns it. The
   * panel follows new output while it is scrolled to the end, so a new line becomes visible.
   */
  async waitForOutputLine(matcher: string | RegExp, options: WaitOptions = {}): Promise<string> {
    const pattern = toRegExp(matcher);
    return waitFor(
      `an Output panel line matching ${pattern}`,
      async () => (await this.outputVisibleLines()).find((line) => pattern.test(line)),
      {
        ...options,
        describeState: async () => `Visible Output lines:\n${(await this.outputVisibleLines()).join('\n') || '(none)'}`,
      },
    );
  }

  /**
   * Returns the whole text of the Output panel. Monaco renders only the lines in view, so the
   * editor is scrolled from the top, one page at a time, and the pages are joined where they
   * overlap. Scrolls back to the end afterwards, so the panel follows new output again.
   */
  async readOutputText(maxPages = 500): Promise<string> {
    await this.page.locator('.part.panel .monaco-editor').first().click();
    const beforeHome = await this.outputVisibleLines();
    await this.page.keyboard.press('Control+Home');
    // When the view was at the top already, it does not change.
    let view = (await this.waitForViewChange(beforeHome)) ?? beforeHome;
    let lines = view;
    for (let page = 0; page < maxPages; page++) {
      await this.page.keyboard.press('PageDown');
      const next = await this.waitForViewChange(view);
      if (!next) {
        break;
      }
      lines = joinOverlapping(lines, next);
      view = next;
    }
    await this.page.keyboard.press('Control+End');
    return lines.join('\n');
  }

  // Returns the rendered lines once they differ from `before`, or undefined when they stay the
  // same for OUTPUT_SCROLL_SETTLE_MS, which means the view did not move.
  private async waitForViewChange(before: string[]): Promise<string[] | undefined> {
    const deadline = Date.now() + OUTPUT_SCROLL_SETTLE_MS;
    const beforeText = before.join('\n');
    while (Date.now() < deadline) {
      const now = await this.outputVisibleLines();
      if (now.join('\n') !== beforeText) {
        return now;
      }
      await delay(POLL_INTERVAL_MS);
    }
    return undefined;
  }

  /** Returns the texts of the notification toasts shown now. */
  async notificationTexts(): Promise<string[]> {
    return this.page.locator('.notifications-toasts .notification-toast').allInnerTexts();
  }

  /** Saves a PNG of the whole browser window, creating the folder when needed. */
  async screenshot(filePath: string): Promise<void> {
    await fs.mkdir(path.dirname(path.resolve(filePath)), { recursive: true });
    await this.page.screenshot({ path: filePath });
    this.log(`workbench: saved screenshot ${filePath}`);
  }

  /** Closes the browser and stops code-server's process group. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) {
      return;
    }
    this.closed = true;
    try {
      await withTimeout(this.context.close(), BROWSER_CLOSE_TIMEOUT_MS, 'the browser to close');
    } finally {
      await this.server.stop();
    }
  }
}

// Joins two lists of lines where the tail of `first` equals the head of `second`. When they
// do not overlap, `second` follows `first` as a whole.
function joinOverlapping(first: string[], second: string[]): string[] {
  for (let overlap = Math.min(first.length, second.length); overlap > 0; overlap--) {
    const tail = first.slice(first.length - overlap);
    if (tail.every((line, index) => line === second[index])) {
      return [...first, ...second.slice(overlap)];
    }
  }
  return [...first, ...second];
}

/** Texts recorded by `Workbench.recordStatusBar()`. */
export class StatusBarRecorder {
  constructor(
    private readonly page: Page,
    private readonly key: string,
    readonly pattern: RegExp,
  ) {}

  async records(): Promise<StatusBarRecord[]> {
    return this.page.evaluate((key) => [...((window as unknown as Record<string, StatusBarRecord[]>)[key] ?? [])], this.key);
  }

  async texts(): Promise<string[]> {
    return (await this.records()).map((record) => record.text);
  }

  /**
   * Waits until the recorded texts, from index `from` on, contain a text matching each of
   * `matchers` in this order (other texts may come between), and returns the recorded texts.
   */
  async waitForSequence(matchers: (string | RegExp)[], options: WaitOptions & { from?: number } = {}): Promise<string[]> {
    const patterns = matchers.map(toRegExp);
    const from = options.from ?? 0;
    return waitFor(
      `status-bar texts matching ${patterns.join(' then ')} (from record ${from})`,
      async () => {
        const texts = await this.texts();
        let next = 0;
        for (const text of texts.slice(from)) {
          if (next < patterns.length && patterns[next].test(text)) {
            next++;
          }
        }
        return next === patterns.length ? texts : undefined;
      },
      { ...options, describeState: async () => `Recorded: ${JSON.stringify(await this.texts())}` },
    );
  }
}
