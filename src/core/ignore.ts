import picomatch from 'picomatch';

/**
 * Names that never trigger a batch, never move and are never deleted: placeholders,
 * the temporary names of upload tools and editors, and caches. A pattern without `/`
 * matches a name at any depth, a trailing `/` matches folders only, and a file inside
 * an ignored folder is ignored too.
 */
export const DEFAULT_IGNORE_PATTERNS: readonly string[] = [
	'.*', // dot-names: .keep, rsync's .name.XXXXXX, Syncthing's .syncthing.*.tmp, .DS_Store
	'.keep',
	'*.filepart', // WinSCP
	'*.part', // Firefox, KDE
	'*.crdownload', // Chromium
	'*.download', // Safari
	'*.tmp',
	'*~', // editors' backups
	'4913', // Vim's probe for a writable folder
	'#*#', // Emacs auto-save
	'*___jb_tmp___', // JetBrains "safe write"
	'*___jb_old___',
	'__pycache__/',
	'*.pyc',
	'Thumbs.db',
	'desktop.ini',
];

interface CompiledPattern {
	source: string;
	folderOnly: boolean;
	/** True when the pattern contains a `/` and so matches a path from the deposit's top. */
	anchored: boolean;
	matches: (candidate: string) => boolean;
}

/** Combines the defaults with user patterns: `pattern` adds one, `!pattern` removes one. */
export function effectivePatterns(userPatterns: readonly string[]): string[] {
	const patterns = [...DEFAULT_IGNORE_PATTERNS];
	for (const pattern of userPatterns) {
		const trimmed = pattern.trim();
		if (trimmed === '') {
			continue;
		}
		if (trimmed.startsWith('!')) {
			const removed = trimmed.slice(1);
			for (let index = patterns.indexOf(removed); index !== -1; index = patterns.indexOf(removed)) {
				patterns.splice(index, 1);
			}
		} else if (!patterns.includes(trimmed)) {
			patterns.push(trimmed);
		}
	}
	return patterns;
}

function compile(source: string): CompiledPattern {
	const folderOnly = source.endsWith('/');
	const body = folderOnly ? source.slice(0, -1) : source;
	const anchored = body.includes('/');
	const glob = anchored ? body.replace(/^\//, '') : body;
	return { source, folderOnly, anchored, matches: picomatch(glob, { dot: true }) };
}

export type IgnoreMatcher = (relativePath: string, isFolder: boolean) => boolean;

/**
 * Builds a matcher for paths relative to the deposit, with `/` separators.
 * An empty path (the deposit itself) is never ignored.
 */
export function createIgnoreMatcher(userPatterns: readonly string[], extraNames: readonly string[] = []): IgnoreMatcher {
	const compiled = effectivePatterns(userPatterns).map(compile);
	const names = new Set(extraNames);
	return (relativePath, isFolder) => {
		if (relativePath === '') {
			return false;
		}
		const parts = relativePath.split('/');
		for (let depth = 0; depth < parts.length; depth++) {
			const name = parts[depth];
			const prefix = parts.slice(0, depth + 1).join('/');
			const partIsFolder = depth < parts.length - 1 || isFolder;
			if (depth === 0 && names.has(name)) {
				return true;
			}
			for (const pattern of compiled) {
				if (pattern.folderOnly && !partIsFolder) {
					continue;
				}
				if (pattern.matches(pattern.anchored ? prefix : name)) {
					return true;
				}
			}
		}
		return false;
	};
}
