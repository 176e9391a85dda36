/** Reading a node's log: its JSON lines with a given message (the debug figures nodes log for the benchmark). */
import { readFileSync } from 'node:fs';

/** Every JSON line of `file` whose message is `msg`, parsed; other lines (not JSON, other messages) are skipped. */
export function linesWithMessage<T>(file: string, msg: string): T[] {
  const found: T[] = [];
  const marker = `"msg":${JSON.stringify(msg)}`;
  for (const text of readFileSync(file, 'utf8').split('\n')) {
    if (!text.includes(marker)) continue;
    try {
      found.push(JSON.parse(text) as T);
    } catch {
      // not a JSON line
    }
  }
  return found;
}
