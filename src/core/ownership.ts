/**
 * One supervisor per OTA root, and no orphaned programs. The owner lock is
 * `<root>/.ota-update/owner.json`, created exclusively; it records the owner's pid and the
 * pid's start time, so that a lock left by a dead supervisor (or one whose pid was reused)
 * is recognised as stale and taken over. The program record,
 * `<root>/.ota-update/program.json`, names the running program's process group, so that
 * a supervisor that died without stopping it lets the next one stop it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { processStartTime } from './processTree';
import { STATE_FOLDER } from './transaction';

export interface OwnerRecord {
	pid: number;
	/** Start time of the pid (from /proc), or undefined where /proc is missing. */
	startTime: string | undefined;
	hostname: string;
	/** Name of the owner for messages, such as "a VS Code window" or "ota-update run". */
	kind: string;
	since: string;
}

export class RootOwnedError extends Error {
	constructor(
		readonly root: string,
		readonly owner: OwnerRecord,
	) {
		super(`${root} is already supervised by ${owner.kind} (pid ${owner.pid} on ${owner.hostname}, since ${owner.since}); stop it first.`);
		this.name = 'RootOwnedError';
	}
}

/** True when the recorded process still runs: same pid and, where known, same start time. */
export function isSameProcessAlive(pid: number, startTime: string | undefined): boolean {
	try {
		process.kill(pid, 0);
	} catch (error) {
		return (error as NodeJS.ErrnoException).code === 'EPERM';
	}
	const current = processStartTime(pid);
	return startTime === undefined || current === undefined || current === startTime;
}

function stateFile(root: string, name: string): string {
	return path.join(root, STATE_FOLDER, name);
}

async function readRecord<T>(file: string): Promise<T | undefined> {
	try {
		return JSON.parse(await fs.promises.readFile(file, 'utf8')) as T;
	} catch {
		return undefined;
	}
}

/** The owner lock of one root, held from `acquire` to `release`. */
export class OwnerLock {
	private held = false;

	constructor(
		private readonly root: string,
		private readonly kind: string,
	) {}

	/** Takes the lock; throws `RootOwnedError` naming the owner when another live supervisor holds it. */
	async acquire(): Promise<void> {
		if (this.held) {
			return;
		}
		const file = stateFile(this.root, 'owner.json');
		await fs.promises.mkdir(path.dirname(file), { recursive: true });
		const record: OwnerRecord = {
			pid: process.pid,
			startTime: processStartTime(process.pid),
			hostname: os.hostname(),
			kind: this.kind,
			since: new Date().toISOString(),
		};
		for (let attempt = 0; attempt < 2; attempt++) {
			try {
				await fs.promises.writeFile(file, JSON.stringify(record) + '\n', { flag: 'wx' });
				this.held = true;
				return;
			} catch (error) {
				if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
					throw error;
				}
			}
			const owner = await readRecord<OwnerRecord>(file);
			const live = owner !== undefined && owner.hostname === os.hostname() && isSameProcessAlive(owner.pid, owner.startTime);
			if (owner !== undefined && owner.pid === process.pid && owner.startTime === record.startTime) {
				this.held = true; // this process already owns it through another session object
				return;
			}
			if (live) {
				throw new RootOwnedError(this.root, owner);
			}
			// NOTE: a lock written from another host (a shared network folder) is treated as
			// stale, because its pid cannot be checked from here.
			await fs.promises.rm(file, { force: true });
		}
		throw new Error(`Cannot take the lock ${file}: another supervisor took it at the same moment.`);
	}

	async release(): Promise<void> {
		if (!this.held) {
			return;
		}
		this.held = false;
		const file = stateFile(this.root, 'owner.json');
		const owner = await readRecord<OwnerRecord>(file);
		if (owner?.pid === process.pid) {
			await fs.promises.rm(file, { force: true });
		}
	}
}

export interface ProgramRecord {
	pid: number;
	startTime: string | undefined;
}

export async function writeProgramRecord(root: string, pid: number): Promise<void> {
	const file = stateFile(root, 'program.json');
	await fs.promises.mkdir(path.dirname(file), { recursive: true });
	const record: ProgramRecord = { pid, startTime: processStartTime(pid) };
	await fs.promises.writeFile(file, JSON.stringify(record) + '\n');
}

export async function clearProgramRecord(root: string): Promise<void> {
	await fs.promises.rm(stateFile(root, 'program.json'), { force: true });
}

/** Returns the program an earlier supervisor left running, if its record names a live process. */
export async function findLeftoverProgram(root: string): Promise<ProgramRecord | undefined> {
	const record = await readRecord<ProgramRecord>(stateFile(root, 'program.json'));
	if (record === undefined || record.pid === process.pid) {
		return undefined;
	}
	return isSameProcessAlive(record.pid, record.startTime) ? record : undefined;
}
