// Bundles the extension and the headless command into CommonJS files for Node 20.
// `--production` minifies and drops source maps; `--watch` rebuilds on change.
import * as fs from 'node:fs/promises';
import * as esbuild from 'esbuild';

// @stroncium/procfs (used by the trash package on Linux) loads its parsers with
// require(`./parsers/${name}`). esbuild bundles every file that the template can name, but
// under keys that end in `.js`, so the lookup without the extension fails at run time.
// Adding the extension in the source makes the keys and the lookup agree.
const procfsParsersWithExtension = {
	name: 'procfs-parsers-with-extension',
	setup(build) {
		build.onLoad({ filter: /@stroncium[\\/]procfs[\\/]lib[\\/]parsers\.js$/ }, async (args) => {
			const source = await fs.readFile(args.path, 'utf8');
			const patched = source.replace('require(`./parsers/${name}`)', 'require(`./parsers/${name}.js`)');
			if (patched === source) {
				throw new Error(`${args.path} no longer loads its parsers as expected; check the trash package on Linux.`);
			}
			return { contents: patched, loader: 'js' };
		});
	},
};

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
	plugins: [procfsParsersWithExtension],
});

if (watch) {
	await context.watch();
	console.log('esbuild: watching src/ for changes');
} else {
	await context.rebuild();
	await context.dispose();
}
