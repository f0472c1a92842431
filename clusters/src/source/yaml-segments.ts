import { parseAllDocuments } from 'yaml';

/**
 * A YAML file cut at its documents, so one document can be replaced or
 * removed while every other byte stays as the user wrote it. `prefix` is
 * what comes before the first document (a file's header comment); segment i
 * is document i as splitDocuments counts them (empty documents included),
 * from its `---` (if any) up to the next document.
 */
export interface YamlSegments {
  readonly prefix: string;
  readonly segments: readonly string[];
}

export function splitSegments(text: string): YamlSegments {
  const documents = parseAllDocuments(text);
  if (documents.length === 0) return { prefix: text, segments: [] };
  const starts = documents.map((d) => d.range[0]);
  const segments = starts.map((start, i) => text.slice(start, starts[i + 1] ?? text.length));
  return { prefix: text.slice(0, starts[0]), segments };
}

/** A segment without its leading `---` line: the document as it can be written anywhere. */
export function documentBody(segment: string): string {
  const body = segment.replace(/^---[ \t]*(\r?\n|$)/, '');
  return body.endsWith('\n') ? body : `${body}\n`;
}

export interface DocumentEdits {
  /** document index → new body */
  readonly replace: ReadonlyMap<number, string>;
  readonly remove: ReadonlySet<number>;
  /** bodies appended as new documents, in order */
  readonly append: readonly string[];
}

/**
 * The file's text after the edits; undefined when no document with content
 * is left (the file is to be removed). A new file is `text` undefined.
 * Untouched documents keep their exact text. Pure.
 */
export function editDocuments(text: string | undefined, edits: DocumentEdits): string | undefined {
  const { prefix, segments } = splitSegments(text ?? '');
  const pieces: string[] = [];
  segments.forEach((segment, index) => {
    if (edits.remove.has(index)) return;
    const body = edits.replace.get(index);
    if (body === undefined) pieces.push(segment);
    else pieces.push(index > 0 || segment.startsWith('---') ? `---\n${body}` : body);
  });
  for (const body of edits.append) {
    pieces.push(pieces.length === 0 && prefix.trim() === '' ? body : `---\n${body}`);
  }
  let out = prefix;
  for (const piece of pieces) {
    if (out !== '' && !out.endsWith('\n')) out += '\n';
    out += piece;
  }
  const hasContent = parseAllDocuments(out).some(
    (d) => d.contents !== null && d.contents !== undefined,
  );
  return hasContent ? out : undefined;
}

/** How many documents splitDocuments counts in `text` (where appended ones start). */
export function documentCount(text: string | undefined): number {
  return text === undefined ? 0 : splitSegments(text).segments.length;
}
