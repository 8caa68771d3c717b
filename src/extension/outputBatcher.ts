import type * as vscode from 'vscode';

/** How often queued program lines are handed to the output channel. */
const FLUSH_INTERVAL_MS = 100;
/** Lines queued between two flushes. Lines past this are counted but not shown, so a
 * program that floods its output cannot slow the editor. The log file gets every line. */
const MAX_QUEUED_LINES = 2000;

type Level = 'info' | 'warn' | 'error';

/**
 * Feeds the program's output to a LogOutputChannel in batches. A timer is armed only while
 * lines are queued, so a quiet program costs nothing.
 */
export class OutputBatcher implements vscode.Disposable {
	private queue: Array<{ level: Level; text: string }> = [];
	private dropped = 0;
	private timer: NodeJS.Timeout | undefined;

	constructor(
		private readonly channel: vscode.LogOutputChannel,
		private readonly describeDropped: (count: number) => string,
	) {}

	add(level: Level, text: string): void {
		if (this.queue.length >= MAX_QUEUED_LINES) {
			this.dropped++;
		} else {
			this.queue.push({ level, text });
		}
		this.timer ??= setTimeout(() => this.flush(), FLUSH_INTERVAL_MS);
	}

	flush(): void {
		if (this.timer !== undefined) {
			clearTimeout(this.timer);
			this.timer = undefined;
		}
		const lines = this.queue;
		this.queue = [];
		for (const line of lines) {
			this.channel[line.level](line.text);
		}
		if (this.dropped > 0) {
			this.channel.warn(this.describeDropped(this.dropped));
			this.dropped = 0;
		}
	}

	dispose(): void {
		this.flush();
	}
}
