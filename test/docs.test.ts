// The documentation, checked where a machine can: README size, links and anchors, the source article,
// the deployment examples' names and zips, and the benchmark page's results markers.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RESULTS_END, RESULTS_PAGE, RESULTS_START, replaceResults } from '../bench/publish.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ARTICLE =
  'https://cloudnugget.dev/faq/caching-ssm-parameters-and-secrets-in-lambda-with-the-parameters-and-secrets-extension/';

/** Every Markdown page users read: the README, SECURITY.md, CHANGELOG.md and docs/*.md. */
const PAGES = [
  'README.md',
  'SECURITY.md',
  'CHANGELOG.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const read = (page: string): string => readFileSync(join(ROOT, page), 'utf8');

interface Block {
  lang: string;
  code: string;
}

/** Fenced code blocks, and the prose with them (and inline code spans) taken out. */
function split(md: string): { prose: string; blocks: Block[] } {
  const blocks: Block[] = [];
  const prose = md.replace(/^```(\w*)[^\n]*\n([\s\S]*?)^```[ \t]*$/gm, (_m, lang: string, code: string) => {
    blocks.push({ lang, code });
    return '';
  });
  return { prose: prose.replace(/`[^`\n]*`/g, ''), blocks };
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats. */
function anchors(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const outsideCode = md.replace(/^```[\s\S]*?^```[ \t]*$/gm, '');
  for (const m of outsideCode.matchAll(/^#{1,6}[ \t]+(.+?)[ \t]*$/gm)) {
    const base = m[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Relative link targets of a page: `[text](target)` and `![alt](target)` outside code. */
function relativeLinks(md: string): string[] {
  const { prose } = split(md);
  return [...prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)]
    .map((m) => m[1]!)
    .filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));
}

describe('docs', () => {
  test('README.md is at most 25 KB', () => {
    const size = statSync(join(ROOT, 'README.md')).size;
    assert.ok(size <= 25_000, `README.md is ${size} bytes`);
  });

  test('README.md keeps the two commands', () => {
    const readme = read('README.md');
    assert.match(readme, /^npm ci && npm start /m);
    assert.match(readme, /^npm ci && npm test /m);
  });

  test('every relative link in the docs resolves to a file, and every #anchor to a heading', () => {
    const broken: string[] = [];
    let checked = 0;
    for (const page of PAGES) {
      for (const target of relativeLinks(read(page))) {
        checked++;
        const [path, anchor] = target.split('#', 2) as [string, string | undefined];
        const file = path === '' ? join(ROOT, page) : resolve(dirname(join(ROOT, page)), decodeURI(path));
        if (!existsSync(file)) {
          broken.push(`${page}: ${target} (no such file)`);
          continue;
        }
        if (anchor !== undefined && file.endsWith('.md')) {
          if (!anchors(readFileSync(file, 'utf8')).has(anchor)) {
            broken.push(`${page}: ${target} (no heading #${anchor} in ${relative(ROOT, file)})`);
          }
        }
      }
    }
    assert.ok(checked > 50, `only ${checked} links found: is the link pattern still right?`);
    assert.deepEqual(broken, []);
  });

  test('the anchor rule matches GitHub on the headings the docs link to', () => {
    const md =
      '## 4. Switching from the AWS Extension\n#### Which zip?\n## Node.js and `pscache/client`\n## A\n## A\n';
    assert.deepEqual(
      [...anchors(md)].sort(),
      ['4-switching-from-the-aws-extension', 'a', 'a-1', 'nodejs-and-pscacheclient', 'which-zip'].sort(),
    );
  });

  test('the source article is named and linked exactly once in README.md', () => {
    const readme = read('README.md');
    const links = [...readme.matchAll(/\[([^\]]*)\]\((https?:\/\/cloudnugget[^)]*)\)/g)];
    assert.equal(links.length, 1, 'one link to the article');
    assert.equal(links[0]![2], ARTICLE);
    assert.match(links[0]![1]!, /cloudnugget\.dev article/, 'the link text names it');
    assert.ok(!readme.replace(links[0]![0], '').includes('cloudnugget'), 'named again outside the link');
  });

  test('no page points to SPEC.md or ../shared', () => {
    for (const page of PAGES) {
      const text = read(page);
      assert.ok(!text.includes('SPEC.md'), `${page} mentions SPEC.md`);
      assert.ok(!text.includes('../shared'), `${page} mentions ../shared`);
    }
  });

  test('BENCHMARKS.md is gone and nothing links to it', () => {
    assert.ok(!existsSync(join(ROOT, 'BENCHMARKS.md')), 'BENCHMARKS.md still exists');
    for (const page of PAGES) {
      const stale = relativeLinks(read(page)).filter((t) => /BENCHMARKS\.md/.test(t));
      assert.deepEqual(stale, [], `${page} links to BENCHMARKS.md`);
    }
  });
});

describe('deployment examples (docs/lambda.md)', () => {
  const { blocks } = split(read('docs/lambda.md'));

  test('Terraform: every var., local., resource and data reference is declared in the same snippet', () => {
    const hcl = blocks.filter((b) => b.lang === 'hcl');
    assert.ok(hcl.length > 0, 'no hcl block');
    for (const { code } of hcl) {
      const declared = new Set<string>();
      for (const m of code.matchAll(/^variable\s+"(\w+)"/gm)) declared.add(`var.${m[1]}`);
      for (const m of code.matchAll(/^resource\s+"(\w+)"\s+"(\w+)"/gm)) declared.add(`${m[1]}.${m[2]}`);
      for (const m of code.matchAll(/^data\s+"(\w+)"\s+"(\w+)"/gm)) declared.add(`data.${m[1]}.${m[2]}`);
      for (const block of code.matchAll(/^locals\s*\{\n([\s\S]*?)^\}/gm)) {
        for (const m of block[1]!.matchAll(/^\s+(\w+)\s*=/gm)) declared.add(`local.${m[1]}`);
      }
      const used = new Set<string>();
      // Outside the declarations' own header lines, so `resource "aws_x" "y"` is not a use of itself.
      const body = code.replace(/^(?:resource|data|variable)\s+"[^\n]*$/gm, '');
      for (const m of body.matchAll(/\b(var|local)\.(\w+)/g)) used.add(`${m[1]}.${m[2]}`);
      for (const m of body.matchAll(/\bdata\.(aws_\w+)\.(\w+)/g)) used.add(`data.${m[1]}.${m[2]}`);
      for (const m of body.matchAll(/(?<![\w.])(aws_\w+)\.(\w+)\.\w+/g)) used.add(`${m[1]}.${m[2]}`);
      const undeclared = [...used].filter((u) => !declared.has(u));
      assert.deepEqual(undeclared, [], 'referenced but not declared');
      assert.ok(!/"arn:aws:/.test(code), 'an ARN with a hard-coded partition');
    }
  });

  test('each example uses its zip with the matching architectures and runtimes', () => {
    let checked = 0;
    for (const { code } of blocks) {
      const zips = new Set([...code.matchAll(/pscache-(nodejs|x86_64|arm64)\.zip/g)].map((m) => m[1]));
      if (zips.size === 0) continue;
      assert.equal(zips.size, 1, `one zip per example:\n${code}`);
      const [zip] = zips;
      checked++;
      const arm = /\barm64\b|ARM_64/.test(code);
      const x86 = /\bx86_64\b|X86_64/.test(code.replace(/pscache-x86_64/g, ''));
      const nodeRuntime = /nodejs\d|NODEJS_/.test(code);
      const otherRuntime = /python\d|PYTHON_|java\d|JAVA_|dotnet\d|ruby\d|provided\.al/.test(code);
      if (zip === 'x86_64')
        assert.ok(!arm && !nodeRuntime, `pscache-x86_64.zip with arm64 or Node.js:\n${code}`);
      if (zip === 'arm64')
        assert.ok(!x86 && !nodeRuntime, `pscache-arm64.zip with x86_64 or Node.js:\n${code}`);
      if (zip === 'nodejs')
        assert.ok(!otherRuntime, `pscache-nodejs.zip with a non-Node.js runtime:\n${code}`);
    }
    assert.ok(checked >= 5, `only ${checked} examples name a zip`);
  });

  test('the standalone zip the prose names is the one every example uses', () => {
    const prose = read('docs/lambda.md').replace(/^```[\s\S]*?^```[ \t]*$/gm, '');
    const named = /Every example below[\s\S]{0,200}?`(pscache-(?:x86_64|arm64)\.zip)`/.exec(prose)?.[1];
    assert.ok(named, 'the sentence that says which zip the examples use');
    const used = blocks.flatMap(({ code }) =>
      [...code.matchAll(/pscache-(?:x86_64|arm64)\.zip/g)].map((m) => m[0]),
    );
    assert.ok(used.length >= 4, 'examples with a standalone zip');
    assert.deepEqual([...new Set(used)], [named]);
  });
});

describe('benchmark page', () => {
  test('docs/benchmarks.md has one results section, and a run can replace it', () => {
    const page = readFileSync(RESULTS_PAGE, 'utf8');
    const next = replaceResults(page, 'Run of a test.\n');
    assert.ok(
      next.includes(`${RESULTS_START}\nRun of a test.\n${RESULTS_END}`),
      'the new body between the markers',
    );
    assert.equal(next.slice(0, next.indexOf(RESULTS_START)), page.slice(0, page.indexOf(RESULTS_START)));
    assert.equal(next.slice(next.indexOf(RESULTS_END)), page.slice(page.indexOf(RESULTS_END)));
    assert.throws(() => replaceResults(page.replace(RESULTS_END, ''), 'x'), /expected one/);
  });
});
