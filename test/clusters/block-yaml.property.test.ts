import fc from 'fast-check';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SHAPE, generateWorkload } from '../../bench/index.js';
import { parseBlockYaml } from '../../clusters/src/index.js';
import { podYaml } from './fixtures.js';

// The block-YAML fast path either declines (undefined: the caller uses `yaml`)
// or gives exactly what `yaml` gives: the same documents, indices and values,
// for a text `yaml` reads without errors or warnings.
function viaYaml(text: string): { index: number; value: unknown }[] | 'error' {
  const out: { index: number; value: unknown }[] = [];
  const documents = parseAllDocuments(text, { prettyErrors: false, uniqueKeys: true });
  for (const [index, document] of documents.entries()) {
    if (document.errors.length > 0 || document.warnings.length > 0) return 'error';
    const value: unknown = document.toJS({ maxAliasCount: 1000 });
    if (value !== null && value !== undefined) out.push({ index, value });
  }
  return out;
}

function agrees(text: string): boolean {
  const fast = parseBlockYaml(text);
  if (fast === undefined) return false;
  expect(viaYaml(text), JSON.stringify(text)).toEqual(fast);
  return true;
}

// Words chosen to hit every rule: core-schema numbers, booleans and nulls,
// indicators, quotes, comments, colons, spaces, keys that are not strings.
const words = [
  'a',
  'b',
  'app',
  'app.kubernetes.io/name',
  'x y',
  'a  b',
  'alpha-1',
  '10.1.0.1',
  'v1',
  '0',
  '7',
  '007',
  '-1',
  '+3',
  '12345678901234567890',
  '0x1F',
  '0o17',
  '0.5',
  '1.',
  '.5',
  '1e3',
  '-2.5E-3',
  '.inf',
  '-.Inf',
  '.nan',
  '.NaN',
  'true',
  'True',
  'TRUE',
  'tRue',
  'false',
  'yes',
  'no',
  'on',
  '~',
  'null',
  'Null',
  'NULL',
  'nUll',
  '',
  'a: b',
  'a:',
  'a:b',
  'a #b',
  'a#b',
  '#a',
  "it's",
  'say "hi"',
  '[x]',
  'x[0]',
  '{x}',
  'x,y',
  '*a',
  '&a',
  '!t',
  '|',
  '>',
  '%x',
  '@x',
  '`x',
  '- x',
  '-x',
  '-',
  '? x',
  '?',
  ':x',
  'trail ',
  ' lead',
  'back\\slash',
  '1_000',
  '<<',
  '__proto__',
  'constructor',
  'toString',
  '---',
  '...',
  'é',
  'tab\there',
  'a\rb',
];
const wordArb = fc.constantFrom(...words);

type Tree = string | Tree[] | { [key: string]: Tree };
const { tree } = fc.letrec<{ tree: Tree }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    wordArb,
    fc.array(tie('tree'), { minLength: 0, maxLength: 3 }),
    fc.dictionary(wordArb, tie('tree'), { minKeys: 0, maxKeys: 4 }),
  ),
}));

interface Style {
  indent: number;
  compactSeq: boolean;
  quote: 'plain' | 'single' | 'double' | 'mixed';
  comments: boolean;
  blank: boolean;
}
const styleArb = fc.record({
  indent: fc.constantFrom(1, 2, 4),
  compactSeq: fc.boolean(),
  quote: fc.constantFrom('plain', 'single', 'double', 'mixed'),
  comments: fc.boolean(),
  blank: fc.boolean(),
});

function scalar(word: string, style: Style, salt: number): string {
  const quote =
    style.quote === 'mixed' ? (['plain', 'single', 'double'] as const)[salt % 3]! : style.quote;
  if (quote === 'single') return `'${word.replaceAll("'", "''")}'`;
  if (quote === 'double') return `"${word}"`;
  return word;
}

/** Renders a tree as block YAML; `at` is the indentation of its first line's content. */
function render(t: Tree, style: Style, at: number, out: string[], salt = 0): void {
  const pad = ' '.repeat(at);
  const comment = (i: number): string => (style.comments && i % 2 === 1 ? ' # note: x' : '');
  if (Array.isArray(t)) {
    t.forEach((item, i) => {
      if (typeof item === 'string')
        out.push(`${pad}- ${scalar(item, style, salt + i)}${comment(i)}`);
      else if (Array.isArray(item) || Object.keys(item).length === 0) {
        out.push(`${pad}-`);
        if (Array.isArray(item) && item.length > 0)
          render(item, style, at + style.indent, out, salt + i);
      } else {
        const nested: string[] = [];
        render(item, style, at + 2, nested, salt + i);
        out.push(`${pad}- ${nested[0]!.trimStart()}`, ...nested.slice(1));
      }
      if (style.blank && i === 0) out.push('');
    });
    return;
  }
  if (typeof t === 'string') {
    out.push(`${pad}${scalar(t, style, salt)}`);
    return;
  }
  Object.entries(t).forEach(([key, value], i) => {
    if (typeof value === 'string') {
      out.push(`${pad}${key}: ${scalar(value, style, salt + i)}${comment(i)}`);
    } else if (Array.isArray(value) && value.length > 0) {
      out.push(`${pad}${key}:${comment(i)}`);
      render(value, style, style.compactSeq ? at : at + style.indent, out, salt + i);
    } else if (!Array.isArray(value) && Object.keys(value).length > 0) {
      out.push(`${pad}${key}:`);
      if (style.comments) out.push(`${' '.repeat(salt % 5)}# between`);
      render(value, style, at + style.indent, out, salt + i);
    } else {
      out.push(`${pad}${key}:`);
    }
  });
}

const separatorArb = fc.constantFrom('---', '--- ', '---\n# c', '...\n---', '');
const fileArb = fc
  .record({
    docs: fc.array(fc.tuple(tree, styleArb), { minLength: 0, maxLength: 3 }),
    leading: fc.constantFrom('', '---\n', '# head\n---\n', '# head\n', '%YAML 1.2\n---\n'),
    separator: separatorArb,
    trailing: fc.constantFrom('', '\n', '---\n', '\n\n'),
  })
  .map(({ docs, leading, separator, trailing }) => {
    const texts = docs.map(([t, style]) => {
      const out: string[] = [];
      render(t, style, 0, out);
      return out.join('\n');
    });
    return `${leading}${texts.join(`\n${separator}\n`)}${trailing}`;
  });

// Single-character edits of generated files: indentation, colons, quotes, dashes.
const mutatedArb = fc
  .tuple(fileArb, fc.nat(), fc.constantFrom(' ', ':', '-', '"', "'", '#', '\n', '', '  ', '|'))
  .map(([text, at, ch]) => {
    const i = text.length === 0 ? 0 : at % text.length;
    return text.slice(0, i) + ch + text.slice(i + 1);
  });

describe('parseBlockYaml', () => {
  it('equals yaml on every file it accepts (generated block YAML)', () => {
    let accepted = 0;
    fc.assert(
      fc.property(fileArb, (text) => {
        if (agrees(text)) accepted += 1;
      }),
      { numRuns: 3000 },
    );
    // The fast path is not vacuous: plenty of generated files are in its subset.
    expect(accepted).toBeGreaterThan(300);
  });

  it('equals yaml on every file it accepts (edited block YAML)', () => {
    fc.assert(
      fc.property(mutatedArb, (text) => {
        agrees(text);
      }),
      { numRuns: 3000 },
    );
  });

  it('takes the fast path for pod manifests as written by hand and by the benchmarks', () => {
    const text = [
      podYaml('a', 'p1', { spec: '  containers:\n    - name: app\n' }),
      podYaml('a', 'p2', { spec: '  nodeName: n-1\n', status: '  podIP: 10.1.0.2\n' }),
      `# a comment\napiVersion: v1\nkind: Service\nmetadata:\n  name: web # trailing\n  namespace: 'a'\n` +
        `spec:\n  selector:\n    app: web\n  ports:\n  - name: http\n    port: 80\n    targetPort: "http"\n`,
    ].join('---\n');
    expect(agrees(text)).toBe(true);
    const bench = generateWorkload({ ...DEFAULT_SHAPE, pods: 300 });
    for (const file of bench.files) expect(agrees(file.text), file.path).toBe(true);
  });

  it('declines what it does not implement, so yaml reports it', () => {
    for (const text of [
      'a: &x 1\nb: *x\n',
      'a: [1, 2]\n',
      'a: |\n  text\n',
      'a: b\na: c\n',
      'a:\tb\n',
      '"a": 1\n',
      '80: http\n',
      'a: "x\\ny"\n',
      'a: plain\n  continued\n',
      'a: b: c\n',
      'just a scalar\n',
    ]) {
      expect(parseBlockYaml(text), JSON.stringify(text)).toBeUndefined();
    }
  });
});
