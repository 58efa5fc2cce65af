// The logger: one line per call in both formats, whatever a field holds; control characters and line
// separators escaped so a name cannot forge a line of its own, and every value parses back.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { createLogger, type LogFormat } from '../src/log.ts';

/** Every character a log reader might break a line at or a terminal might act on. */
const CONTROLS = [
  ...Array.from({ length: 0x20 }, (_, i) => i),
  0x7f,
  ...Array.from({ length: 0x20 }, (_, i) => 0x80 + i),
  0x2028,
  0x2029,
].map((c) => String.fromCharCode(c));
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is looked for
const RAW = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

function logged(format: LogFormat, message: string, name: string): string {
  const lines: string[] = [];
  createLogger('debug', format, (l) => lines.push(l)).debug(message, { route: 'ssm', name, status: 404 });
  assert.equal(lines.length, 1);
  return lines[0]!;
}

/** The line without its final newline, after checking that it is one line with nothing raw in it. */
function oneLine(line: string): string {
  assert.ok(line.endsWith('\n'), 'ends with a newline');
  const body = line.slice(0, -1);
  assert.ok(!RAW.test(body), `a raw control character in ${JSON.stringify(body)}`);
  return body;
}

/** The text format's value of `name`: bare up to the next space, or a JSON string literal. */
function textName(body: string): string {
  const at = body.indexOf(' name=') + ' name='.length;
  if (body[at] !== '"') return body.slice(at, body.indexOf(' ', at));
  const end = body.indexOf('" status=', at);
  return JSON.parse(body.slice(at, end + 1)) as string;
}

describe('log escaping', () => {
  for (const c of CONTROLS) {
    const hex = c.charCodeAt(0).toString(16).padStart(4, '0');
    test(`U+${hex} in a value: one line in both formats, escaped, and it parses back`, () => {
      const name = `x${c}[pscache] ERROR forged`;
      const text = oneLine(logged('text', 'request', name));
      assert.match(text, /^\[pscache\] DEBUG request route=ssm name="/);
      assert.equal(textName(text), name);
      const json = JSON.parse(oneLine(logged('json', 'request', name))) as Record<string, unknown>;
      assert.equal(json['name'], name);
      assert.equal(json['level'], 'DEBUG');
    });
  }

  test('DEL, C1 controls and the line separators are quoted even without a space', () => {
    for (const c of ['\u007f', '\u0085', '\u009b', '\u2028', '\u2029']) {
      const text = oneLine(logged('text', 'request', `/a${c}b`));
      assert.equal(textName(text), `/a${c}b`);
      assert.ok(text.includes(`name="/a\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}b"`), text);
    }
  });

  test('a message with a line break or separator stays one line', () => {
    for (const format of ['text', 'json'] as const) {
      const line = oneLine(logged(format, 'could not listen on ::1\n[pscache] ERROR x\u2028y\u0085z', 'n'));
      if (format === 'json') {
        assert.equal(
          (JSON.parse(line) as { message: string }).message,
          'could not listen on ::1\n[pscache] ERROR x\u2028y\u0085z',
        );
      } else assert.match(line, /^\[pscache\] DEBUG could not listen on ::1\\u000a\[pscache\]/);
    }
  });

  test('plain values stay bare; spaces, quotes, = and backslashes are quoted', () => {
    assert.match(logged('text', 'request', '/app/db-url'), / name=\/app\/db-url status=404\n$/);
    for (const v of ['a b', 'a"b', 'a=b', 'a\\nb', '']) {
      const text = oneLine(logged('text', 'request', v));
      assert.equal(textName(text), v);
      assert.ok(text.includes(` name=${JSON.stringify(v)} `), text);
    }
  });

  test('any string at all: one line, and the value parses back, in both formats', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (name) => {
        assert.equal(textName(oneLine(logged('text', 'request', name))), name);
        assert.equal((JSON.parse(oneLine(logged('json', 'request', name))) as { name: string }).name, name);
      }),
      { numRuns: 2000 },
    );
  });
});
