// Bundles the extension and the headless command into CommonJS files for Node 20.
// `--production` minifies and drops source maps; `--watch` rebuilds on change.
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

const context = await esbuild.context({
	entryPoints: { extension: 'src/extension.ts', cli: 'src/cli.ts' },
	outdir: 'dist',
	bundle: true,
	platform: 'node',
	format: 'cjs',
	target: 'node20',
	// The editor provides `vscode` at run time; everything else, ESM-only packages
	// included, goes into the bundle so that the .vsix needs no node_modules.
	external: ['vscode'],
	// jsonc-parser's UMD build loads its parts with a dynamic require that bundling breaks;
	// its ESM build bundles cleanly.
	mainFields: ['module', 'main'],
	minify: production,
	sourcemap: production ? false : 'linked',
	sourcesContent: false,
	logLevel: 'warning',
});

if (watch) {
	await context.watch();
	console.log('esbuild: watching src/ for changes');
} else {
	await context.rebuild();
	await context.dispose();
}
