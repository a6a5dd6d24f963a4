// Preloaded into a child process (`node --import ./test/support/module-log.mjs …`): records the
// URL of every module the process loads (import and require alike, through node:module's
// synchronous resolve hook) and the built-in modules Node loaded, and writes them, one a line, to
// $MAILPROBE_MODULE_LOG when it exits; for built-ins the project's own files import, also
// `node:<name> <- <importing file's URL>`.
// test/cli/lean-probe.test.ts reads it to see which packages a probe loaded.
import { writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const out = process.env.MAILPROBE_MODULE_LOG;
const seen = new Set();
registerHooks({
  resolve(specifier, context, next) {
    const r = next(specifier, context);
    seen.add(r.url);
    // Which of the project's own files import a built-in (`node:fs/promises <- file:///…/config/load.ts`):
    // tsx, which runs the process from source, loads some built-ins itself.
    if (r.url.startsWith('node:') && context.parentURL?.startsWith('file:') && !context.parentURL.includes('/node_modules/'))
      seen.add(`${r.url} <- ${context.parentURL}`);
    return r;
  },
});
// Node's own modules too, as `builtin:<name>` (process.moduleLoadList: also those Node loads inside).
const builtins = () => process.moduleLoadList.flatMap((m) => (m.startsWith('NativeModule ') ? [`builtin:${m.slice(13)}`] : []));
if (out) process.on('exit', () => writeFileSync(out, [...seen, ...builtins()].join('\n')));
