import * as fs from 'node:fs';
import * as path from 'node:path';

/** File system calls in flight at once. Spread over libuv's thread pool, they finish a
 * large merge faster than one call at a time; more than this gains nothing measurable. */
export const FS_CONCURRENCY = 16;

/** Converts a path relative to the deposit or `main/` (with `/` separators) to this platform's. */
export function toNative(relativePath: string): string {
	return relativePath.split('/').join(path.sep);
}

/** Returns the `lstat` result, or undefined when the path or one of its parents does not exist. */
export async function lstatOrUndefined(file: string): Promise<fs.Stats | undefined> {
	try {
		return await fs.promises.lstat(file);
	} catch (error) {
		const code = (error as NodeJS.ErrnoException).code;
		if (code === 'ENOENT' || code === 'ENOTDIR') {
			return undefined;
		}
		throw error;
	}
}
