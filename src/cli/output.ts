/** How every command answers: readable lines for people, or one JSON document with `--json`. */
export interface OutputOptions {
  json?: boolean;
}

export function emit(opts: OutputOptions, value: unknown, human: () => string): void {
  process.stdout.write(opts.json ? `${JSON.stringify(value, null, 2)}\n` : ensureNewline(human()));
}

function ensureNewline(text: string): string {
  return text.endsWith('\n') || text === '' ? text : `${text}\n`;
}

/** A failure the user can act on: printed without a stack trace, exit code 1. */
export class CliError extends Error {
  constructor(message: string, readonly details: string[] = []) {
    super(message);
    this.name = 'CliError';
  }
}

/** Aligned columns, for lists. */
export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n');
}
