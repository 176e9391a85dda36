/**
 * Reading a definition file: YAML or JSON (JSON is read by the YAML parser too, after a strict
 * JSON.parse, so both get line and column numbers), and mapping a JSON pointer back to the place
 * in the text where it is written.
 */
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';

export interface DefinitionProblem {
  file: string;
  /** JSON pointer of the bad element. */
  path: string;
  message: string;
  line?: number;
  column?: number;
}

export interface ParsedDefinition {
  value: unknown;
  problems: DefinitionProblem[];
  /** Where a JSON pointer is written in the text (the nearest existing element), if known. */
  locate(path: string): { line: number; column: number } | undefined;
}

function pointerSegments(path: string): string[] {
  return path === '' ? [] : path.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function locator(doc: Document, lines: LineCounter): ParsedDefinition['locate'] {
  return (path) => {
    const segments: (string | number)[] = pointerSegments(path).map((s) => (/^[0-9]+$/.test(s) ? Number(s) : s));
    for (let n = segments.length; n >= 0; n--) {
      const node: unknown = n === 0 ? doc.contents : doc.getIn(segments.slice(0, n), true);
      if (isNode(node) && node.range) {
        const { line, col } = lines.linePos(node.range[0]);
        return { line, column: col };
      }
    }
    return undefined;
  };
}

export function parseDefinition(text: string, file: string): ParsedDefinition {
  const nowhere = () => undefined;
  if (file.endsWith('.json')) {
    try {
      JSON.parse(text);
    } catch (error) {
      return { value: undefined, problems: [{ file, path: '', message: `malformed JSON: ${(error as Error).message}` }], locate: nowhere };
    }
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      value: undefined,
      problems: doc.errors.map((e) => ({ file, path: '', message: e.message.split('\n')[0]!, line: e.linePos?.[0].line, column: e.linePos?.[0].col })),
      locate: nowhere,
    };
  }
  return { value: doc.toJS(), problems: [], locate: locator(doc, lines) };
}
