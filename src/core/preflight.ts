/**
 * Checks that run before the old version is stopped: every deposited `.py` file must
 * compile with the program's own interpreter, and an optional check command must pass
 * on a staged copy of the merged tree. A failure rejects the batch like a conflict.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execa } from 'execa';
import type { OtaLayout } from './layout';
import type { MergePlan, MergeProblem } from './mergePlan';
import { STATE_FOLDER } from './transaction';

/** Lines of a failed check's output kept in the rejection message. */
const CHECK_OUTPUT_LINES = 20;

/**
 * Compiles each file named on stdin (JSON list) without writing bytecode and prints the
 * syntax errors as JSON. `compile()` is what `py_compile` calls, minus the `.pyc` write.
 */
const COMPILE_SCRIPT = `
import json, sys
errors = []
for path in json.load(sys.stdin):
    try:
        with open(path, "rb") as source:
            compile(source.read(), path, "exec", dont_inherit=True)
    except SyntaxError as error:
        errors.append({"path": path, "line": error.lineno, "message": error.msg})
    except ValueError as error:
        errors.append({"path": path, "line": None, "message": str(error)})
json.dump(errors, sys.stdout)
`;

/** Compiles the plan's `.py` files from the deposit; returns one problem per syntax error. */
export async function compileDeposited(layout: OtaLayout, plan: MergePlan, python: string): Promise<MergeProblem[]> {
	const sources = plan.files.filter((file) => file.path.endsWith('.py'));
	if (sources.length === 0) {
		return [];
	}
	const byAbsolute = new Map(sources.map((file) => [path.join(layout.deposit, ...file.path.split('/')), file.path]));
	// -I isolates from the user's environment; -S skips `site`, whose .pth files can cost
	// tens of milliseconds and are not needed to compile.
	const result = await execa(python, ['-I', '-S', '-c', COMPILE_SCRIPT], {
		input: JSON.stringify([...byAbsolute.keys()]),
		reject: false,
		env: { PYTHONUTF8: '1', PYTHONDONTWRITEBYTECODE: '1' },
	});
	if (result.exitCode !== 0) {
		throw new Error(`the syntax check with ${python} failed: ${result.stderr || result.shortMessage}`);
	}
	const errors = JSON.parse(result.stdout) as Array<{ path: string; line: number | null; message: string }>;
	return errors.map((error) => ({
		code: 'SYNTAX_ERROR',
		path: byAbsolute.get(error.path) ?? error.path,
		file: error.path,
		line: error.line ?? undefined,
		detail: error.message,
	}));
}

/**
 * Runs `command` (through the shell) in a staged copy of `main/` with the plan applied,
 * with `timeoutMs` as its limit. Returns a CHECK_FAILED problem, or undefined when it passes.
 * The staged copy is removed afterwards.
 */
export async function runCheckCommand(layout: OtaLayout, plan: MergePlan, command: string, timeoutMs: number, env: Record<string, string>): Promise<MergeProblem | undefined> {
	const staging = await fs.promises.mkdtemp(path.join(layout.root, STATE_FOLDER, 'staging-'));
	const staged = path.join(staging, 'main');
	try {
		await fs.promises.cp(layout.main, staged, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
		for (const deletion of plan.deletions) {
			await fs.promises.rm(path.join(staged, ...deletion.split('/')), { recursive: true, force: true });
		}
		for (const file of plan.files) {
			const target = path.join(staged, ...file.path.split('/'));
			await fs.promises.mkdir(path.dirname(target), { recursive: true });
			await fs.promises.copyFile(path.join(layout.deposit, ...file.path.split('/')), target);
		}
		const result = await execa(command, {
			shell: true,
			cwd: staged,
			env: { ...env, OTA_UPDATE_STAGED_MAIN: staged },
			all: true,
			reject: false,
			timeout: timeoutMs,
			stdin: 'ignore',
		});
		if (result.exitCode === 0 && !result.timedOut) {
			return undefined;
		}
		const tail = (result.all ?? '').split('\n').slice(-CHECK_OUTPUT_LINES).join('\n').trim();
		const reason = result.timedOut ? `timed out after ${timeoutMs} ms` : `exit code ${result.exitCode ?? result.signal}`;
		return { code: 'CHECK_FAILED', path: command, detail: tail === '' ? reason : `${reason}\n${tail}` };
	} finally {
		await fs.promises.rm(staging, { recursive: true, force: true });
	}
}
