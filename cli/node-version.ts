/**
 * Refuses, with one clear line instead of a stack trace from deep inside a dependency, a Node
 * older than mailprobe's runtime dependencies support (undici 8 and mailauth 7 need 22.19; the
 * development dependencies, hence package.json `engines`, want 22.22+ or 24.8+). cli/main.ts
 * imports this first, so it runs before any dependency is loaded.
 * `npm start` and `npx mailprobe` run the pinned node_modules/.bin/node and always pass.
 */
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(
    `mailprobe: Node.js ${process.version} is too old; mailprobe needs Node.js 22.19+ or 24 ` +
      '(from a checkout, npm start and npx mailprobe run the Node pinned in package.json)\n',
  );
  process.exit(1);
}
export {};
