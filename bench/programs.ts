/** Source of the benchmark's program: it stops on SIGTERM and prints a line every 5 ms, so
 * that the last line before a stop is close to it. */
export function tickingProgram(version: string): string {
	return [
		'import signal, sys, time',
		'signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))',
		`print("${version} first", flush=True)`,
		'while True:',
		`    print("${version} tick", flush=True)`,
		'    time.sleep(0.005)',
	].join('\n') + '\n';
}

/** Returns the median of a non-empty list. */
export function median(values: number[]): number {
	const sorted = [...values].sort((a, b) => a - b);
	const middle = Math.floor(sorted.length / 2);
	return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
