// The stand-in for the Python extension (fixtures/python-stand-in/, id ms-python.python): packages
// it into a .vsix, and reads and writes the selection file through which a test sets the
// interpreter and environment variables that it reports for a workspace folder.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

export const PYTHON_STAND_IN_DIR = path.join(__dirname, 'fixtures', 'python-stand-in');

/** Name of the selection file in a workspace folder, as fixtures/python-stand-in/extension.js reads it. */
export const STAND_IN_SELECTION_FILE = '.stand-in-python.json';

// vsce packs three small files in about a second; the deadline leaves room for npx's start-up on
// a loaded machine.
const PACKAGE_TIMEOUT_MS = 120_000;

/** Selection of the stand-in for one workspace folder. */
export interface StandInSelection {
  /** Active interpreter, or environment folder. Absent: none is selected. */
  path?: string;
  /** Variables added to the environment, as a .env file would add them. */
  env?: Record<string, string>;
  /** Further interpreters that the stand-in's picker offers. */
  known?: string[];
  /** Makes the stand-in's activation throw, as a broken install of the Python extension would. */
  failActivation?: boolean;
}

/**
 * Packages the stand-in with `npx vsce package` into `outDir` and returns the path of the .vsix.
 * `--no` keeps npx from installing vsce when the repository's devDependency is missing.
 */
export async function packagePythonStandIn(outDir: string): Promise<string> {
  await fs.mkdir(outDir, { recursive: true });
  const vsix = path.join(outDir, 'ms-python.python-stand-in.vsix');
  const args = ['--no', '--', 'vsce', 'package', '--no-dependencies', '--allow-missing-repository', '--out', vsix];
  await new Promise<void>((resolve, reject) => {
    execFile('npx', args, { cwd: PYTHON_STAND_IN_DIR, timeout: PACKAGE_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`npx ${args.join(' ')} failed in ${PYTHON_STAND_IN_DIR}: ${error.message}\n${stdout}${stderr}`));
      } else {
        resolve();
      }
    });
  });
  if (!existsSync(vsix)) {
    throw new Error(`vsce reported success but wrote no ${vsix}`);
  }
  return vsix;
}

/** Writes the stand-in's selection for `folder` through a temporary file and a rename, so the stand-in never reads half of it. */
export async function writeStandInSelection(folder: string, selection: StandInSelection): Promise<void> {
  const file = path.join(folder, STAND_IN_SELECTION_FILE);
  const temporary = `${file}.test.tmp`;
  await fs.writeFile(temporary, `${JSON.stringify(selection, null, 2)}\n`);
  await fs.rename(temporary, file);
}

/** Reads the stand-in's selection for `folder`; undefined when there is no selection file. */
export async function readStandInSelection(folder: string): Promise<StandInSelection | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(folder, STAND_IN_SELECTION_FILE), 'utf8')) as StandInSelection;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return undefined;
    }
    throw error;
  }
}
