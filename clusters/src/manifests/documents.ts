import { LineCounter, parseAllDocuments } from 'yaml';
import { parseBlockYaml } from './block-yaml.js';
import type { IssueSink } from './issues.js';

/** A manifest file's text and the path it is reported under. */
export interface ManifestFile {
  readonly path: string;
  readonly text: string;
  /**
   * What the file's metadata says about its content (inode, size, change
   * times), when that can be trusted to change with it: set by
   * readManifestFiles for files not modified in the last seconds (see there).
   */
  readonly stamp?: string;
}

export interface RawDocument {
  /** 0-based position of the document in its file, empty documents counted */
  readonly index: number;
  readonly value: unknown;
}

// Anchors and aliases are legal YAML, but a few thousand expansions only ever
// mean a "billion laughs" document.
const MAX_ALIAS_COUNT = 1000;

/**
 * Splits a YAML (or JSON, which is YAML) file into documents. A document with
 * a syntax error is reported (file, document, line and column) and left out;
 * the other documents of the file are still returned. Empty documents are
 * skipped but keep their index, so indices match the `---` a user counts.
 */
export function splitDocuments(file: ManifestFile, issues: IssueSink): RawDocument[] {
  // Plain block-style files (most manifests) take the fast path; the rest, and
  // every file with an error, goes through `yaml` and its messages.
  const fast = parseBlockYaml(file.text);
  if (fast !== undefined) return fast;
  const lines = new LineCounter();
  const documents = parseAllDocuments(file.text, {
    lineCounter: lines,
    prettyErrors: false,
    uniqueKeys: true,
  });
  const result: RawDocument[] = [];
  documents.forEach((document, index) => {
    const at = (offset: number): string => {
      const { line, col } = lines.linePos(offset);
      return `line ${line}, column ${col}`;
    };
    for (const warning of document.warnings) {
      issues.add({
        file: file.path,
        document: index,
        message: `YAML: ${warning.message} (${at(warning.pos[0])})`,
        severity: 'warning',
      });
    }
    if (document.errors.length > 0) {
      for (const error of document.errors) {
        issues.add({
          file: file.path,
          document: index,
          message: `YAML syntax error at ${at(error.pos[0])}: ${firstLine(error.message)}`,
          severity: 'error',
        });
      }
      return;
    }
    try {
      const value: unknown = document.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
      if (value !== null && value !== undefined) result.push({ index, value });
    } catch (err) {
      issues.add({
        file: file.path,
        document: index,
        message: `YAML: ${err instanceof Error ? err.message : String(err)}`,
        severity: 'error',
      });
    }
  });
  return result;
}

function firstLine(message: string): string {
  // The yaml package appends " at line L, column C" and a code excerpt; we print our own position.
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '');
}
