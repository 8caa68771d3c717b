import * as fs from 'node:fs';
import * as path from 'node:path';
import pMap from 'p-map';
import * as vscode from 'vscode';
import { FS_CONCURRENCY } from '../core/fsPaths';
import { findFileReferences, innermostFrameIn, pathInFolders, type PythonTraceback, type TracebackFrame } from '../core/traceback';

const t = vscode.l10n.t;

/** Source of the diagnostics in the Problems panel. */
const DIAGNOSTIC_SOURCE = 'Python OTA Update';
/** References turned into links per document, the newest ones. An Output document contains
 * at most the channel's log, but a program that prints tracebacks in a loop would
 * otherwise cost a file check and a link decoration for each of thousands of frames. */
const MAX_LINKS_PER_DOCUMENT = 5000;
/** Outer frames listed with a diagnostic, innermost first. */
const MAX_RELATED_FRAMES = 20;

/**
 * Registers the provider that turns `File "path", line N` in the Output panel into links
 * that open the file at that line. It serves every output channel, because Python
 * tracebacks read the same in any of them.
 */
export function registerTracebackLinks(context: vscode.ExtensionContext): void {
	context.subscriptions.push(vscode.languages.registerDocumentLinkProvider({ scheme: 'output' }, new TracebackLinkProvider()));
}

class TracebackLinkProvider implements vscode.DocumentLinkProvider {
	async provideDocumentLinks(document: vscode.TextDocument, token: vscode.CancellationToken): Promise<vscode.DocumentLink[]> {
		const text = document.getText();
		if (!text.includes('File ')) {
			return [];
		}
		// Relative names are left out: the Output panel does not show the folder they are
		// relative to. Python reports the entry script and the modules beside it with
		// absolute paths.
		const references = findFileReferences(text)
			.filter((reference) => path.isAbsolute(reference.path))
			.slice(-MAX_LINKS_PER_DOCUMENT);
		const paths = [...new Set(references.map((reference) => reference.path))];
		const existing = new Set<string>();
		await pMap(paths, async (file) => {
			if (!token.isCancellationRequested && (await isFile(file))) {
				existing.add(file);
			}
		}, { concurrency: FS_CONCURRENCY });
		if (token.isCancellationRequested) {
			return [];
		}

		return references
			.filter((reference) => existing.has(reference.path))
			.map((reference) => {
				const range = new vscode.Range(document.positionAt(reference.start), document.positionAt(reference.end));
				const link = new vscode.DocumentLink(range, fileAtLine(reference.path, reference.line));
				link.tooltip = t('Open {0} at line {1}', path.basename(reference.path), reference.line);
				return link;
			});
	}
}

async function isFile(file: string): Promise<boolean> {
	try {
		return (await fs.promises.stat(file)).isFile();
	} catch {
		return false;
	}
}

/** Returns a file URI that VS Code's opener opens with the cursor on `line`, because the
 * opener reads the selection from a fragment `L<line>`. */
function fileAtLine(file: string, line: number): vscode.Uri {
	return vscode.Uri.file(file).with({ fragment: `L${line}` });
}

/**
 * Builds the Problems-panel entry for a crash: an error at the innermost frame of
 * `traceback` in `mainFolder`, with the exception's type and message, and the outer frames
 * of that exception in `mainFolder` as related locations. Returns no entry when no frame
 * lies in `mainFolder`.
 */
export function tracebackDiagnostics(traceback: PythonTraceback, mainFolder: string): Array<[vscode.Uri, vscode.Diagnostic[]]> {
	const folders = namesOfFolder(mainFolder);
	const found = innermostFrameIn(traceback, folders);
	if (found === undefined) {
		return [];
	}
	const { exception, frame } = found;
	const message = exception.message === '' ? exception.type : t('{0}: {1}', exception.type, exception.message);
	const diagnostic = new vscode.Diagnostic(wholeLine(frame.line), message, vscode.DiagnosticSeverity.Error);
	diagnostic.source = DIAGNOSTIC_SOURCE;

	const related: vscode.DiagnosticRelatedInformation[] = [];
	for (const outer of outerFrames(exception.frames, frame)) {
		const outerPath = pathInFolders(outer.file, folders);
		if (outerPath !== undefined && related.length < MAX_RELATED_FRAMES) {
			const location = new vscode.Location(vscode.Uri.file(outerPath), wholeLine(outer.line));
			related.push(new vscode.DiagnosticRelatedInformation(location, t('Traceback frame in {0}', outer.name ?? '?')));
		}
	}
	if (related.length > 0) {
		diagnostic.relatedInformation = related;
	}
	return [[vscode.Uri.file(found.path), [diagnostic]]];
}

/** Returns the frames outside `frame`, innermost first. A SyntaxError's location is not
 * among `frames`, so then every frame is outside it. */
function outerFrames(frames: readonly TracebackFrame[], frame: TracebackFrame): TracebackFrame[] {
	const index = frames.indexOf(frame);
	return (index === -1 ? [...frames] : frames.slice(0, index)).reverse();
}

/**
 * Returns the range of a whole line, counted from 1. The editor clamps the end to the line's
 * length. Python prints line 0 for some errors and any number a program chooses, so the
 * line is kept within what a range accepts.
 */
function wholeLine(line: number): vscode.Range {
	const index = Math.min(Math.max(0, line - 1), MAX_LINE_INDEX);
	return new vscode.Range(index, 0, index, Number.MAX_SAFE_INTEGER);
}

/** The largest line index VS Code's positions take: a 32-bit signed integer. */
const MAX_LINE_INDEX = 2 ** 31 - 1;

/** Returns `folder` and, when it differs, its real path. Python reports files under the
 * real path of its working folder when a symbolic link leads to it. */
function namesOfFolder(folder: string): string[] {
	try {
		const realPath = fs.realpathSync.native(folder);
		return realPath === folder ? [folder] : [folder, realPath];
	} catch {
		return [folder];
	}
}
