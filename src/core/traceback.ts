// Python tracebacks read from the program's stderr, one line at a time.
//
// The parser reads what CPython 3's `traceback` module and default `sys.excepthook` print.
// That is a "Traceback (most recent call last):" header, frames as `  File "…", line N, in
// name` with their source line, and the exception line. Around them come the `^` and `~`
// marker lines of 3.11 and later, the markers of chained exceptions, the caret line of a
// SyntaxError, and the `|` margins and `+---- N ----` separators of exception groups (3.11).
// The tests compare it with the output of the local python3.
import * as path from 'node:path';

/** One `File "…", line N, in name` entry, or the location line of a SyntaxError. */
export interface TracebackFrame {
	/** The file name as Python printed it: absolute, relative to the program's working
	 * folder, or a pseudo-name such as `<string>` or `<frozen importlib._bootstrap>`. */
	readonly file: string;
	/** Line number, counted from 1. */
	readonly line: number;
	/** Function name; absent on the location line of a SyntaxError. */
	readonly name?: string;
	/** The source line as printed, without its indentation. */
	readonly source?: string;
}

/** The link from an exception to the one printed before it in a chain: that one is its
 * `__cause__` (`raise … from …`) or its `__context__` (raised while handling it). */
export type ChainLink = 'cause' | 'context';

export interface PythonException {
	/** Exception type as printed, with its module unless that is `builtins` or `__main__`. */
	readonly type: string;
	/** The text after `Type: ` on the exception line; empty when Python printed the type alone.
	 * NOTE: lines after the exception line (the rest of a multi-line message, notes added
	 * with `add_note`) are not kept, because they cannot be distinguished from later output. */
	readonly message: string;
	/** Stack frames, outermost first, as printed. */
	readonly frames: readonly TracebackFrame[];
	/** Frames left out between the first and the last kept frames, to bound memory. */
	readonly omittedFrames: number;
	/** File, line and source text that a SyntaxError (or a subclass) points at. */
	readonly syntaxErrorLocation?: TracebackFrame;
	/** Absent on the first exception of a chain. */
	readonly chainedAs?: ChainLink;
	/** Sub-exceptions of an exception group, each one with its own chain. */
	readonly subExceptions?: readonly PythonTraceback[];
	/** Sub-exceptions that Python or this parser left out ("and N more exceptions"). */
	readonly omittedSubExceptions?: number;
}

export interface PythonTraceback {
	/** The exceptions in printed order: each one was raised while handling, or because of,
	 * the one before it, and the last is the one that reached the top. */
	readonly chain: readonly PythonException[];
	/** Exceptions left out at the start of a long chain, to bound memory. */
	readonly omittedExceptions: number;
}

// Limits that bound the parser's memory whatever the program prints. Python collapses only
// identical frames in a row ("[Previous line repeated N more times]"), so a deep recursion
// whose frames alternate prints every frame up to `sys.tracebacklimit`. It also prints every
// link of a chain built in a loop, and up to 15 sub-exceptions per group, nested up to 10 deep.

/** Outermost frames kept per exception: the program's entry point and its first calls. */
const HEAD_FRAMES = 8;
/** Innermost frames kept per exception: where the exception was raised. */
const TAIL_FRAMES = 64;
/** Exceptions kept per chain; the oldest ones are dropped first. */
const MAX_CHAIN_LENGTH = 8;
/** Sub-exceptions kept per group, the number that Python prints by default. */
const MAX_SUB_EXCEPTIONS = 15;
/** Nesting of groups that is parsed, the depth that Python prints by default. */
const MAX_GROUP_DEPTH = 10;
/** Exceptions kept inside the groups of one traceback, whatever their nesting. */
const MAX_GROUP_MEMBERS = 64;
/** Lengths at which stored texts are cut. A file name cut short no longer names a file, so
 * its frame is skipped when a frame in `main/` is looked for. */
const MAX_FILE_CHARS = 1024;
const MAX_NAME_CHARS = 256;
const MAX_SOURCE_CHARS = 256;
const MAX_MESSAGE_CHARS = 1024;
/** Lines after an exception line within which a chain marker still continues the chain.
 * A longer gap means the traceback is over, so a later chain starts on its own. */
const MAX_LINES_AFTER_EXCEPTION = 200;

const TRACEBACK_HEADER = 'Traceback (most recent call last):';
const GROUP_HEADER = 'Exception Group Traceback (most recent call last):';
const CAUSE_MARKER = 'The above exception was the direct cause of the following exception:';
const CONTEXT_MARKER = 'During handling of the above exception, another exception occurred:';

/** `  File "name", line N, in function`; without `, in …` it is a SyntaxError's location.
 * The file name is printed without escaping, so it runs to the last `", line N`. */
const FRAME_LINE = /^ {2}File "(.*)", line (\d+)(?:, in (.*))?$/;
/** A type name (dotted, possibly with `<locals>`) alone or followed by `: message`. */
const EXCEPTION_LINE = /^((?:[\p{L}\p{Nl}_]|<locals>)(?:[\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}.]|<locals>)*)(?:: (.*))?$/u;
/** A group member's line: two spaces per nesting level, the margin `|` (or `+` on the
 * header of an outermost group), a space and the text as it would be printed outside. */
const GROUP_CONTENT_LINE = /^((?: {2})+)([|+])(?: (.*))?$/;
/** Separator before a group's first sub-exception: `+-+---- 1 ----` after the group's indentation. */
const FIRST_SEPARATOR = /^((?: {2})*)\+-\+-+ (\S+) -+$/;
/** Separator before a later sub-exception: `+---- 2 ----`, indented one level deeper. */
const NEXT_SEPARATOR = /^((?: {2})+)\+-+ (\S+) -+$/;
/** Line that closes the last sub-exception of one or more groups. */
const CLOSING_LINE = /^((?: {2})+)\+-+$/;
/** Line that stands for the sub-exceptions past Python's `max_group_width`. */
const MORE_EXCEPTIONS_LINE = /^and (\d+) more exceptions?$/;
/** Color codes that Python 3.13 and later add when colors are forced (PYTHON_COLORS=1 or
 * FORCE_COLOR) even though stderr is a pipe. */
const ANSI_SEQUENCE = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;

interface MutableFrame {
	file: string;
	line: number;
	name?: string;
	source?: string;
}

/** An exception while it is parsed, with its frames split into a kept head and a tail
 * that is trimmed as it grows. */
class ExceptionBuilder {
	type = '';
	message = '';
	private readonly head: MutableFrame[] = [];
	private tail: MutableFrame[] = [];
	private droppedFrames = 0;
	syntaxErrorLocation: MutableFrame | undefined;
	isGroup = false;
	readonly subExceptions: ChainBuilder[] = [];
	omittedSubExceptions = 0;

	constructor(readonly chainedAs: ChainLink | undefined) {}

	addFrame(frame: MutableFrame): void {
		if (this.head.length < HEAD_FRAMES) {
			this.head.push(frame);
			return;
		}
		this.tail.push(frame);
		// Trimming in blocks keeps each frame's cost constant.
		if (this.tail.length >= 2 * TAIL_FRAMES) {
			this.droppedFrames += this.tail.length - TAIL_FRAMES;
			this.tail = this.tail.slice(-TAIL_FRAMES);
		}
	}

	toException(): PythonException {
		const keptTail = this.tail.slice(-TAIL_FRAMES);
		const exception: { -readonly [K in keyof PythonException]: PythonException[K] } = {
			type: this.type,
			message: this.message,
			frames: [...this.head, ...keptTail].map((frame) => ({ ...frame })),
			omittedFrames: this.droppedFrames + this.tail.length - keptTail.length,
		};
		if (this.syntaxErrorLocation !== undefined) {
			exception.syntaxErrorLocation = { ...this.syntaxErrorLocation };
		}
		if (this.chainedAs !== undefined) {
			exception.chainedAs = this.chainedAs;
		}
		if (this.isGroup) {
			exception.subExceptions = this.subExceptions.map((member) => member.toTraceback()).filter((member) => member.chain.length > 0);
			exception.omittedSubExceptions = this.omittedSubExceptions;
		}
		return exception;
	}
}

/** Counts the exceptions stored inside the groups of one traceback. */
interface GroupBudget {
	remaining: number;
}

/** The complete exceptions of one chain, oldest first. */
class ChainBuilder {
	readonly exceptions: ExceptionBuilder[] = [];
	omitted = 0;
	private lastAdded: ExceptionBuilder | undefined;

	/** `budget` is absent for the outermost chain, which is bounded by its length alone. */
	constructor(
		readonly groupBudget: GroupBudget,
		private readonly budget: GroupBudget | undefined,
	) {}

	add(exception: ExceptionBuilder): void {
		if (this.budget !== undefined) {
			if (this.budget.remaining <= 0) {
				this.omitted++;
				this.lastAdded = undefined;
				return;
			}
			this.budget.remaining--;
		}
		this.exceptions.push(exception);
		this.lastAdded = exception;
		if (this.exceptions.length > MAX_CHAIN_LENGTH) {
			this.exceptions.shift();
			this.omitted++;
		}
	}

	/** The exception added last, or undefined when it was left out, so that the
	 * sub-exceptions that follow it are not attached to an older one. */
	get last(): ExceptionBuilder | undefined {
		return this.lastAdded;
	}

	toTraceback(): PythonTraceback {
		return { chain: this.exceptions.map((exception) => exception.toException()), omittedExceptions: this.omitted };
	}
}

type LevelState =
	/** Outside any traceback. */
	| 'idle'
	/** After a header: frames, source lines and marker lines until the exception line. */
	| 'frames'
	/** After an exception line: a chain marker may follow. */
	| 'ended'
	/** After a chain marker: the next exception of the chain follows. */
	| 'linked';

/**
 * Parses the lines of one nesting level: the top level, or the text of one sub-exception of
 * a group with its margin removed. A sub-exception's level keeps one chain; the top level
 * starts a new chain at each traceback that does not continue the previous one.
 */
class LevelParser {
	private state: LevelState = 'idle';
	private pending: ExceptionBuilder | undefined;
	/** The frame that the next four-space line is the source of. */
	private frameAwaitingSource: MutableFrame | undefined;
	private nextLink: ChainLink | undefined;
	/** An exception line seen outside a traceback, which a chain marker right after it turns
	 * into the first exception of a chain: a `__cause__` that was never raised has no frames. */
	private frameless: ExceptionBuilder | undefined;
	private linesAfterException = 0;

	/**
	 * `chain` is the chain of a sub-exception, or undefined at the top level, where
	 * `startChain` creates one chain per traceback. `omissionTarget` is set for the level
	 * behind a `+---- ... ----` separator, which holds only "and N more exceptions".
	 */
	constructor(
		private chain: ChainBuilder | undefined,
		private readonly startChain: (() => ChainBuilder) | undefined,
		private readonly omissionTarget?: ExceptionBuilder,
	) {}

	get lastException(): ExceptionBuilder | undefined {
		return this.chain?.last;
	}

	get groupBudget(): GroupBudget | undefined {
		return this.chain?.groupBudget;
	}

	/** Set inside an exception group, where a bare exception line is a member without frames.
	 * At the top level, such a line may be any output. */
	private get isGroupMember(): boolean {
		return this.startChain === undefined;
	}

	push(line: string): void {
		if (this.omissionTarget !== undefined) {
			const more = MORE_EXCEPTIONS_LINE.exec(line);
			if (more !== null) {
				this.omissionTarget.omittedSubExceptions += Number(more[1]);
			}
			return;
		}

		if (line === TRACEBACK_HEADER || line === GROUP_HEADER) {
			this.beginException(line === GROUP_HEADER);
			return;
		}

		const frameMatch = FRAME_LINE.exec(line);
		if (frameMatch !== null && frameMatch[3] === undefined && this.state !== 'frames') {
			// A SyntaxError raised while compiling the entry script has no header.
			this.beginException(false);
		}
		switch (this.state) {
			case 'frames':
				this.pushInTraceback(line, frameMatch);
				return;
			case 'ended':
				this.pushAfterException(line);
				return;
			case 'linked':
				this.pushAfterMarker(line);
				return;
			case 'idle':
				this.pushOutside(line);
				return;
		}
	}

	private beginException(isGroup: boolean): void {
		const continuesChain = this.state === 'linked';
		const link = continuesChain ? this.nextLink : undefined;
		if (!continuesChain && this.startChain !== undefined) {
			this.chain = undefined;
		}
		this.pending = new ExceptionBuilder(link);
		this.pending.isGroup = isGroup;
		this.frameAwaitingSource = undefined;
		this.frameless = undefined;
		this.state = 'frames';
	}

	private pushInTraceback(line: string, frameMatch: RegExpExecArray | null): void {
		const pending = this.pending!;
		if (frameMatch !== null) {
			const frame: MutableFrame = { file: cut(frameMatch[1], MAX_FILE_CHARS), line: Number(frameMatch[2]) };
			if (frameMatch[3] === undefined) {
				pending.syntaxErrorLocation = frame;
			} else {
				frame.name = cut(frameMatch[3], MAX_NAME_CHARS);
				pending.addFrame(frame);
			}
			this.frameAwaitingSource = frame;
			return;
		}
		if (line.startsWith('    ')) {
			// The first four-space line after a frame is its source. Marker lines of `^` and `~`,
			// and the further lines of a statement that spans several (3.13), follow it.
			if (this.frameAwaitingSource !== undefined) {
				this.frameAwaitingSource.source = cut(line.slice(4), MAX_SOURCE_CHARS);
				this.frameAwaitingSource = undefined;
			}
			return;
		}
		if (line.startsWith('  ') || line.trim() === '') {
			// "[Previous line repeated N more times]" and other indented lines carry no frame.
			this.frameAwaitingSource = undefined;
			return;
		}
		const exceptionMatch = EXCEPTION_LINE.exec(line);
		if (exceptionMatch === null) {
			// A line at column 0 that is no exception line: the traceback was cut off, by
			// another writer or by the end of the process.
			this.pending = undefined;
			this.state = 'idle';
			this.pushOutside(line);
			return;
		}
		pending.type = cut(exceptionMatch[1], MAX_NAME_CHARS);
		pending.message = cut(exceptionMatch[2] ?? '', MAX_MESSAGE_CHARS);
		this.complete(pending);
	}

	private complete(exception: ExceptionBuilder): void {
		if (this.chain === undefined) {
			this.chain = this.startChain!();
		}
		this.chain.add(exception);
		this.pending = undefined;
		this.frameAwaitingSource = undefined;
		this.linesAfterException = 0;
		this.state = 'ended';
	}

	private pushAfterException(line: string): void {
		const link = chainMarker(line);
		if (link !== undefined) {
			this.nextLink = link;
			this.state = 'linked';
			return;
		}
		if (line.trim() !== '' && ++this.linesAfterException > MAX_LINES_AFTER_EXCEPTION) {
			this.state = 'idle';
			this.pushOutside(line);
		}
	}

	private pushAfterMarker(line: string): void {
		if (line.trim() === '') {
			return;
		}
		const exceptionMatch = EXCEPTION_LINE.exec(line);
		if (exceptionMatch !== null) {
			// The next exception of the chain was never raised, so it has no frames.
			const exception = new ExceptionBuilder(this.nextLink);
			exception.type = cut(exceptionMatch[1], MAX_NAME_CHARS);
			exception.message = cut(exceptionMatch[2] ?? '', MAX_MESSAGE_CHARS);
			this.complete(exception);
			return;
		}
		this.state = 'idle';
		this.pushOutside(line);
	}

	private pushOutside(line: string): void {
		if (line.trim() === '') {
			return;
		}
		const link = chainMarker(line);
		if (link !== undefined && this.frameless !== undefined) {
			this.chain = this.startChain?.() ?? this.chain;
			this.complete(this.frameless);
			this.frameless = undefined;
			this.nextLink = link;
			this.state = 'linked';
			return;
		}
		const exceptionMatch = EXCEPTION_LINE.exec(line);
		if (exceptionMatch === null) {
			this.frameless = undefined;
			return;
		}
		const exception = new ExceptionBuilder(undefined);
		exception.type = cut(exceptionMatch[1], MAX_NAME_CHARS);
		exception.message = cut(exceptionMatch[2] ?? '', MAX_MESSAGE_CHARS);
		if (this.isGroupMember) {
			this.complete(exception);
		} else {
			this.frameless = exception;
		}
	}
}

function chainMarker(line: string): ChainLink | undefined {
	if (line === CAUSE_MARKER) {
		return 'cause';
	}
	if (line === CONTEXT_MARKER) {
		return 'context';
	}
	return undefined;
}

/** Cuts `text` to at most `limit` characters without splitting a UTF-16 surrogate pair. */
function cut(text: string, limit: number): string {
	if (text.length <= limit) {
		return text;
	}
	const end = /[\uD800-\uDBFF]/.test(text[limit - 1]) ? limit - 1 : limit;
	return text.slice(0, end);
}

/**
 * Reads a program's stderr line by line and keeps the last complete Python traceback.
 * Other lines pass without effect, and memory stays bounded whatever the input.
 *
 * A traceback counts as complete from its first exception line on; when a chained
 * exception follows, the traceback grows to include it.
 */
export class TracebackParser {
	/** Parsers by group nesting level: index 0 is the top level, index k receives the lines
	 * with k levels of group margin. An outermost group prints its own frames one level in,
	 * so its level 1 is the top-level parser again. Null marks a level that is skipped. */
	private levels: Array<LevelParser | null>;
	private latest: ChainBuilder | undefined;

	constructor() {
		this.levels = [this.createTopLevel()];
	}

	private createTopLevel(): LevelParser {
		return new LevelParser(undefined, () => {
			const budget: GroupBudget = { remaining: MAX_GROUP_MEMBERS };
			const chain = new ChainBuilder(budget, undefined);
			this.latest = chain;
			return chain;
		});
	}

	/** The last complete traceback, or undefined when none has been seen since the start
	 * or the last `clear()`. */
	get last(): PythonTraceback | undefined {
		return this.latest === undefined ? undefined : this.latest.toTraceback();
	}

	/** Forgets the last traceback and any traceback in progress. */
	clear(): void {
		this.latest = undefined;
		this.levels = [this.createTopLevel()];
	}

	/** Parses one line of stderr, without its line break. */
	push(rawLine: string): void {
		let line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
		if (line.includes('\x1b')) {
			line = line.replace(ANSI_SEQUENCE, '');
		}
		const top = this.levels[0]!;

		if (this.levels.length === 1) {
			const content = GROUP_CONTENT_LINE.exec(line);
			if (content !== null && content[1].length === 2 && content[2] === '+' && content[3] === GROUP_HEADER) {
				top.push(GROUP_HEADER);
				this.levels.push(top);
				return;
			}
			top.push(line);
			return;
		}

		if (this.pushGroupLine(line)) {
			return;
		}
		// A line without margin ends every open group.
		this.levels.length = 1;
		top.push(line);
	}

	/** Routes a line inside an exception group; returns false for a line without margin. */
	private pushGroupLine(line: string): boolean {
		const first = FIRST_SEPARATOR.exec(line);
		if (first !== null) {
			this.openSubException(first[1].length / 2, first[2]);
			return true;
		}
		const next = NEXT_SEPARATOR.exec(line);
		if (next !== null) {
			this.openSubException(next[1].length / 2 - 1, next[2]);
			return true;
		}
		const closing = CLOSING_LINE.exec(line);
		if (closing !== null) {
			const memberDepth = closing[1].length / 2;
			this.levels.length = Math.min(this.levels.length, memberDepth);
			return true;
		}
		const content = GROUP_CONTENT_LINE.exec(line);
		if (content === null) {
			return false;
		}
		const depth = content[1].length / 2;
		if (depth < this.levels.length) {
			this.levels.length = depth + 1;
			this.levels[depth]?.push(content[3] ?? '');
		}
		return true;
	}

	/** Starts the level of a group's next sub-exception; `groupDepth` is the level of the
	 * group's own lines, and the sub-exception's lines are one level deeper. */
	private openSubException(groupDepth: number, title: string): void {
		// Separators deeper than MAX_GROUP_DEPTH are dropped, which also bounds `levels`.
		if (groupDepth < 1 || groupDepth >= this.levels.length || groupDepth > MAX_GROUP_DEPTH) {
			return;
		}
		this.levels.length = groupDepth + 1;
		const groupLevel = this.levels[groupDepth];
		const group = groupLevel?.lastException;
		const budget = groupLevel?.groupBudget;
		let member: LevelParser | null = null;
		if (groupLevel !== null && group !== undefined && budget !== undefined && groupDepth < MAX_GROUP_DEPTH) {
			group.isGroup = true;
			if (title === '...') {
				member = new LevelParser(undefined, undefined, group);
			} else if (group.subExceptions.length >= MAX_SUB_EXCEPTIONS) {
				group.omittedSubExceptions++;
			} else {
				const chain = new ChainBuilder(budget, budget);
				group.subExceptions.push(chain);
				member = new LevelParser(chain, undefined);
			}
		}
		this.levels.push(member);
	}
}

/** Parses `lines` as a whole and returns the last complete traceback in them. */
export function parseTraceback(lines: Iterable<string>): PythonTraceback | undefined {
	const parser = new TracebackParser();
	for (const line of lines) {
		parser.push(line);
	}
	return parser.last;
}

/** A frame found in a folder, with the absolute path of its file. */
export interface FrameInFolder {
	readonly frame: TracebackFrame;
	/** Absolute path of the frame's file, under the first of the folders searched. */
	readonly path: string;
	/** The exception whose traceback or SyntaxError location contains the frame. */
	readonly exception: PythonException;
}

/**
 * Finds the innermost frame whose file lies inside `folder`: the location of a SyntaxError
 * first, then the frames from the innermost outwards. The search starts with the exception
 * that reached the top, and in a group with its sub-exceptions before its own frames. Then
 * it goes through the earlier exceptions of the chain, latest first.
 *
 * Relative file names are resolved against the first folder. Further folders are other
 * names of the same folder, such as its real path, which Python reports when a symbolic
 * link leads to the folder. A file found under one of them is reported under the first.
 */
export function innermostFrameIn(traceback: PythonTraceback, folder: string | readonly string[]): FrameInFolder | undefined {
	const folders = typeof folder === 'string' ? [folder] : folder;
	if (folders.length === 0) {
		return undefined;
	}
	for (let index = traceback.chain.length - 1; index >= 0; index--) {
		const found = innermostFrameOfException(traceback.chain[index], folders);
		if (found !== undefined) {
			return found;
		}
	}
	return undefined;
}

function innermostFrameOfException(exception: PythonException, folders: readonly string[]): FrameInFolder | undefined {
	for (const member of exception.subExceptions ?? []) {
		const found = innermostFrameIn(member, folders);
		if (found !== undefined) {
			return found;
		}
	}
	const candidates = [...exception.frames];
	if (exception.syntaxErrorLocation !== undefined) {
		candidates.push(exception.syntaxErrorLocation);
	}
	for (let index = candidates.length - 1; index >= 0; index--) {
		const filePath = pathInFolders(candidates[index].file, folders);
		if (filePath !== undefined) {
			return { frame: candidates[index], path: filePath, exception };
		}
	}
	return undefined;
}

/** Returns the absolute path of `file` under `folders[0]`, or undefined when it lies in none
 * of `folders` or is a pseudo-name such as `<string>`. */
export function pathInFolders(file: string, folders: readonly string[]): string | undefined {
	if (file === '' || (file.startsWith('<') && file.endsWith('>'))) {
		return undefined;
	}
	const absolute = path.resolve(folders[0], file);
	for (const folder of folders) {
		const relative = path.relative(path.resolve(folder), absolute);
		const outside = relative === '' || relative === '..' || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative);
		if (!outside) {
			return path.join(folders[0], relative);
		}
	}
	return undefined;
}

/** A `File "path", line N` reference in a text, with offsets into that text. */
export interface FileReference {
	/** Offset of `File`. */
	readonly start: number;
	/** Offset just past the line number. */
	readonly end: number;
	/** The file name between the quotes, as printed. */
	readonly path: string;
	/** Line number, counted from 1. */
	readonly line: number;
}

/** `File "path", line N`, as in tracebacks and in faulthandler's dumps, with the color
 * codes that Python 3.13 may put around the name and the number. Lazy, so that a line
 * with two references yields both; a reference never spans a line break. */
const FILE_REFERENCE = /File (?:\x1b\[[0-9;]*m)*"(.+?)"(?:\x1b\[[0-9;]*m)*, line (?:\x1b\[[0-9;]*m)*(\d+)/g;

/** Finds every `File "path", line N` reference in `text`, which may hold several lines.
 * References to line 0, which Python prints when it has no line number, are left out. */
export function findFileReferences(text: string): FileReference[] {
	const references: FileReference[] = [];
	for (const match of text.matchAll(FILE_REFERENCE)) {
		const line = Number(match[2]);
		if (line >= 1 && Number.isSafeInteger(line)) {
			references.push({ start: match.index, end: match.index + match[0].length, path: match[1], line });
		}
	}
	return references;
}
