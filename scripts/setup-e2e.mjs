// Installs what the end-to-end tests and `npm start` need beyond `npm ci`: Debian's chromium,
// the Kerberos headers and ripgrep, and code-server in `.e2e/code-server/` of this repository.
// Every step is skipped when its result is already there, so running it again is cheap.
//
// Usage: node scripts/setup-e2e.mjs

import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// code-server 4.100.3 bundles VS Code 1.100.3. It is the newest release whose `engines` accepts
// Node 20, because later releases want Node 22 or 24.
export const CODE_SERVER_VERSION = '4.100.3';

// The ripgrep package that code-server 4.100.3 depends on, and the release its postinstall
// script downloads unless it finds the tarball in its cache folder under os.tmpdir().
const RIPGREP_PACKAGE_VERSION = '1.15.11';
const RIPGREP_RELEASE = 'v13.0.0-10';
const RIPGREP_TARGETS = { x64: 'x86_64-unknown-linux-musl', arm64: 'aarch64-unknown-linux-musl' };

// Each Debian package is named with a file it installs, so a present file means no apt-get run.
const DEBIAN_PACKAGES = [
  { name: 'chromium', file: '/usr/bin/chromium' },
  { name: 'libkrb5-dev', file: '/usr/include/gssapi/gssapi.h' },
  { name: 'ripgrep', file: '/usr/bin/rg' },
];

/** Returns the folder that contains the code-server installation of the repository at `repoRoot`. */
export function codeServerDir(repoRoot = REPO_ROOT) {
  return path.join(repoRoot, '.e2e', 'code-server');
}

/** Returns the path of the code-server executable that `setupE2e()` installs. */
export function codeServerPath(repoRoot = REPO_ROOT) {
  return path.join(codeServerDir(repoRoot), 'node_modules', '.bin', 'code-server');
}

// Written after a successful install. It contains the version, so a change of
// CODE_SERVER_VERSION installs again.
function markerPath(repoRoot) {
  return path.join(codeServerDir(repoRoot), 'installed-version');
}

/**
 * Installs the missing Debian packages and code-server, printing one line per step with its
 * duration. Throws when a step fails, with the command and its output in the message.
 */
export async function setupE2e({ repoRoot = REPO_ROOT, log = console.log } = {}) {
  const started = performance.now();

  await runStep(log, 'Debian packages', () => installDebianPackages(log));

  if (await isCodeServerInstalled(repoRoot)) {
    log(`setup-e2e: code-server ${CODE_SERVER_VERSION}: already installed in ${codeServerDir(repoRoot)}`);
  } else {
    await runStep(log, 'ripgrep tarball for @vscode/ripgrep', () => prepareRipgrepCache());
    await runStep(log, `code-server ${CODE_SERVER_VERSION} (npm install)`, () => installCodeServer(repoRoot));
  }

  log(`setup-e2e: done in ${formatSeconds(performance.now() - started)}`);
  return codeServerPath(repoRoot);
}

async function runStep(log, name, action) {
  const started = performance.now();
  const result = await action();
  const detail = result ? `: ${result}` : '';
  log(`setup-e2e: ${name}${detail} (${formatSeconds(performance.now() - started)})`);
}

function formatSeconds(milliseconds) {
  return `${(milliseconds / 1000).toFixed(1)} s`;
}

async function installDebianPackages(log) {
  const missing = DEBIAN_PACKAGES.filter((pkg) => !existsSync(pkg.file)).map((pkg) => pkg.name);
  if (missing.length === 0) {
    return 'all present';
  }

  if (process.getuid?.() !== 0) {
    throw new Error(
      `Missing Debian packages: ${missing.join(', ')}. Install them as root with ` +
        `"apt-get update && apt-get install -y ${missing.join(' ')}", then run this script again.`,
    );
  }

  log(`setup-e2e: installing Debian packages: ${missing.join(', ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await runCommand('apt-get', ['update'], { env });
  await runCommand('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env });

  const stillMissing = DEBIAN_PACKAGES.filter((pkg) => !existsSync(pkg.file));
  if (stillMissing.length > 0) {
    const files = stillMissing.map((pkg) => `${pkg.file} (${pkg.name})`).join(', ');
    throw new Error(`apt-get install succeeded but these files are still missing: ${files}`);
  }
  return `installed ${missing.join(', ')}`;
}

async function isCodeServerInstalled(repoRoot) {
  if (!existsSync(codeServerPath(repoRoot))) {
    return false;
  }
  try {
    const marker = await readFile(markerPath(repoRoot), 'utf8');
    return marker.trim() === CODE_SERVER_VERSION;
  } catch (error) {
    if (error.code === 'ENOENT') {
      return false;
    }
    throw error;
  }
}

// The postinstall script of @vscode/ripgrep downloads rg from GitHub, which this network does
// not reach. It first looks for the release tarball in its cache folder, so a tarball that
// contains Debian's /usr/bin/rg under the name `rg` satisfies it.
async function prepareRipgrepCache() {
  const target = RIPGREP_TARGETS[process.arch];
  if (!target) {
    throw new Error(
      `No ripgrep tarball name is known for CPU architecture ${process.arch}. ` +
        `Known architectures: ${Object.keys(RIPGREP_TARGETS).join(', ')}`,
    );
  }

  const cacheDir = path.join(os.tmpdir(), `vscode-ripgrep-cache-${RIPGREP_PACKAGE_VERSION}`);
  const tarball = path.join(cacheDir, `ripgrep-${RIPGREP_RELEASE}-${target}.tar.gz`);
  if (existsSync(tarball)) {
    return `already in ${tarball}`;
  }

  await mkdir(cacheDir, { recursive: true });
  const stagingDir = await mkdtemp(path.join(os.tmpdir(), 'ripgrep-staging-'));
  try {
    await copyFile('/usr/bin/rg', path.join(stagingDir, 'rg'));
    // Write to a temporary name first, so an interrupted run never leaves a truncated tarball
    // that the next run would take as the cache.
    const partial = `${tarball}.partial`;
    await runCommand('tar', ['-czf', partial, '-C', stagingDir, 'rg']);
    await runCommand('mv', [partial, tarball]);
  } finally {
    await rm(stagingDir, { recursive: true, force: true });
  }
  return `wrote ${tarball}`;
}

async function installCodeServer(repoRoot) {
  const installDir = codeServerDir(repoRoot);
  await mkdir(installDir, { recursive: true });
  await rm(markerPath(repoRoot), { force: true });

  const manifest = { name: 'code-server-for-e2e', private: true, description: 'Installed by scripts/setup-e2e.mjs' };
  await writeFile(path.join(installDir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);

  const env = {
    ...process.env,
    // node-pty's postinstall runs `npx node-gyp`, and npx downloads node-gyp only with consent.
    npm_config_yes: 'true',
    // Native modules build against the headers of the system's Node, not downloaded ones.
    npm_config_nodedir: '/usr',
    // code-server's postinstall exits with an error when run as root without it.
    npm_config_unsafe_perm: 'true',
  };
  const args = [
    'install',
    `code-server@${CODE_SERVER_VERSION}`,
    '--save-exact',
    '--unsafe-perm',
    '--no-audit',
    '--no-fund',
    '--loglevel=error',
  ];
  await runCommand('npm', args, { cwd: installDir, env });

  await checkCodeServerVersion(repoRoot);

  await writeFile(markerPath(repoRoot), `${CODE_SERVER_VERSION}\n`);
  return `installed in ${installDir}`;
}

// Even `--version` writes a default config file into the home folder, so it runs with a
// throwaway one.
async function checkCodeServerVersion(repoRoot) {
  const homeDir = await mkdtemp(path.join(os.tmpdir(), 'code-server-version-'));
  try {
    const env = await isolatedCodeServerEnv(homeDir);
    const { stdout } = await execFileAsync(codeServerPath(repoRoot), ['--version'], { env });
    // The last line is "<version> <commit> with Code <VS Code version>".
    const versionLine = stdout.trim().split('\n').at(-1);
    if (!versionLine.startsWith(`${CODE_SERVER_VERSION} `)) {
      throw new Error(`code-server --version printed "${versionLine}", expected version ${CODE_SERVER_VERSION}`);
    }
  } finally {
    await rm(homeDir, { recursive: true, force: true });
  }
}

/**
 * Returns an environment for code-server whose home, XDG and temporary folders are inside
 * `baseDir`, so that it leaves no config, data, cache or socket outside it. The folders are
 * created.
 * EXTENSIONS_GALLERY is set to an empty gallery so neither the server nor the page contacts a
 * marketplace.
 */
export async function isolatedCodeServerEnv(baseDir, baseEnv = process.env) {
  const folders = {
    HOME: path.join(baseDir, 'home'),
    XDG_CONFIG_HOME: path.join(baseDir, 'xdg-config'),
    XDG_DATA_HOME: path.join(baseDir, 'xdg-data'),
    XDG_CACHE_HOME: path.join(baseDir, 'xdg-cache'),
    // The git extension, for one, creates its IPC socket in os.tmpdir().
    TMPDIR: path.join(baseDir, 'tmp'),
  };
  for (const folder of Object.values(folders)) {
    await mkdir(folder, { recursive: true });
  }
  return { ...baseEnv, ...folders, EXTENSIONS_GALLERY: '{}' };
}

// Runs a command and collects its output, which only appears in the error when it fails.
function runCommand(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    const output = [];
    child.stdout.on('data', (chunk) => output.push(chunk));
    child.stderr.on('data', (chunk) => output.push(chunk));
    child.on('error', (error) => reject(new Error(`${command} failed to start: ${error.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) {
        resolve();
        return;
      }
      const status = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const text = Buffer.concat(output).toString('utf8').trim();
      const tail = text.split('\n').slice(-40).join('\n');
      reject(new Error(`"${command} ${args.join(' ')}" ${status}. Last output:\n${tail}`));
    });
  });
}

// No top-level await here: the harness loads this module with require(), which rejects ES
// modules that use it.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  setupE2e().catch((error) => {
    console.error(`setup-e2e: failed: ${error.message}`);
    process.exitCode = 1;
  });
}
