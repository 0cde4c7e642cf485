// Text extraction from a kernel tree (kernel-facts §0): the definitions are cut out unchanged with
// regular expressions and brace matching, never rewritten. A piece that is not where it should be
// is reported with the file and what was missing, so the group that needs it can say why it is
// unsupported instead of guessing.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Piece {
  /** the tree-relative file it came from */
  readonly file: string;
  readonly text: string;
}

export type Found<T> = { ok: true; value: T } | { ok: false; missing: string };

export class TreeReader {
  private readonly cache = new Map<string, string | null>();
  constructor(readonly root: string) {}

  read(file: string): string | null {
    if (!this.cache.has(file)) {
      let text: string | null = null;
      try {
        text = readFileSync(join(this.root, file), 'utf8');
      } catch {
        text = null;
      }
      this.cache.set(file, text);
    }
    return this.cache.get(file)!;
  }

  /** The first of `files` that exists (kernel files move between versions). */
  firstOf(files: readonly string[]): string | null {
    return files.find((f) => this.read(f) !== null) ?? null;
  }
}

/** Index of the brace that closes the one at `open`, skipping comments, strings and char literals. */
function matchBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '/' && text[i + 1] === '*') {
      const e = text.indexOf('*/', i + 2);
      i = e < 0 ? text.length : e + 1;
    } else if (c === '/' && text[i + 1] === '/') {
      const e = text.indexOf('\n', i);
      i = e < 0 ? text.length : e;
    } else if (c === '"' || c === "'") {
      for (i++; i < text.length && text[i] !== c; i++) if (text[i] === '\\') i++;
    } else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i;
  }
  return -1;
}

/** From the start of `head`'s match to its closing brace, plus a trailing `;` when there is one. */
export function extractBraced(r: TreeReader, file: string, head: RegExp, what: string): Found<Piece> {
  const text = r.read(file);
  if (text === null) return { ok: false, missing: `${file} does not exist (needed for ${what})` };
  const m = head.exec(text);
  if (!m) return { ok: false, missing: `${file} has no ${what}` };
  const open = text.indexOf('{', m.index + m[0].length - 1);
  const close = open < 0 ? -1 : matchBrace(text, open);
  if (close < 0) return { ok: false, missing: `${file}: ${what} has no closing brace` };
  const end = /^\s*;/.exec(text.slice(close + 1)) ? text.indexOf(';', close) + 1 : close + 1;
  return { ok: true, value: { file, text: text.slice(m.index, end) } };
}

/** A `#define NAME …` with its continuation lines. */
export function extractDefine(r: TreeReader, file: string, name: string): Found<Piece> {
  const text = r.read(file);
  if (text === null) return { ok: false, missing: `${file} does not exist (needed for ${name})` };
  const m = new RegExp(`^[ \\t]*#[ \\t]*define[ \\t]+${name}\\b(?:[^\\n]*\\\\\\n)*[^\\n]*`, 'm').exec(text);
  if (!m) return { ok: false, missing: `${file} has no #define ${name}` };
  return { ok: true, value: { file, text: m[0] } };
}

/** A one-line declaration or statement matching `re` (e.g. the natural_width typedef). */
export function extractLine(r: TreeReader, file: string, re: RegExp, what: string): Found<Piece> {
  const text = r.read(file);
  if (text === null) return { ok: false, missing: `${file} does not exist (needed for ${what})` };
  const m = re.exec(text);
  return m ? { ok: true, value: { file, text: m[0] } } : { ok: false, missing: `${file} has no ${what}` };
}

/** A `static inline` (or plain) function definition by name. */
export function extractFunction(r: TreeReader, file: string, name: string): Found<Piece> {
  return extractBraced(r, file, new RegExp(`^\\w[\\w \\t*]*\\b${name}\\s*\\([^)]*\\)\\s*\\{`, 'm'), `function ${name}()`);
}

/** Every `#define` whose name matches `name` (continuations included), in file order. */
export function extractDefines(r: TreeReader, file: string, name: RegExp, what: string): Found<Piece> {
  const text = r.read(file);
  if (text === null) return { ok: false, missing: `${file} does not exist (needed for ${what})` };
  const defs = [...text.matchAll(/^[ \t]*#[ \t]*define[ \t]+(\w+)(?:[^\n]*\\\n)*[^\n]*/gm)].filter((m) => name.test(m[1]!)).map((m) => m[0]);
  return defs.length ? { ok: true, value: { file, text: defs.join('\n') } } : { ok: false, missing: `${file} has no ${what}` };
}

/** Every match of `re` in a file, as capture groups (e.g. the CHECK_OFFSET lines). */
export function matchAll(r: TreeReader, file: string, re: RegExp): string[][] {
  const text = r.read(file) ?? '';
  return [...text.matchAll(re)].map((m) => m.slice(1));
}

/** Collects pieces; the first missing one decides the reason. */
export class PieceSet {
  readonly pieces: Piece[] = [];
  missing: string | null = null;
  add(f: Found<Piece>): this {
    if (f.ok) this.pieces.push(f.value);
    else this.missing ??= f.missing;
    return this;
  }
}
