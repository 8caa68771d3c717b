import type { MergeProblem } from './mergePlan';
import type { Notice, SessionState } from './events';

/**
 * A message template function: `{0}`, `{1}` … are replaced by the arguments. The headless
 * command and the log file use `english`; the extension passes `vscode.l10n.t`, so that a
 * translation bundle applies to the same templates.
 */
export type Translate = (template: string, ...args: Array<string | number | boolean>) => string;

export const english: Translate = (template, ...args) =>
	template.replace(/\{(\d+)\}/g, (whole, index: string) => {
		const value = args[Number(index)];
		return value === undefined ? whole : String(value);
	});

/** Shows a path on one log line: control characters (a newline in a name) are escaped. */
function shown(file: string): string {
	return file.replace(/[\u0000-\u001f\u007f]/g, (character) => `\\x${character.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Quotes a command-line argument when it contains spaces or quotes, as a shell would need. */
function quoted(argument: string): string {
	return /^[\w@%+=:,./-]+$/.test(argument) ? argument : `'${argument.replace(/'/g, `'\\''`)}'`;
}

function list(paths: readonly string[], limit = 10): string {
	const shownPaths = paths.slice(0, limit).map(shown).join(', ');
	return paths.length > limit ? `${shownPaths} (+${paths.length - limit})` : shownPaths;
}

/** Describes one merge conflict: which path, what is wrong, and how to fix it. */
export function describeProblem(problem: MergeProblem, t: Translate): string {
	const file = shown(problem.path);
	switch (problem.code) {
		case 'FILE_MEETS_FOLDER':
			return t('deposit/{0} is a file but main/{0} is a folder: to replace the folder, list {0} in deposit/.ota-delete; otherwise rename one of them.', file);
		case 'FOLDER_MEETS_FILE':
			return t('deposit/{0} is a folder but main/{0} is a file: to replace the file, list {0} in deposit/.ota-delete; otherwise rename one of them.', file);
		case 'SYMLINK_IN_DEPOSIT':
			return t('deposit/{0} is a symbolic link: upload the file itself instead of a link.', file);
		case 'SPECIAL_FILE_IN_DEPOSIT':
			return t('deposit/{0} is not a regular file (a pipe, socket or device): remove it from the deposit.', file);
		case 'SYMLINK_IN_MAIN':
			return t('main/{0} is a symbolic link: replace it with a regular file by hand, or remove deposit/{0}.', file);
		case 'SPECIAL_FILE_IN_MAIN':
			return t('main/{0} is not a regular file (a pipe, socket or device): remove it by hand, or remove deposit/{0}.', file);
		case 'OUTSIDE_MAIN':
			return t('main/{0} is a link that leads outside main/: merging deposit/{0} would write outside main/; move those files into a real folder.', file);
		case 'INVALID_DELETION':
			return t('The deletion list deposit/.ota-delete names "{0}", which is not a relative path inside main/, or leads through a link or a file in main/: fix or remove that line.', file);
		case 'SYNTAX_ERROR':
			return t('{0}:{1}: syntax error: {2}. Fix the file and upload it again, or remove it from the deposit.', problem.file ?? `deposit/${file}`, problem.line ?? '?', problem.detail ?? '');
		case 'CHECK_FAILED':
			return t('The check command "{0}" failed on the staged update: {1}', file, problem.detail ?? '');
	}
}

function exitStatus(exitCode: number | undefined, signal: string | undefined, t: Translate): string {
	return signal !== undefined ? t('signal {0}', signal) : t('code {0}', exitCode ?? '?');
}

function seconds(ms: number): string {
	return (ms / 1000).toFixed(1);
}

/** Renders a notice as one log line (or several, for a rejected batch). */
export function describeNotice(notice: Notice, t: Translate): string {
	switch (notice.code) {
		case 'SUPERVISOR_STARTED':
			return notice.applyOnly
				? t('Applying the deposit of {0} without running the program; log file {1}', notice.root, notice.logFile ?? '-')
				: t('Supervising {0}; log file {1}', notice.root, notice.logFile ?? '-');
		case 'FOLDERS_CREATED':
			return t('Created {0}', notice.folders.join(', '));
		case 'WATCHER_POLLING':
			return t('The file watcher failed ({0}); watching the deposit by polling instead. Raising fs.inotify.max_user_watches restores native watching.', notice.errorCode);
		case 'DEPOSIT_SETTLED':
			return t('Deposit settled: {0} entries to check and merge', notice.files);
		case 'MARKER_MISSING':
			return t('Deposit settled, waiting for the marker file {0} before merging', notice.marker);
		case 'BATCH_CHANGED_DURING_STOP':
			return t('Deposit changed while the program stopped ({0}); nothing merged, restarting the previous version and waiting for the upload to settle', list(notice.paths));
		case 'UPDATE_APPLIED':
			return [
				t('Update {0} applied: {1} added, {2} replaced, {3} deleted', notice.id, notice.added.length, notice.replaced.length, notice.deleted.length),
				...notice.added.map((file) => t('  added    main/{0}', shown(file))),
				...notice.replaced.map((file) => t('  replaced main/{0}', shown(file))),
				...notice.deleted.map((file) => t('  deleted  main/{0} (kept in the backup)', shown(file))),
				...notice.leftInDeposit.map((file) => t('  changed during the merge, left in the deposit: {0}', shown(file))),
			].join('\n');
		case 'UPDATE_REJECTED':
			return [
				t('Update rejected: nothing was moved and the program was not touched. Fix the following; the update is tried again when the deposit changes:'),
				...notice.problems.map((problem) => `  ${describeProblem(problem, t)}`),
			].join('\n');
		case 'MERGE_FAILED':
			if (!notice.undone) {
				return t('Merge failed at {0}: {1}. Undoing it failed too; the next start finishes the update from its journal.', notice.path ?? '?', notice.message);
			}
			return t('Merge failed at {0}: {1}. The update was undone: main/ is as before and the files are back in the deposit. Fix the cause (free space, permissions) and apply again (Apply Deposit Now, or ota-update apply).', notice.path ?? '?', notice.message);
		case 'UPDATE_RECOVERED':
			return notice.rollback
				? t('Finished the rollback of update {0}, which an earlier supervisor left unfinished', notice.id)
				: t('Finished update {0}, which an earlier supervisor left unfinished: {1} file(s) moved into place, {2} restored from the backup because the deposit copy changed', notice.id, notice.finished, notice.restored);
		case 'ROLLED_BACK':
			return notice.reason === 'crash'
				? t('The new version failed {0} s after update {1}; rolled back: {2} file(s) restored, {3} moved to {4}', seconds(notice.uptimeMs ?? 0), notice.id, notice.restored, notice.rejected, notice.rejectedFolder)
				: t('Rolled back update {0}: {1} file(s) restored, {2} moved to {3}', notice.id, notice.restored, notice.rejected, notice.rejectedFolder);
		case 'WAITING_FOR_PROGRAM':
			return t('An update is ready but the program holds {0}; waiting until it removes the file (at most {1} s)', notice.lockFile, seconds(notice.maxWaitMs));
		case 'PROGRAM_LOCK_TIMEOUT':
			return t('The program still holds {0} after {1} s; updating anyway', notice.lockFile, seconds(notice.maxWaitMs));
		case 'REJECTION_CLEARED':
			return t('The rejected files are gone from the deposit; nothing waits to be merged');
		case 'UNSETTLED_LEFT':
			return t('Left in the deposit because they changed within the last {0} s and may still be uploading: {1}. Apply again once the upload has finished.', seconds(notice.settleTimeMs), list(notice.paths));
		case 'REMAINS_STOPPED':
			return t('Stopped the processes that program pid {0} left running when it exited', notice.pid ?? '?');
		case 'LEFTOVER_STOPPED':
			return t('Stopped program pid {0}, left running by an earlier supervisor that ended without stopping it', notice.pid);
		case 'NOTHING_TO_MERGE':
			return t('Deposit is empty: nothing to merge');
		case 'PROGRAM_STARTED':
			return t('Started {0} (pid {1}) with {2}', [notice.entry, ...notice.args].map(quoted).join(' '), notice.pid ?? '?', notice.python);
		case 'PROGRAM_EXITED':
			return notice.exitCode === 0
				? t('Program (pid {0}) exited with code 0 after {1} s; it starts again with the next update or a manual start', notice.pid ?? '?', seconds(notice.uptimeMs))
				: t('Program (pid {0}) exited with {1} after {2} s', notice.pid ?? '?', exitStatus(notice.exitCode, notice.signal, t), seconds(notice.uptimeMs));
		case 'PROGRAM_STOPPED': {
			const how = notice.killed
				? t('killed with SIGKILL: a process of its tree was still running {0} s after {1}', seconds(notice.stopTimeoutMs), notice.stopSignal)
				: t('stopped with {0}', notice.stopSignal);
			return t('Program (pid {0}) {1} for {2}; it ended with {3}', notice.pid ?? '?', how, notice.reason, exitStatus(notice.exitCode, notice.signal, t));
		}
		case 'PROGRAM_SPAWN_FAILED':
			return t('Cannot start {0}: {1}', notice.python, notice.message);
		case 'RESTART_SCHEDULED':
			return t('Restarting in {0} s (failure {1} in a row)', seconds(notice.delayMs), notice.failures);
		case 'CRASHED':
			return t('The program failed {0} times in a row, each soon after it started; not restarting until the next update or a manual start', notice.failures);
		case 'ENTRY_MISSING':
			return t('{0} does not exist in {1} yet: put it in the deposit and it will start after the merge', notice.entry, notice.mainFolder);
		case 'PYTHON_NOT_FOUND':
			return notice.tried.length === 1
				? t('The interpreter {0} does not exist or is not an executable file: correct pythonOta.pythonPath, or select another interpreter', notice.tried[0])
				: t('No Python interpreter found (tried {0}): set pythonOta.pythonPath to the interpreter\'s path, or install python3', notice.tried.join(', '));
		case 'SUPERVISION_STOPPED':
			return t('Supervision stopped: the deposit is no longer watched');
		case 'WATCHER_ERROR':
			return t('File watcher error: {0}', notice.message);
	}
}

/** Short name of a state, as the status bar and the headless command show it. */
export function describeState(state: SessionState, t: Translate): string {
	switch (state) {
		case 'stopped':
			return t('stopped');
		case 'starting':
			return t('starting');
		case 'running':
			return t('running');
		case 'updating':
			return t('updating');
		case 'stopping':
			return t('stopping');
		case 'exited':
			return t('exited');
		case 'restarting':
			return t('restarting');
		case 'crashed':
			return t('crashed');
		case 'waitingForEntry':
			return t('waiting for entry file');
		case 'waitingForProgram':
			return t('update waiting for the program');
	}
}
