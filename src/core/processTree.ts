import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';

/**
 * Ends a program together with everything it started. The program runs as the leader of
 * its own process group, so one `kill(-pgid)` reaches a wrapper script, its interpreter
 * and their children. Descendants that moved to a group or session of their own are
 * found through the parent links in `/proc` and signalled one by one. Each is recorded
 * with its start time before the first signal. So it is still found after its parent
 * dies and it is re-parented, and a recycled pid is never signalled.
 *
 * NOTE: a process that forks twice and lets the middle process exit leaves the tree
 * before any stop begins; only cgroups (systemd's KillMode=control-group) can find it.
 * On systems without `/proc` (macOS) only the process group is signalled.
 */

/** Interval of the `/proc` scan while waiting for a stopped tree to exit: frequent enough
 * that an update is not slowed, rare enough to cost nothing measurable. */
const EXIT_POLL_INTERVAL_MS = 25;
/** How long to wait for the kernel to reap processes after SIGKILL before giving up. */
const KILL_REAP_TIMEOUT_MS = 3000;

interface ProcStat {
	ppid: number;
	/** Process group id. */
	pgrp: number;
	state: string;
	startTime: string;
}

function readProcStat(pid: number): ProcStat | undefined {
	let text: string;
	try {
		text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
	} catch {
		return undefined;
	}
	// The command name is in parentheses and may itself hold spaces or parentheses.
	const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
	return { state: fields[0], ppid: Number(fields[1]), pgrp: Number(fields[2]), startTime: fields[19] };
}

/** Returns the start time of a process in clock ticks since boot, from /proc; undefined if unknown. */
export function processStartTime(pid: number): string | undefined {
	return readProcStat(pid)?.startTime;
}

function listProcesses(): Map<number, ProcStat> {
	const processes = new Map<number, ProcStat>();
	for (const name of fs.readdirSync('/proc')) {
		const pid = Number(name);
		if (!Number.isInteger(pid)) {
			continue;
		}
		const stat = readProcStat(pid);
		if (stat !== undefined) {
			processes.set(pid, stat);
		}
	}
	return processes;
}

const hasProc = process.platform === 'linux' && fs.existsSync('/proc/self/stat');

function sendSignal(target: number, signal: NodeJS.Signals): void {
	try {
		process.kill(target, signal);
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code !== 'ESRCH') {
			throw error;
		}
	}
}

/** The tree of one program: its process group plus every descendant seen so far. */
export class ProcessTree {
	/** pid → start time, for every process seen in the tree. */
	private readonly members = new Map<number, string>();

	constructor(readonly rootPid: number) {
		this.refresh();
	}

	/** Adds the descendants of every member still alive (and of the root). */
	/** Adds new descendants; returns the process list it read, for the caller to reuse. */
	refresh(): Map<number, ProcStat> {
		if (!hasProc) {
			return new Map();
		}
		const processes = listProcesses();
		const children = new Map<number, number[]>();
		for (const [pid, stat] of processes) {
			const siblings = children.get(stat.ppid) ?? [];
			siblings.push(pid);
			children.set(stat.ppid, siblings);
		}
		const queue = [this.rootPid, ...this.aliveMembers(processes)];
		for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
			for (const child of children.get(next) ?? []) {
				if (!this.members.has(child)) {
					this.members.set(child, processes.get(child)!.startTime);
					queue.push(child);
				}
			}
		}
		const root = processes.get(this.rootPid);
		if (root !== undefined && !this.members.has(this.rootPid)) {
			this.members.set(this.rootPid, root.startTime);
		}
		return processes;
	}

	private aliveMembers(processes = listProcesses()): number[] {
		const alive: number[] = [];
		for (const [pid, startTime] of this.members) {
			const stat = processes.get(pid);
			if (stat !== undefined && stat.startTime === startTime && stat.state !== 'Z') {
				alive.push(pid);
			}
		}
		return alive;
	}

	/** True while the process group or any recorded descendant is alive. */
	isAlive(processes?: Map<number, ProcStat>): boolean {
		if (hasProc) {
			processes ??= listProcesses();
			return this.aliveMembers(processes).length > 0 || this.groupHasLiveMember(processes);
		}
		return this.groupExists();
	}

	/**
	 * Looks for a group member that is not a zombie. `kill(-pgid, 0)` also succeeds when
	 * every member is a zombie. An orphan stays a zombie as long as init does not reap it,
	 * which can be for good when the supervisor is PID 1 of a container. Counting zombies
	 * would make a stopped program look alive until SIGKILL and the reap timeout.
	 */
	private groupHasLiveMember(processes: Map<number, ProcStat>): boolean {
		for (const stat of processes.values()) {
			if (stat.pgrp === this.rootPid && stat.state !== 'Z') {
				return true;
			}
		}
		return false;
	}

	private groupExists(): boolean {
		try {
			process.kill(-this.rootPid, 0);
			return true;
		} catch {
			return false;
		}
	}

	signal(signal: NodeJS.Signals): void {
		if (process.platform === 'win32') {
			// Windows has no signals: taskkill /T ends the tree, /F without asking.
			const force = signal === 'SIGKILL' ? ['/F'] : [];
			spawnSync('taskkill', ['/PID', String(this.rootPid), '/T', ...force], { stdio: 'ignore', windowsHide: true });
			return;
		}
		const processes = this.refresh();
		sendSignal(-this.rootPid, signal);
		// Members still in the group already got the signal; a second SIGTERM arriving while
		// Python runs its handler or shuts down would end it with the default action.
		for (const pid of this.aliveMembers(processes)) {
			if (processes.get(pid)?.pgrp !== this.rootPid) {
				sendSignal(pid, signal);
			}
		}
	}
}

export interface StopOutcome {
	/** True when SIGKILL was needed because the tree outlived the stop timeout. */
	killed: boolean;
	durationMs: number;
}

function delay(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitForExit(tree: ProcessTree, timeoutMs: number, rootExited?: Promise<unknown>): Promise<boolean> {
	const deadline = Date.now() + timeoutMs;
	if (rootExited !== undefined) {
		// Most programs exit with their children; waiting on the exit event avoids a poll's delay.
		let timer: NodeJS.Timeout | undefined;
		await Promise.race([rootExited, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
		clearTimeout(timer);
	}
	for (;;) {
		if (!tree.isAlive(tree.refresh())) {
			return true;
		}
		if (Date.now() >= deadline) {
			return false;
		}
		await delay(Math.min(EXIT_POLL_INTERVAL_MS, Math.max(1, deadline - Date.now())));
	}
}

/**
 * Sends `signal` to the whole tree, waits up to `timeoutMs` for every member to exit,
 * then sends SIGKILL to whatever is left. `rootExited`, when given, settles when the
 * tree's root process has exited.
 */
export async function stopTree(tree: ProcessTree, signal: NodeJS.Signals, timeoutMs: number, rootExited?: Promise<unknown>): Promise<StopOutcome> {
	const started = Date.now();
	tree.signal(signal);
	if (await waitForExit(tree, timeoutMs, rootExited)) {
		return { killed: false, durationMs: Date.now() - started };
	}
	tree.signal('SIGKILL');
	await waitForExit(tree, KILL_REAP_TIMEOUT_MS);
	return { killed: true, durationMs: Date.now() - started };
}

/** Synchronous last resort for process exit handlers: SIGKILL to the whole tree. */
export function killTreeNow(tree: ProcessTree): void {
	tree.signal('SIGKILL');
}
