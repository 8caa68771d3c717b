import type { MergeProblem } from './mergePlan';
import type { OutputStream } from './program';

/**
 * Activity of a session. `stopped` means supervision is off. Every other state means
 * it is on and the deposit is watched.
 */
export type SessionState =
	| 'stopped'
	| 'starting'
	| 'running'
	| 'updating'
	/** The program got the stop signal and the engine waits for its tree to exit. */
	| 'stopping'
	/** The program exited with code 0 and waits for an update or a manual start. */
	| 'exited'
	/** The program failed and restarts after a delay. */
	| 'restarting'
	/** The program failed too often in a row, or cannot start; it waits for an update or a manual start. */
	| 'crashed'
	/** `main/<entry>` does not exist yet; a deposit that brings it starts the program. */
	| 'waitingForEntry'
	/** A batch is ready, but the program's lock file in `main/` postpones the update. */
	| 'waitingForProgram';

export type LogLevel = 'INFO' | 'WARNING' | 'ERROR' | 'DEBUG';

/** Reason the engine stopped the program. */
export type StopReason = 'update' | 'stop' | 'restart' | 'shutdown';

/** Engine events that go to the log, each with a code and the data to render it. */
export type Notice =
	| { code: 'SUPERVISOR_STARTED'; root: string; logFile: string | undefined; applyOnly: boolean }
	| { code: 'FOLDERS_CREATED'; folders: string[] }
	| { code: 'WATCHER_POLLING'; errorCode: string }
	| { code: 'DEPOSIT_SETTLED'; files: number }
	| { code: 'MARKER_MISSING'; marker: string; files: number }
	| { code: 'BATCH_CHANGED_DURING_STOP'; paths: string[] }
	| { code: 'UPDATE_APPLIED'; id: string; added: string[]; replaced: string[]; deleted: string[]; leftInDeposit: string[] }
	| { code: 'UPDATE_REJECTED'; problems: MergeProblem[] }
	| { code: 'MERGE_FAILED'; path: string | undefined; errorCode: string | undefined; message: string; undone: boolean }
	| { code: 'UPDATE_RECOVERED'; id: string; finished: number; restored: number; rollback: boolean }
	| { code: 'ROLLED_BACK'; id: string; reason: 'crash' | 'manual'; uptimeMs?: number; restored: number; rejected: number; rejectedFolder: string }
	| { code: 'WAITING_FOR_PROGRAM'; lockFile: string; maxWaitMs: number }
	| { code: 'PROGRAM_LOCK_TIMEOUT'; lockFile: string; maxWaitMs: number }
	| { code: 'LEFTOVER_STOPPED'; pid: number }
	| { code: 'REMAINS_STOPPED'; pid: number | undefined }
	| { code: 'UNSETTLED_LEFT'; paths: string[]; settleTimeMs: number }
	| { code: 'REJECTION_CLEARED' }
	| { code: 'NOTHING_TO_MERGE' }
	| { code: 'PROGRAM_STARTED'; pid: number | undefined; python: string; entry: string; args: string[] }
	| { code: 'PROGRAM_EXITED'; pid: number | undefined; exitCode: number | undefined; signal: string | undefined; uptimeMs: number }
	| { code: 'PROGRAM_STOPPED'; pid: number | undefined; reason: StopReason; exitCode: number | undefined; signal: string | undefined; killed: boolean; stopSignal: string; stopTimeoutMs: number }
	| { code: 'PROGRAM_SPAWN_FAILED'; python: string; message: string }
	| { code: 'RESTART_SCHEDULED'; delayMs: number; failures: number }
	| { code: 'CRASHED'; failures: number }
	| { code: 'ENTRY_MISSING'; entry: string; mainFolder: string }
	| { code: 'PYTHON_NOT_FOUND'; tried: string[] }
	| { code: 'SUPERVISION_STOPPED' }
	| { code: 'WATCHER_ERROR'; message: string };

export type NoticeCode = Notice['code'];

/** Level of each notice in the log file and the output channel. */
export function levelOf(notice: Notice): LogLevel {
	switch (notice.code) {
		case 'UPDATE_REJECTED':
		case 'MERGE_FAILED':
		case 'PROGRAM_SPAWN_FAILED':
		case 'CRASHED':
		case 'PYTHON_NOT_FOUND':
		case 'WATCHER_ERROR':
			return 'ERROR';
		case 'ROLLED_BACK':
		case 'PROGRAM_LOCK_TIMEOUT':
		case 'LEFTOVER_STOPPED':
		case 'REMAINS_STOPPED':
		case 'UNSETTLED_LEFT':
		case 'WATCHER_POLLING':
		case 'BATCH_CHANGED_DURING_STOP':
		case 'ENTRY_MISSING':
		case 'RESTART_SCHEDULED':
			return 'WARNING';
		case 'PROGRAM_EXITED':
			return notice.exitCode === 0 ? 'INFO' : 'ERROR';
		case 'PROGRAM_STOPPED':
			return notice.killed ? 'WARNING' : 'INFO';
		default:
			return 'INFO';
	}
}

export interface SessionEvents {
	state: (state: SessionState) => void;
	notice: (notice: Notice) => void;
	/** Files arrived in the deposit and wait for it to settle (true), or that wait ended (false). */
	depositWaiting: (waiting: boolean) => void;
	/** One line of the program's output. */
	output: (stream: OutputStream, line: string) => void;
}
