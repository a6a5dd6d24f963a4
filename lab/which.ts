import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The path of an executable on PATH (or the usual sbin folders), or null. */
export function which(bin: string): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (dir && existsSync(join(dir, bin))) return join(dir, bin);
  }
  return null;
}
