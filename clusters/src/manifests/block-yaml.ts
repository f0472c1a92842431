/**
 * A fast path for the block-style YAML most manifests are written in, used
 * before the `yaml` package. `yaml` (2.9) costs ~400 µs per 20-line pod
 * document here (its CST parser reads `process.env` per token), which made
 * parsing the cluster sources' main cost; this reads the same documents in a
 * few µs.
 *
 * It accepts only a strict subset and answers `undefined` for anything else,
 * so the caller parses that file with `yaml` as before, with `yaml`'s
 * messages. The subset: printable ASCII without tabs or CR; `---` document
 * separators; block mappings with plain keys and block sequences nested by
 * indentation (including `- key: value` items and a sequence at its key's
 * indentation); plain scalars on one line, resolved as `yaml`'s core schema
 * resolves them; single-quoted and backslash-free double-quoted scalars on
 * one line; comment lines and trailing comments. Anchors, aliases, tags,
 * flow collections, block scalars, multi-line scalars, complex or quoted or
 * non-string keys, duplicate keys and anything malformed are left to `yaml`.
 * A property test holds the result equal to `yaml`'s for generated documents.
 */

/** One document's value with its 0-based index, empty documents counted; empty ones omitted. */
export interface BlockDocument {
  readonly index: number;
  readonly value: unknown;
}

interface Line {
  indent: number;
  /** the line after its indentation, never empty */
  text: string;
}

/** Thrown inside the parser when the text leaves the subset; never escapes parseBlockYaml. */
class Unsupported extends Error {}

const fail = (): never => {
  throw new Unsupported();
};

// Printable ASCII and newlines only: tabs, CR, control and non-ASCII characters go to `yaml`.
const SUPPORTED_TEXT = /^[\n\x20-\x7e]*$/;

/**
 * The documents of `text` as `yaml`'s parseAllDocuments(text).toJS() gives
 * them, or `undefined` when the text is outside the subset (the caller then
 * uses `yaml`). Pure.
 */
export function parseBlockYaml(text: string): BlockDocument[] | undefined {
  if (!SUPPORTED_TEXT.test(text)) return undefined;
  try {
    return parseDocuments(text);
  } catch (err) {
    if (err instanceof Unsupported) return undefined;
    throw err;
  }
}

function parseDocuments(text: string): BlockDocument[] {
  const segments: Line[][] = [[]];
  let separators = 0;
  for (const raw of text.split('\n')) {
    if (raw === '---') {
      separators += 1;
      segments.push([]);
      continue;
    }
    // Directives, document end markers and `--- content` are left to `yaml`.
    if (raw.startsWith('---') || raw.startsWith('...') || raw.startsWith('%')) fail();
    let indent = 0;
    while (indent < raw.length && raw.charCodeAt(indent) === 0x20) indent += 1;
    if (indent === raw.length || raw[indent] === '#') continue;
    segments[segments.length - 1]!.push({ indent, text: raw.slice(indent) });
  }
  // Comments and blank lines before the first `---` belong to the document after it.
  if (separators > 0 && segments[0]!.length === 0) segments.shift();
  const documents: BlockDocument[] = [];
  segments.forEach((lines, index) => {
    if (lines.length === 0) return;
    const first = lines[0]!;
    const { value, next } = isSequenceItem(first.text)
      ? parseSequence(lines, 0, first.indent)
      : parseMapping(lines, 0, first.indent);
    if (next !== lines.length) fail();
    documents.push({ index, value });
  });
  return documents;
}

interface Parsed {
  value: unknown;
  /** the first line not consumed */
  next: number;
}

function isSequenceItem(text: string): boolean {
  return text === '-' || text.startsWith('- ');
}

function parseMapping(lines: Line[], start: number, indent: number): Parsed {
  const map: Record<string, unknown> = {};
  const keys = new Set<string>();
  let i = start;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.indent < indent) break;
    if (line.indent > indent || isSequenceItem(line.text)) fail();
    const { key, rest } = splitKey(line.text);
    if (keys.has(key)) fail();
    keys.add(key);
    i += 1;
    const scalar = inlineScalar(rest);
    if (scalar.present) {
      if (i < lines.length && lines[i]!.indent > indent) fail();
      map[key] = scalar.value;
      continue;
    }
    const child = lines[i];
    if (child !== undefined && child.indent > indent) {
      const nested = isSequenceItem(child.text)
        ? parseSequence(lines, i, child.indent)
        : parseMapping(lines, i, child.indent);
      map[key] = nested.value;
      i = nested.next;
    } else if (child !== undefined && child.indent === indent && isSequenceItem(child.text)) {
      const nested = parseSequence(lines, i, indent);
      map[key] = nested.value;
      i = nested.next;
    } else {
      map[key] = null;
    }
  }
  return { value: map, next: i };
}

function parseSequence(lines: Line[], start: number, indent: number): Parsed {
  const items: unknown[] = [];
  let i = start;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.indent < indent) break;
    if (line.indent > indent) fail();
    if (!isSequenceItem(line.text)) break;
    let spaces = 1;
    while (spaces < line.text.length && line.text.charCodeAt(spaces) === 0x20) spaces += 1;
    const content = line.text.slice(spaces);
    if (content === '' || content.startsWith('#')) {
      // `-` alone: the item is the block below it, or null.
      i += 1;
      const child = lines[i];
      if (child !== undefined && child.indent > indent) {
        const nested = isSequenceItem(child.text)
          ? parseSequence(lines, i, child.indent)
          : parseMapping(lines, i, child.indent);
        items.push(nested.value);
        i = nested.next;
      } else {
        items.push(null);
      }
      continue;
    }
    if (isSequenceItem(content)) fail();
    if (!isQuote(content) && keySeparator(content) !== -1) {
      // `- key: value`: a mapping whose keys line up with this first one.
      lines[i] = { indent: indent + spaces, text: content };
      const nested = parseMapping(lines, i, indent + spaces);
      items.push(nested.value);
      i = nested.next;
      continue;
    }
    const scalar = inlineScalar(line.text.slice(1));
    if (!scalar.present) fail();
    items.push(scalar.value);
    i += 1;
    if (i < lines.length && lines[i]!.indent > indent) fail();
  }
  return { value: items, next: i };
}

function isQuote(text: string): boolean {
  return text[0] === '"' || text[0] === "'";
}

/** Where `key: value` or `key:` splits, or -1. */
function keySeparator(text: string): number {
  const at = text.indexOf(': ');
  if (at !== -1) return at;
  return text.endsWith(':') ? text.length - 1 : -1;
}

const KEY_LIMIT = 1000;

function splitKey(text: string): { key: string; rest: string } {
  const at = keySeparator(text);
  if (at <= 0 || at > KEY_LIMIT) fail();
  const key = text.slice(0, at);
  if (!isPlainStart(key) || key.includes(' #') || key.endsWith(' ')) fail();
  // Keys are strings only: `yaml` would resolve `80:` or `true:` first; `<<` may merge.
  if (resolvePlain(key) !== key || key === '<<' || key === '__proto__') fail();
  return { key, rest: text.slice(at + 1) };
}

/**
 * The scalar after `key:` or `-` (starting with its space, if any), or
 * `present: false` when nothing but a comment follows.
 */
function inlineScalar(rest: string): { present: boolean; value: unknown } {
  const trimmed = rest.trimStart();
  if (trimmed === '' || trimmed.startsWith('#')) {
    return { present: false, value: null };
  }
  if (trimmed === rest) fail();
  if (trimmed[0] === "'") return { present: true, value: singleQuoted(trimmed) };
  if (trimmed[0] === '"') return { present: true, value: doubleQuoted(trimmed) };
  const comment = trimmed.indexOf(' #');
  const plain = (comment === -1 ? trimmed : trimmed.slice(0, comment)).trimEnd();
  if (!isPlainStart(plain) || plain.includes(': ') || plain.endsWith(':')) fail();
  return { present: true, value: resolvePlain(plain) };
}

function singleQuoted(text: string): string {
  let value = '';
  let i = 1;
  for (;;) {
    const close = text.indexOf("'", i);
    if (close === -1) fail();
    value += text.slice(i, close);
    if (text[close + 1] !== "'") {
      afterQuoted(text.slice(close + 1));
      return value;
    }
    value += "'";
    i = close + 2;
  }
}

function doubleQuoted(text: string): string {
  const close = text.indexOf('"', 1);
  if (close === -1) fail();
  const value = text.slice(1, close);
  if (value.includes('\\')) fail();
  afterQuoted(text.slice(close + 1));
  return value;
}

/** After a closing quote: nothing, or spaces and a comment. */
function afterQuoted(rest: string): void {
  const trimmed = rest.trimStart();
  if (trimmed === '') return;
  if (trimmed.startsWith('#') && trimmed !== rest) return;
  fail();
}

const INDICATORS = new Set(['[', ']', '{', '}', ',', '#', '&', '*', '!', '|', '>', "'", '"']);
const RESERVED = new Set(['%', '@', '`']);

/** A plain scalar may start with this (`-`, `?` and `:` are left to `yaml` altogether). */
function isPlainStart(text: string): boolean {
  const c = text[0];
  if (c === undefined) return false;
  return !INDICATORS.has(c) && !RESERVED.has(c) && c !== '-' && c !== '?' && c !== ':';
}

// yaml's core schema (YAML 1.2), in the order `yaml` tries its tags.
const NULL = /^(?:~|[Nn]ull|NULL)?$/;
const BOOL = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
const INT_OCT = /^0o[0-7]+$/;
const INT = /^[-+]?[0-9]+$/;
const INT_HEX = /^0x[0-9a-fA-F]+$/;
const FLOAT_NAN = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
const FLOAT_EXP = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/;
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/;

function resolvePlain(text: string): unknown {
  const c = text.charCodeAt(0);
  // Most scalars are names: nothing below can match a word starting with a-z other than these.
  const maybeSpecial = !(c >= 0x61 && c <= 0x7a) || c === 0x6e || c === 0x74 || c === 0x66; // n, t, f
  if (!maybeSpecial) return text;
  if (NULL.test(text)) return null;
  if (BOOL.test(text)) return text[0] === 't' || text[0] === 'T';
  if (INT_OCT.test(text)) return parseInt(text.substring(2), 8);
  if (INT.test(text)) return parseInt(text, 10);
  if (INT_HEX.test(text)) return parseInt(text.substring(2), 16);
  if (FLOAT_NAN.test(text)) {
    if (text.slice(-3).toLowerCase() === 'nan') return NaN;
    return text[0] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  if (FLOAT_EXP.test(text) || FLOAT.test(text)) return parseFloat(text);
  return text;
}
