// The Extensions API client's own HTTP/1.1 (src/lambda/http1.ts): every framing an HTTP server may use,
// in any split across packets, and every way an answer can fail, against real loopback sockets.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { ExtensionsApi, ExtensionsApiError } from '../src/lambda/extensions-api.ts';
import {
  type Answer,
  AnswerReader,
  exchange,
  parseAnswer,
  requestBytes,
  WireError,
} from '../src/lambda/http1.ts';

const b = (s: string) => Buffer.from(s, 'latin1');
const MAX = 1024 * 1024;
const HEAD = /^the answer's status line and headers take more than 16384 bytes$/;
const TRAILERS = /^the answer's trailers take more than 16384 bytes$/;

/** Feeds `raw` to the parser in pieces of `step` bytes, as packets would arrive; ends it after the last. */
function feed(raw: string, step: number): Answer {
  const all = b(raw);
  for (let n = step; n < all.length; n += step) {
    const a = parseAnswer(all.subarray(0, n), false, MAX);
    if (a) return a;
  }
  const a = parseAnswer(all, false, MAX) ?? parseAnswer(all, true, MAX);
  assert.ok(a, 'complete once every byte is in and the connection closed');
  return a;
}

const wireError = (kind: 'garbage' | 'network', message: RegExp) => (e: unknown) =>
  e instanceof WireError && e.kind === kind && message.test(e.message);

describe('parseAnswer: framings', () => {
  const cases: [string, string, number, string, Record<string, string>][] = [
    [
      'Content-Length',
      'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"eventType":',
      200,
      '{"eventType":',
      { 'content-type': 'application/json', 'content-length': '13' },
    ],
    [
      'chunked, with an extension and trailers',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\n{"a"\r\n3\r\n:1}\r\n0\r\nX-T: 1\r\n\r\n',
      200,
      '{"a":1}',
      { 'transfer-encoding': 'chunked' },
    ],
    [
      'until the connection closes',
      'HTTP/1.0 202 Accepted\r\nContent-Type: application/json\r\n\r\n{"status":"OK"}',
      202,
      '{"status":"OK"}',
      { 'content-type': 'application/json' },
    ],
    [
      'an interim 100 Continue first',
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\n{}',
      403,
      '{}',
      { 'content-length': '2' },
    ],
    ['204: no body whatever follows', 'HTTP/1.1 204 No Content\r\n\r\n', 204, '', {}],
    [
      'chunk sizes with leading zeros; Transfer-Encoding over two lines',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0000000000002\r\n{}\r\n000\r\n\r\n',
      200,
      '{}',
      { 'transfer-encoding': 'gzip, chunked' },
    ],
    [
      'repeated header: the first value; names lower-cased, values trimmed',
      'HTTP/1.1 200 OK\r\nLambda-Extension-Identifier:  id-1 \r\nlambda-extension-identifier: id-2\r\nContent-Length: 0\r\n\r\n',
      200,
      '',
      { 'lambda-extension-identifier': 'id-1', 'content-length': '0' },
    ],
  ];
  for (const [what, raw, status, body, headers] of cases) {
    test(`${what}: the same answer whichever way the bytes are split`, () => {
      for (const step of [1, 2, 3, 7, 64, raw.length]) {
        const a = feed(raw, step);
        assert.equal(a.status, status, `${what}, step ${step}`);
        assert.equal(a.body.toString('latin1'), body, `${what}, step ${step}`);
        assert.deepEqual(a.headers, headers, `${what}, step ${step}`);
      }
    });
  }

  test('Content-Length: complete as soon as the body is in, bytes after it ignored; not before', () => {
    const raw = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello';
    assert.equal(parseAnswer(b(raw.slice(0, -1)), false, MAX), undefined);
    assert.equal(parseAnswer(b(raw), false, MAX)?.body.toString(), 'hello');
    assert.equal(parseAnswer(b(`${raw}EXTRA`), false, MAX)?.body.toString(), 'hello');
  });

  test('without a length the answer waits for the close', () => {
    const raw = 'HTTP/1.1 200 OK\r\n\r\n{"x":1}';
    assert.equal(parseAnswer(b(raw), false, MAX), undefined);
    assert.equal(parseAnswer(b(raw), true, MAX)?.body.toString(), '{"x":1}');
  });
});

describe('parseAnswer: refusals', () => {
  const garbage: [string, string][] = [
    ['not HTTP at all', 'this is not HTTP\r\n\r\n'],
    ['not HTTP from its first bytes (known before any line ends)', 'SSH-2.0'],
    ['a bad status line', 'HTTP/1.1 2000 OK\r\n\r\n'],
    ['HTTP/2 framing', 'HTTP/2 200\r\n\r\n'],
    ['a header line without a colon', 'HTTP/1.1 200 OK\r\nno colon here\r\n\r\n'],
    ['a folded header line', 'HTTP/1.1 200 OK\r\nA: 1\r\n  folded\r\n\r\n'],
    ['a Content-Length that is not a number', 'HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n'],
    [
      'two Content-Lengths that disagree',
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
    ],
    ['a chunk size that is not hex', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
    [
      'a chunk not followed by CRLF',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY0\r\n\r\n',
    ],
    ['101 Switching Protocols', 'HTTP/1.1 101 Switching Protocols\r\n\r\n'],
  ];
  for (const [what, raw] of garbage) {
    test(`${what}: garbage`, () => {
      assert.throws(
        () => parseAnswer(b(raw), true, MAX),
        wireError('garbage', /^the answer is not HTTP$/),
        what,
      );
    });
  }

  test('a head that never ends is garbage once past 16 KiB, not a wait forever', () => {
    const raw = `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(17 * 1024)}`;
    assert.throws(
      () => parseAnswer(b(raw), false, MAX),
      wireError('garbage', /^the answer's status line and headers take more than 16384 bytes$/),
    );
    assert.equal(parseAnswer(b(raw.slice(0, 15 * 1024)), false, MAX), undefined);
  });

  test('a body over the limit is refused, whichever framing announces it', () => {
    const big = 'x'.repeat(101);
    for (const raw of [
      'HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n',
      `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n${big}\r\n0\r\n\r\n`,
      `HTTP/1.1 200 OK\r\n\r\n${big}`,
    ]) {
      assert.throws(
        () => parseAnswer(b(raw), false, 100),
        wireError('garbage', /larger than 100 bytes/),
        raw,
      );
    }
    assert.equal(parseAnswer(b('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n'), false, 100), undefined);
  });

  test('bounded whatever the server sends: interim answers, trailers, chunk extensions; refused, not buffered', () => {
    const floods: [string, string, RegExp][] = [
      ['endless 100 Continue', 'HTTP/1.1 100 Continue\r\n\r\n'.repeat(700), HEAD],
      [
        'an endless trailer section',
        `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-T: ${'a'.repeat(17 * 1024)}`,
        TRAILERS,
      ],
      [
        'endless trailer lines',
        `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${'X-T: 1\r\n'.repeat(3000)}`,
        TRAILERS,
      ],
    ];
    for (const [what, raw, message] of floods) {
      assert.throws(() => parseAnswer(b(raw), false, MAX), wireError('garbage', message), what);
    }
    // 1-byte chunks with 1000-byte extensions: the body fits, the bytes on the wire (8 x maxBody) do not.
    const max = 1000;
    const reader = new AnswerReader(max);
    reader.push(b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'));
    assert.throws(
      () => {
        for (let i = 0; i < 100; i++) reader.push(b(`1;${'e'.repeat(1000)}\r\nx\r\n`));
      },
      wireError('garbage', /^answer larger than 1000 bytes$/),
    );
  });

  test('read as it comes: 64 KiB in 1-byte chunks, each its own packet, is one answer', () => {
    const reader = new AnswerReader(MAX);
    assert.equal(reader.push(b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')), undefined);
    for (let i = 0; i < 64 * 1024; i++) assert.equal(reader.push(b('1\r\nx\r\n')), undefined);
    const a = reader.push(b('0\r\n\r\n'));
    assert.equal(a?.body.length, 64 * 1024);
    assert.ok(a?.body.every((c) => c === 120));
  });

  test('closed early: a hang-up before any byte, or a head or body cut short, is a network failure', () => {
    assert.throws(() => parseAnswer(b(''), true, MAX), wireError('network', /^socket hang up$/));
    for (const raw of [
      'HTTP/1.1 200 O',
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n',
    ]) {
      assert.throws(() => parseAnswer(b(raw), true, MAX), wireError('network', /ended early/), raw);
      assert.equal(parseAnswer(b(raw), false, MAX), undefined, raw);
    }
  });
});

describe('requestBytes', () => {
  test('the request line, Host, Connection: close, the headers, and a JSON body with its length', () => {
    const body = Buffer.from('{"events":["INVOKE"],"é":1}');
    const bytes = requestBytes({
      host: '127.0.0.1',
      port: 9001,
      method: 'POST',
      path: '/2020-01-01/extension/register',
      headers: { 'Lambda-Extension-Name': 'pscache' },
      body,
    });
    assert.equal(
      bytes.toString('latin1', 0, bytes.length - body.length),
      'POST /2020-01-01/extension/register HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nConnection: close\r\n' +
        `Lambda-Extension-Name: pscache\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    assert.deepEqual(bytes.subarray(bytes.length - body.length), body);
    const get = requestBytes({ host: '::1', port: 1, method: 'GET', path: '/p', headers: {} });
    assert.equal(get.toString('latin1'), 'GET /p HTTP/1.1\r\nHost: [::1]:1\r\nConnection: close\r\n\r\n');
  });

  test('a header value or name that would split the request is refused, never sent', () => {
    for (const headers of <Record<string, string>[]>[
      { 'Lambda-Extension-Name': 'a\r\nX-Injected: 1' },
      { 'Lambda-Extension-Name': 'a\nb' },
      { 'Lambda-Extension-Name': 'a\0b' },
      { 'Lambda-Extension-Name': 'ünïcode-ok-but-ꙮ' },
      { 'Bad Name': 'x' },
    ]) {
      assert.throws(
        () => requestBytes({ host: 'h', port: 1, method: 'GET', path: '/', headers }),
        /cannot be sent: it holds characters HTTP does not allow/,
      );
    }
  });
});

/** A loopback TCP server whose every connection is handled by `onConnection`. */
async function server(onConnection: (s: Socket, request: Promise<string>) => void): Promise<Server> {
  const srv = createServer((s) => {
    let got = '';
    const request = new Promise<string>((resolve) => {
      s.on('data', (d) => {
        got += d.toString('latin1');
        if (got.includes('\r\n\r\n')) resolve(got);
      });
    });
    s.on('error', () => {});
    onConnection(s, request);
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return srv;
}
const portOf = (s: Server) => (s.address() as { port: number }).port;
const closeServer = (s: Server) => new Promise((r) => s.close(r));

describe('exchange over a real socket', () => {
  test('an answer sent one byte at a time, chunked: read whole; the server sees no half-close before answering', async () => {
    let halfClosedEarly = false;
    const srv = await server((s, request) => {
      let answered = false;
      s.on('end', () => {
        if (!answered) halfClosedEarly = true;
      });
      void request.then(async () => {
        // Long enough for a client's half-close to arrive first.
        await new Promise((r) => setTimeout(r, 30));
        answered = true;
        const raw = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{"a":1}\r\n0\r\n\r\n';
        for (const c of raw) {
          s.write(c);
          await new Promise((r) => setImmediate(r));
        }
        // Not closed: the answer's framing says it is complete.
      });
    });
    try {
      const a = await exchange({
        host: '127.0.0.1',
        port: portOf(srv),
        method: 'GET',
        path: '/x',
        headers: {},
        maxBody: MAX,
        timeoutMs: 0,
      });
      assert.equal(a.status, 200);
      assert.equal(a.body.toString(), '{"a":1}');
      assert.equal(halfClosedEarly, false, 'a half-close could make a server drop a long poll');
    } finally {
      await closeServer(srv);
    }
  });

  test('a server that streams interim answers forever: event/next (no timeout) is refused, not held', async () => {
    const sockets = new Set<Socket>();
    const srv = await server((s) => {
      sockets.add(s);
      const chunk = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n'.repeat(100));
      const pump = () => {
        while (!s.destroyed && s.write(chunk));
        if (!s.destroyed) s.once('drain', pump);
      };
      pump();
    });
    try {
      await assert.rejects(
        exchange({
          host: '127.0.0.1',
          port: portOf(srv),
          method: 'GET',
          path: '/',
          headers: {},
          maxBody: MAX,
          timeoutMs: 0,
        }),
        wireError('garbage', HEAD),
      );
    } finally {
      for (const s of sockets) s.destroy();
      await closeServer(srv);
    }
  });

  test('refused, hung up, silent past the timeout, garbage: each a WireError of its kind', async () => {
    const hangUp = await server((s, request) => void request.then(() => s.destroy()));
    const held: Socket[] = [];
    const silent = await server((s) => void held.push(s));
    const junk = await server((s, request) => void request.then(() => s.end('garbage!')));
    const closed = await server(() => {});
    const closedPort = portOf(closed);
    await closeServer(closed);
    const x = (port: number, timeoutMs = 0) =>
      exchange({ host: '127.0.0.1', port, method: 'GET', path: '/', headers: {}, maxBody: MAX, timeoutMs });
    try {
      await assert.rejects(x(closedPort), wireError('network', /^ECONNREFUSED$/));
      await assert.rejects(x(portOf(hangUp)), wireError('network', /^(socket hang up|ECONNRESET)$/));
      await assert.rejects(x(portOf(silent), 50), wireError('network', /^no answer within 50 ms$/));
      await assert.rejects(x(portOf(junk)), wireError('garbage', /^the answer is not HTTP$/));
    } finally {
      for (const s of held) s.destroy();
      for (const s of [hangUp, silent, junk]) s.close();
    }
  });
});

describe('ExtensionsApi over its own HTTP', () => {
  test('each call on a fresh connection; close() ends an event/next in flight, so nothing holds the process', async () => {
    const requests: string[] = [];
    const sockets = new Set<Socket>();
    const srv = await server((s, request) => {
      sockets.add(s);
      void request.then((r) => {
        requests.push(r);
        if (r.startsWith('POST')) {
          const body = '{"functionName":"f","functionVersion":"$LATEST"}';
          s.end(
            `HTTP/1.1 200 OK\r\nLambda-Extension-Identifier: ext-1\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
          );
        }
        // event/next: held, as Lambda holds it until the next event.
      });
    });
    try {
      const api = new ExtensionsApi(`127.0.0.1:${portOf(srv)}`);
      const reg = await api.register('pscache', ['INVOKE', 'SHUTDOWN']);
      assert.deepEqual(reg, { id: 'ext-1', functionName: 'f', functionVersion: '$LATEST' });
      const next = api.next();
      await new Promise<void>((resolve) => {
        const check = () => (requests.length === 2 ? resolve() : setTimeout(check, 5));
        check();
      });
      assert.match(requests[1]!, /^GET \/2020-01-01\/extension\/event\/next HTTP\/1\.1\r\n/);
      assert.match(requests[1]!, /\r\nLambda-Extension-Identifier: ext-1\r\n/);
      assert.match(requests[1]!, /\r\nConnection: close\r\n/);
      assert.equal(sockets.size, 2, 'one connection per call');
      api.close();
      await assert.rejects(next, (e: unknown) => e instanceof ExtensionsApiError && e.kind === 'network');
    } finally {
      for (const s of sockets) s.destroy();
      await closeServer(srv);
    }
  });

  test('an extension name that would split the request: register fails with a clear error, nothing sent', async () => {
    let connections = 0;
    const srv = await server(() => {
      connections++;
    });
    try {
      const api = new ExtensionsApi(`127.0.0.1:${portOf(srv)}`);
      await assert.rejects(api.register('pscache\r\nX-Evil: 1', ['INVOKE']), /cannot be sent/);
      assert.equal(connections, 0);
    } finally {
      await closeServer(srv);
    }
  });
});
