// HTTP fuzzing model: the seeded store, fast-check generators of raw requests and sessions, the oracle that
// says which answers docs/http-api.md allows for each request, and the runner that checks a live daemon against it.
import fc from 'fast-check';
import { Conn, header, type ParsedResponse, STATUS_TABLE } from './fuzz-http.ts';
import type { World } from './world.ts';

// ---------------------------------------------------------------------------------------------------------
// The store the fuzzer reads (values are long enough to be registered as sensitive)

export interface ModelParameter {
  name: string;
  type: 'String' | 'StringList' | 'SecureString';
  /** Values of versions 1, 2, ... */
  versions: string[];
  labels: Record<string, number>;
}
export interface ModelSecret {
  id: string;
  current: string;
  previous?: string;
}

export const FUZZ_PARAMETERS: readonly ModelParameter[] = [
  {
    name: '/fz/plain',
    type: 'String',
    versions: ['fz-plain-value-v1', 'fz-plain-value-v2'],
    labels: { Stable: 1 },
  },
  {
    name: '/fz/secure',
    type: 'SecureString',
    versions: ['fz-secure-plaintext-v1', 'fz-secure-plaintext-v2'],
    labels: { Stable: 2 },
  },
  { name: '/fz/list', type: 'StringList', versions: ['fz-list-a,fz-list-b'], labels: {} },
  { name: '/fz/deep/one', type: 'String', versions: ['fz-deep-one-value'], labels: {} },
  { name: '/fz/denied', type: 'String', versions: ['fz-denied-parameter-value'], labels: {} },
];
export const FUZZ_SECRETS: readonly ModelSecret[] = [
  { id: 'fz/secret', current: 'fz-secret-current-value', previous: 'fz-secret-previous-value' },
  { id: 'fz/odd+name@x=y', current: 'fz-secret-odd-name-value' },
  { id: 'fz/denied-secret', current: 'fz-secret-denied-value' },
];
export const FUZZ_DENIED = ['/fz/denied', 'fz/denied-secret'];

/** Every value the store holds: none may reach a caller without a valid token. */
export const FUZZ_VALUES: readonly string[] = [
  ...FUZZ_PARAMETERS.flatMap((p) => p.versions),
  ...FUZZ_SECRETS.flatMap((s) => (s.previous ? [s.current, s.previous] : [s.current])),
];

/** Writes the model into the emulator through the AWS SDK; `register` marks each value as sensitive. */
export async function seedFuzzStore(world: World, register: (v: string) => void): Promise<void> {
  for (const v of FUZZ_VALUES) register(v);
  for (const p of FUZZ_PARAMETERS) {
    for (const v of p.versions) await world.putParameter(p.name, v, p.type);
    for (const [label, version] of Object.entries(p.labels)) await world.label(p.name, version, [label]);
  }
  for (const s of FUZZ_SECRETS) {
    if (s.previous !== undefined) {
      await world.createSecret(s.id, s.previous);
      await world.putSecretValue(s.id, s.current);
    } else {
      await world.createSecret(s.id, s.current);
    }
  }
  world.emu.deny(FUZZ_DENIED);
}

// ---------------------------------------------------------------------------------------------------------
// Requests. The token never appears in a generated value: placeholders stand for it (and for near misses),
// so a counterexample fast-check prints holds no secret.

const TOKEN_FORMS = ['{T}', '{T-1}', '{T+x}', '{T^}', '{T~}', '{T/2}'] as const;

/** Long runs are written `{pad:N}` in generated values (short counterexamples); this expands them. */
export function expand(s: string): string {
  return s.includes('{pad:') ? s.replace(/\{pad:(\d+)\}/g, (_, n: string) => 'p'.repeat(Number(n))) : s;
}

/** Replaces the token placeholders by the token and its near misses, and expands long runs. */
export function withToken(raw: string, token: string): string {
  const s = expand(raw);
  if (!s.includes('{T')) return s;
  const flip = token.slice(0, -1) + (token.endsWith('a') ? 'b' : 'a');
  return s
    .replaceAll('{T-1}', token.slice(0, -1))
    .replaceAll('{T+x}', `${token}x`)
    .replaceAll('{T^}', token.toUpperCase())
    .replaceAll('{T~}', flip)
    .replaceAll('{T/2}', token.slice(0, token.length >> 1))
    .replaceAll('{T}', token);
}

export interface FuzzRequest {
  method: string;
  target: string;
  version: 'HTTP/1.1' | 'HTTP/1.0';
  headers: Array<[string, string]>;
  body: string;
  /** How a body is framed; `both` sends Content-Length and chunked together (a smuggling attempt). */
  framing: 'length' | 'chunked' | 'both';
  /** Whether the request's one Host header names a loopback host: false for more than one Host header
   * (RFC 9112 3.2: 400, whatever the first says); undefined for none. */
  hostGood: boolean | undefined;
  /** The parser must refuse it (bad method, bad bytes in a header). */
  malformed: boolean;
}

/** The bytes on the wire. */
export function serialize(r: FuzzRequest, token: string): Buffer {
  let head = `${r.method} ${withToken(r.target, token)} ${r.version}\r\n`;
  for (const [n, v] of r.headers) head += `${n}: ${withToken(v, token)}\r\n`;
  let body = '';
  if (r.body !== '') {
    const text = withToken(r.body, token);
    const len = Buffer.byteLength(text, 'latin1');
    if (r.framing !== 'chunked') head += `Content-Length: ${len}\r\n`;
    if (r.framing !== 'length') head += 'Transfer-Encoding: chunked\r\n';
    body = r.framing === 'length' ? text : `${len.toString(16)}\r\n${text}\r\n0\r\n\r\n`;
  }
  return Buffer.from(`${head}\r\n${body}`, 'latin1');
}

const ROUTES = [
  '/ping',
  '/',
  '/metrics',
  '/systemsmanager/parameters/get',
  '/secretsmanager/get',
  '/parameters/get',
  '/secrets/get',
  '/systemsmanager/parameters/batch',
  '/systemsmanager/parameters/path',
  '/secretsmanager/batch',
] as const;
type RoutePath = (typeof ROUTES)[number];

/** What the server's route table says about a path: a route, with a single trailing slash allowed. */
export function routeOf(path: string): RoutePath | undefined {
  const known = (p: string) => (ROUTES as readonly string[]).includes(p);
  if (known(path)) return path as RoutePath;
  if (path.length > 1 && path.endsWith('/') && known(path.slice(0, -1)))
    return path.slice(0, -1) as RoutePath;
  return undefined;
}

const chars = (s: string) => fc.constantFrom(...s.split(''));
const URL_SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$'()*+,;:@/%";
const urlText = (max: number) => fc.string({ unit: chars(URL_SAFE), maxLength: max });
const tokenChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~";
const printable = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c));
const obsText = fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c));
const headerValue = fc.string({
  unit: fc.oneof({ weight: 20, arbitrary: printable }, { weight: 1, arbitrary: obsText }),
  maxLength: 60,
});

const PARAM_NAMES = FUZZ_PARAMETERS.map((p) => p.name);
const SECRET_IDS = FUZZ_SECRETS.map((s) => s.id);
const NAMES = [...PARAM_NAMES, ...SECRET_IDS, '/fz/missing', 'fz/missing', '/fz/', '/fz/deep/'];

const pathArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...ROUTES) },
  { weight: 2, arbitrary: fc.constantFrom(...ROUTES).map((p) => `${p}/`) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.constantFrom(...ROUTES),
        fc.constantFrom('/..', '/.', '/../ping', '//', '%2F', '%2e%2e', ';a=b', '/%00', '..', '/x', '#frag'),
      )
      .map(([p, s]) => p + s),
  },
  { weight: 1, arbitrary: fc.constantFrom(...ROUTES).map((p) => p.toUpperCase()) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '*',
      'http://localhost/ping',
      'http://evil.example/secretsmanager/get',
      '/%70ing',
      '/./ping',
      '/../ping',
      '//ping',
      '/ping/..',
      '/systemsmanager/parameters/../parameters/get',
      '/secretsmanager/get/..',
      '/secretsmanager/get//',
      '/__emulator/calls',
    ),
  },
  { weight: 2, arbitrary: fc.array(urlText(12), { maxLength: 5 }).map((s) => `/${s.join('/')}`) },
);

const keyArb: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.constantFrom(
      'name',
      'secretId',
      'version',
      'label',
      'withDecryption',
      'versionId',
      'versionStage',
      'refreshNow',
      'ttl',
      'path',
      'recursive',
    ),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'Name',
      'NAME',
      '',
      'name%00',
      'na%6De',
      'x',
      '__proto__',
      'constructor',
      'name[]',
      '%',
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: chars(URL_SAFE.replace('%', '')), maxLength: 8 }) },
);

const valueArb = (tokenAllowed: boolean): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 10, arbitrary: fc.constantFrom(...NAMES).map(encodeURIComponent) },
    { weight: 2, arbitrary: fc.constantFrom(...NAMES) },
    {
      weight: 3,
      arbitrary: fc
        .tuple(fc.constantFrom(...PARAM_NAMES), fc.constantFrom(':1', ':2', ':Stable', ':99', ':nolabel'))
        .map(([n, s]) => encodeURIComponent(n + s)),
    },
    {
      weight: 4,
      arbitrary: fc.constantFrom(
        'true',
        'false',
        'TRUE',
        'False',
        '1',
        '2',
        '0',
        '-1',
        '99',
        '',
        'AWSCURRENT',
        'AWSPREVIOUS',
        'Stable',
        '300',
        '86401',
        '0x10',
        '%2Ffz%2F',
        '/fz/',
        '/',
      ),
    },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        '%',
        '%z',
        '%zz',
        '%e9',
        '%C3%A9',
        '%00',
        '%0A',
        '%0d%0a',
        '..',
        '../..',
        '%2e%2e%2f',
        '+',
        '%2B',
        '%F0%9F%94%91',
        '%ED%A0%80',
        '%C0%AF',
      ),
    },
    { weight: 1, arbitrary: fc.integer({ min: 2040, max: 2060 }).map((n) => `/{pad:${n}}`) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }).map(encodeURIComponent) },
    { weight: 1, arbitrary: urlText(20) },
    // The token itself in the URL: only where the request carries no valid token (the answer must not echo it).
    ...(tokenAllowed ? [{ weight: 1, arbitrary: fc.constantFrom(...TOKEN_FORMS) }] : []),
  );

const queryArb = (tokenAllowed: boolean): fc.Arbitrary<string> =>
  fc
    .array(fc.tuple(keyArb, fc.option(valueArb(tokenAllowed), { nil: undefined, freq: 8 })), { maxLength: 6 })
    .chain((pairs) =>
      fc
        .constantFrom('&', '&', '&', '&&')
        .map((sep) => pairs.map(([k, v]) => (v === undefined ? k : `${k}=${v}`)).join(sep)),
    );

const enc = encodeURIComponent;
/** Well-formed reads of every route, so that the answers' values get checked often. */
const canonicalTargetArb: fc.Arbitrary<string> = fc.oneof(
  fc
    .tuple(
      fc.constantFrom('/systemsmanager/parameters/get', '/parameters/get'),
      fc.constantFrom(...PARAM_NAMES, '/fz/missing'),
      fc.constantFrom(
        '',
        '&withDecryption=true',
        '&withDecryption=false',
        '&version=1',
        '&label=Stable',
        '&version=9',
        '&refreshNow=true',
        '&ttl=0',
        '&withDecryption=TRUE&version=2',
      ),
    )
    .map(([r, n, x]) => `${r}?name=${enc(n)}${x}`),
  fc
    .tuple(
      fc.constantFrom('/secretsmanager/get?secretId=', '/secrets/get?name=', '/secrets/get?secretId='),
      fc.constantFrom(...SECRET_IDS, 'fz/missing'),
      fc.constantFrom(
        '',
        '&versionStage=AWSPREVIOUS',
        '&versionStage=AWSCURRENT',
        '&refreshNow=true',
        '&ttl=1',
      ),
    )
    .map(([r, n, x]) => `${r}${enc(n)}${x}`),
  fc
    .tuple(
      fc.subarray([...PARAM_NAMES, '/fz/plain:1', '/fz/secure:1', '/fz/plain:Stable', '/fz/missing'], {
        minLength: 1,
      }),
      fc.constantFrom('', '&withDecryption=true'),
    )
    .map(([ns, x]) => `/systemsmanager/parameters/batch?${ns.map((n) => `name=${enc(n)}`).join('&')}${x}`),
  fc
    .tuple(
      fc.constantFrom('/fz/', '/fz', '/fz/deep/', '/nothing/'),
      fc.constantFrom('', '&recursive=true'),
      fc.constantFrom('', '&withDecryption=true'),
    )
    .map(([p, r, x]) => `/systemsmanager/parameters/path?path=${enc(p)}${r}${x}`),
  fc
    .subarray([...SECRET_IDS, 'fz/missing'], { minLength: 1 })
    .map((ids) => `/secretsmanager/batch?${ids.map((i) => `secretId=${enc(i)}`).join('&')}`),
);

const targetArb = (tokenAllowed: boolean): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 20, arbitrary: canonicalTargetArb },
    {
      weight: 30,
      arbitrary: fc
        .tuple(pathArb, fc.option(queryArb(tokenAllowed), { freq: 6 }))
        .map(([p, q]) => (q === null ? p : `${p}?${q}`)),
    },
    // Just over the URL limit (8 KB), and over the header limit (16 KB) altogether.
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom(...ROUTES), fc.integer({ min: 8300, max: 9000 }))
        .map(([p, n]) => `${p}?name={pad:${n}}`),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom(...ROUTES), fc.integer({ min: 17000, max: 20000 }))
        .map(([p, n]) => `${p}?name={pad:${n}}`),
    },
  );

const TOKEN_HEADER = 'x-aws-parameters-secrets-token';
const tokenHeaderName = fc
  .array(fc.boolean(), { minLength: TOKEN_HEADER.length, maxLength: TOKEN_HEADER.length })
  .map((bits) =>
    TOKEN_HEADER.split('')
      .map((c, i) => (bits[i] ? c.toUpperCase() : c))
      .join(''),
  );
const tokenValue = fc.oneof(
  { weight: 12, arbitrary: fc.constant('{T}') },
  { weight: 1, arbitrary: fc.constantFrom(' {T}', '{T}\t', '  {T}  ') },
  {
    weight: 4,
    arbitrary: fc.constantFrom('', '{T-1}', '{T+x}', '{T^}', '{T~}', '{T/2}', '{T}, {T}', '{T},{T}'),
  },
  { weight: 1, arbitrary: headerValue },
);

/** Host values with what docs/http-api.md says of them: loopback names and addresses pass, anything else is 400. */
const GOOD_HOSTS = [
  'localhost',
  'localhost:2773',
  'LOCALHOST',
  '127.0.0.1',
  '127.0.0.1:2773',
  '127.1.2.3',
  '[::1]',
  '[::1]:2773',
  'app.localhost',
  ' localhost ',
];
const BAD_HOSTS = [
  '',
  'evil.example',
  'evil.example:2773',
  'localhost.evil.example',
  '127.0.0.1.evil.example',
  'evil-localhost',
  '169.254.169.254',
  '169.254.170.2',
  '0.0.0.0',
  '10.0.0.1',
  '192.168.1.1:2773',
  '[::]',
  '[fe80::1]',
  'localhost@evil.example',
  '127.0.0.1@evil.example',
  'metadata.google.internal',
];
const hostArb = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...GOOD_HOSTS).map((v) => ({ v, good: true })) },
  { weight: 1, arbitrary: fc.constantFrom(...BAD_HOSTS).map((v) => ({ v, good: false })) },
);

const FORWARDING = ['X-Forwarded-For', 'x-forwarded-for', 'FORWARDED', 'Forwarded', 'X-Real-IP', 'x-real-ip'];
const forwardingArb = fc.tuple(
  fc.constantFrom(...FORWARDING),
  fc.oneof(fc.constantFrom('127.0.0.1', '', '10.0.0.1, 127.0.0.1', 'for=127.0.0.1', '::1'), headerValue),
);

const otherHeaderArb: fc.Arbitrary<[string, string]> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.tuple(
      fc.string({ unit: chars(tokenChars), minLength: 1, maxLength: 12 }).map((n) => `X-F-${n}`),
      headerValue,
    ),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom<[string, string]>(
      ['Connection', 'keep-alive'],
      ['Connection', 'close'],
      ['Accept', '*/*'],
      ['User-Agent', 'fuzz/1.0'],
      ['Expect', '100-continue'],
      ['Expect', 'something-else'],
      ['X-Forwarded-Host', 'evil.example'],
      ['Upgrade', 'websocket'],
      ['Cookie', 'a=b'],
    ),
  },
  // Long headers: under the 16 KB limit, or over it.
  {
    weight: 1,
    arbitrary: fc.integer({ min: 4000, max: 9000 }).map<[string, string]>((n) => ['X-Pad', `{pad:${n}}`]),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 17000, max: 20000 }).map<[string, string]>((n) => ['X-Pad', `{pad:${n}}`]),
  },
);

const methodArb = fc.oneof(
  { weight: 30, arbitrary: fc.constant('GET') },
  { weight: 6, arbitrary: fc.constant('HEAD') },
  {
    weight: 6,
    arbitrary: fc.constantFrom('POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'PURGE'),
  },
  { weight: 1, arbitrary: fc.constant('CONNECT') },
);

/** One well-framed request, or (rarely) one the parser must refuse. */
export const requestArb: fc.Arbitrary<FuzzRequest> = fc
  .record({
    method: methodArb,
    version: fc.constantFrom<'HTTP/1.1' | 'HTTP/1.0'>(
      'HTTP/1.1',
      'HTTP/1.1',
      'HTTP/1.1',
      'HTTP/1.1',
      'HTTP/1.1',
      'HTTP/1.1',
      'HTTP/1.0',
    ),
    tokens: fc.array(fc.tuple(tokenHeaderName, tokenValue), { maxLength: 2 }),
    hosts: fc.oneof(
      { weight: 12, arbitrary: fc.array(hostArb, { minLength: 1, maxLength: 1 }) },
      { weight: 1, arbitrary: fc.array(hostArb, { maxLength: 3 }) },
    ),
    forwarding: fc.oneof(
      { weight: 12, arbitrary: fc.constant(null) },
      { weight: 1, arbitrary: forwardingArb },
    ),
    others: fc.array(otherHeaderArb, { maxLength: 3 }),
    body: fc.oneof(
      { weight: 8, arbitrary: fc.constant('') },
      { weight: 1, arbitrary: fc.string({ unit: printable, minLength: 1, maxLength: 80 }) },
      {
        weight: 1,
        arbitrary: fc.constant(
          'GET /secretsmanager/get?secretId=fz%2Fsecret HTTP/1.1\r\nHost: localhost\r\nX-Aws-Parameters-Secrets-Token: {T}\r\n\r\n',
        ),
      },
    ),
    framing: fc.constantFrom<'length' | 'chunked' | 'both'>('length', 'length', 'chunked', 'both'),
    broken: fc.oneof(
      { weight: 30, arbitrary: fc.constant(null) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          'method-foo',
          'method-lower',
          'nul-in-header',
          'space-in-name',
          'obs-fold',
          'lf-only-head',
          'ctl-in-target',
        ),
      },
    ),
  })
  .chain((r) => {
    // The token may only show up in the URL of a request that is not authorised.
    const authorised = validToken(r.tokens.map(([, v]) => v));
    return targetArb(!authorised).map((target) => ({ ...r, target }));
  })
  .map((r): FuzzRequest => {
    const headers: Array<[string, string]> = [];
    for (const h of r.hosts) headers.push(['Host', h.v]);
    for (const t of r.tokens) headers.push(t);
    if (r.forwarding) headers.push(r.forwarding);
    for (const o of r.others) headers.push(o);
    let method: string = r.method;
    // CONNECT takes an authority, not a path.
    let target = method === 'CONNECT' ? 'localhost:2773' : r.target;
    let malformed = false;
    switch (r.broken) {
      case 'method-foo':
        method = 'FOO';
        malformed = true;
        break;
      case 'method-lower':
        method = method.toLowerCase();
        malformed = true;
        break;
      case 'nul-in-header':
        headers.push(['X-Nul', 'a\u0000b']);
        malformed = true;
        break;
      case 'space-in-name':
        headers.push(['X Bad', 'b']);
        malformed = true;
        break;
      case 'obs-fold':
        headers.push(['X-Fold', 'a\r\n folded']);
        malformed = true;
        break;
      case 'ctl-in-target':
        target = `${target}\u0001`;
        malformed = true;
        break;
      case 'lf-only-head':
        headers.push(['X-Lf', 'a\nX-Injected: 1']);
        malformed = true;
        break;
    }
    return {
      method,
      target,
      version: r.version,
      headers,
      body: r.body,
      framing: r.framing,
      hostGood: r.hosts.length === 0 ? undefined : r.hosts.length === 1 && r.hosts[0]!.good,
      malformed,
    };
  });

function validToken(values: string[]): boolean {
  // Node joins repeated headers with ", ": two token headers never match.
  return values.length === 1 && values[0]!.replace(/^[ \t]+|[ \t]+$/g, '') === '{T}';
}

// ---------------------------------------------------------------------------------------------------------
// The oracle

export interface Expectation {
  statuses: ReadonlySet<number>;
  /** What a 200 carries. */
  body: 'ping' | 'root' | 'metrics' | 'json';
  /** The request carried the right token (only such an answer may hold a value). */
  authorised: boolean;
  /** The server may (or must) close the connection after answering. */
  closes: boolean;
  /** The HTTP parser refuses it (400 with a body even to a HEAD, connection closed, later pipelined
   * requests unanswered): surely, or maybe (a request right at the 16 KB header limit). */
  parserRefuses: boolean;
  refusalCertain: boolean;
  route: RoutePath | undefined;
}

const hasHeader = (r: FuzzRequest, name: string) => r.headers.some(([n]) => n.toLowerCase() === name);
const headerBytes = (r: FuzzRequest) =>
  r.method.length +
  expand(r.target).length +
  12 +
  r.headers.reduce((a, [n, v]) => a + n.length + expand(v).length + 4, 0);

/** Which statuses the check order of docs/http-api.md allows for this request (outside a connection flood). */
export function expectationFor(r: FuzzRequest): Expectation {
  const target = expand(r.target);
  const q = target.indexOf('?');
  const route = routeOf(q === -1 ? target : target.slice(0, q));
  const tokens = r.headers.filter(([n]) => n.toLowerCase() === TOKEN_HEADER).map(([, v]) => v);
  const authorised = validToken(tokens);
  // Connection: close, HTTP/1.0 and Expect (answered without reading the body) may end the connection.
  const connectionClose = r.headers.some(
    ([n, v]) =>
      (n.toLowerCase() === 'connection' && v.toLowerCase() === 'close') || n.toLowerCase() === 'expect',
  );
  const base = {
    body:
      route === '/ping'
        ? ('ping' as const)
        : route === '/'
          ? ('root' as const)
          : route === '/metrics'
            ? ('metrics' as const)
            : ('json' as const),
    authorised,
    closes: connectionClose || r.version === 'HTTP/1.0',
    parserRefuses: false,
    refusalCertain: false,
    route,
  };
  const only = (...s: number[]) => ({ ...base, statuses: new Set(s) });
  const size = headerBytes(r);
  const refused = {
    ...base,
    statuses: new Set([400]),
    closes: true,
    parserRefuses: true,
    refusalCertain: true,
  };
  if (r.malformed || (r.body !== '' && r.framing === 'both')) return refused;
  if (size > 16 * 1024 + 512) return refused;
  const nearLimit = size > 16 * 1024 - 1024;
  // From here on, a request near the header limit may still be refused by the parser.
  const maybeRefused = (e: Expectation): Expectation =>
    nearLimit ? { ...e, statuses: new Set([...e.statuses, 400]), closes: true, parserRefuses: true } : e;
  if (r.method === 'CONNECT') return maybeRefused({ ...only(405), closes: true });
  const isGet = r.method === 'GET' || r.method === 'HEAD';
  if (expand(r.target).length > 8192) return maybeRefused(only(400));
  if (r.version === 'HTTP/1.1' && r.hostGood === undefined) return maybeRefused(only(400)); // Host is required in 1.1
  if (FORWARDING.some((f) => hasHeader(r, f.toLowerCase()))) return maybeRefused(only(400));
  if (r.hostGood === false) return maybeRefused(only(400));
  if (route === '/ping' || route === '/') return maybeRefused(isGet ? only(200) : only(405));
  if (!authorised) return maybeRefused(only(401));
  if (!isGet) return maybeRefused(only(405));
  if (route === undefined) return maybeRefused(only(404));
  if (route === '/metrics') return maybeRefused(only(200));
  return maybeRefused(only(200, 400, 403, 404));
}

// ---------------------------------------------------------------------------------------------------------
// Checking one answer

export class Violation extends Error {
  override name = 'Violation';
}

function describe(r: FuzzRequest): string {
  const t = r.target.length > 120 ? `${r.target.slice(0, 120)}...(${r.target.length} chars)` : r.target;
  return `${r.method} ${JSON.stringify(t)}`;
}

/** Decodes a query the way docs/http-api.md says (`+` is a space); undefined when a percent-escape is malformed. */
function decodeQuery(target: string): Array<[string, string]> | undefined {
  const q = target.indexOf('?');
  if (q === -1) return [];
  const out: Array<[string, string]> = [];
  for (const part of target.slice(q + 1).split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    try {
      const d = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
      out.push([d(eq === -1 ? part : part.slice(0, eq)), d(eq === -1 ? '' : part.slice(eq + 1))]);
    } catch {
      return undefined;
    }
  }
  return out;
}

function versionOf(p: ModelParameter, selector: string | undefined): number | undefined {
  if (selector === undefined) return p.versions.length;
  if (/^\d+$/.test(selector)) return Number(selector);
  return p.labels[selector];
}

/**
 * A parameter as answered must be the model's value for the name, selector and decryption asked. The
 * selector asked is `asked` (undefined: none, the latest version); for batch answers, the one it names.
 */
function checkParameter(
  p: Record<string, unknown>,
  decrypt: boolean,
  where: string,
  asked?: string | null,
): void {
  const model = FUZZ_PARAMETERS.find((m) => m.name === p['Name']);
  if (!model) throw new Violation(`${where}: a parameter the store does not hold`);
  const answered = typeof p['Selector'] === 'string' ? (p['Selector'] as string).slice(1) : undefined;
  if (asked !== null && answered !== asked) {
    throw new Violation(
      `${where}: ${model.name} asked with selector ${asked ?? '(none)'}, answered for ${answered ?? '(none)'}`,
    );
  }
  const selector = asked === null ? answered : asked;
  const version = versionOf(model, selector);
  if (version === undefined || p['Version'] !== version) {
    throw new Violation(
      `${where}: ${model.name} answered as version ${p['Version']}, the selector says ${version}`,
    );
  }
  const expected = model.versions[version - 1];
  if (model.type === 'SecureString' && !decrypt) {
    if (model.versions.includes(p['Value'] as string)) {
      throw new Violation(`${where}: plaintext of ${model.name} answered without withDecryption=true`);
    }
  } else if (p['Value'] !== expected) {
    throw new Violation(`${where}: ${model.name} version ${version} answered with another value`);
  }
}

function checkSecret(s: Record<string, unknown>, stage: string | undefined, where: string): void {
  const model = FUZZ_SECRETS.find((m) => m.id === s['Name']);
  if (!model) throw new Violation(`${where}: a secret the store does not hold`);
  const expected =
    stage === 'AWSPREVIOUS'
      ? model.previous
      : stage === undefined || stage === 'AWSCURRENT'
        ? model.current
        : undefined;
  if (
    expected !== undefined
      ? s['SecretString'] !== expected
      : ![model.current, model.previous].includes(s['SecretString'] as string)
  ) {
    throw new Violation(`${where}: ${model.id} (${stage ?? 'current'}) answered with another value`);
  }
}

/** The body of an authorised 200 from an item or collection route agrees with the store. */
function checkValues(r: FuzzRequest, e: Expectation, doc: Record<string, unknown>, where: string): void {
  const query = decodeQuery(expand(r.target));
  if (query === undefined) throw new Violation(`${where}: 200 for a query with a malformed percent-escape`);
  const first = (k: string) => query.find(([key]) => key === k)?.[1];
  const decrypt = first('withDecryption')?.toLowerCase() === 'true';
  switch (e.route) {
    case '/systemsmanager/parameters/get':
    case '/parameters/get': {
      const p = doc['Parameter'] as Record<string, unknown> | undefined;
      if (!p) throw new Violation(`${where}: 200 without a Parameter`);
      const asked = first('name') ?? '';
      const colon = asked.lastIndexOf(':');
      const base = colon === -1 ? asked : asked.slice(0, colon);
      if (p['Name'] !== base) throw new Violation(`${where}: asked for one parameter, got another`);
      // The selector: the first of version and label in the query, else one in the name.
      const sel =
        query.find(([k]) => k === 'version' || k === 'label')?.[1] ??
        (colon === -1 ? undefined : asked.slice(colon + 1));
      checkParameter(p, decrypt, where, sel);
      return;
    }
    case '/secretsmanager/get':
    case '/secrets/get': {
      const asked = first('secretId') ?? first('name');
      if (doc['Name'] !== asked) throw new Violation(`${where}: asked for one secret, got another`);
      checkSecret(doc, first('versionId') !== undefined ? 'by-id' : first('versionStage'), where);
      return;
    }
    case '/systemsmanager/parameters/batch':
    case '/systemsmanager/parameters/path': {
      const list = doc['Parameters'];
      if (!Array.isArray(list)) throw new Violation(`${where}: 200 without a Parameters list`);
      const names = query.filter(([k]) => k === 'name').map(([, v]) => v);
      const path = first('path') ?? '';
      for (const p of list as Record<string, unknown>[]) {
        const n = p['Name'] as string;
        if (
          e.route.endsWith('batch')
            ? !names.some((a) => a === n || a.startsWith(`${n}:`))
            : !n.startsWith(path)
        ) {
          throw new Violation(`${where}: a parameter that was not asked for`);
        }
        // A batch answer carries the selector of the name it answers; a path answer has none.
        checkParameter(p, decrypt, where, e.route.endsWith('batch') ? null : undefined);
      }
      return;
    }
    case '/secretsmanager/batch': {
      const list = doc['SecretValues'];
      if (!Array.isArray(list)) throw new Violation(`${where}: 200 without a SecretValues list`);
      const ids = query.filter(([k]) => k === 'secretId').map(([, v]) => v);
      for (const s of list as Record<string, unknown>[]) {
        if (!ids.includes(s['Name'] as string))
          throw new Violation(`${where}: a secret that was not asked for`);
        checkSecret(s, undefined, where);
      }
      return;
    }
  }
}

export interface CheckContext {
  token: string;
  /** Statuses allowed on top of the oracle's (429 in a connection flood). */
  extra?: ReadonlySet<number>;
}

/** Checks one answer against its request; throws a Violation that names neither the token nor any value. */
export function checkResponse(r: FuzzRequest, res: ParsedResponse, ctx: CheckContext, index: number): void {
  const e = expectationFor(r);
  const where = `request #${index} ${describe(r)} -> ${res.status}`;
  if (!STATUS_TABLE.has(res.status)) throw new Violation(`${where}: status outside the errors table`);
  if (!e.statuses.has(res.status) && !ctx.extra?.has(res.status)) {
    throw new Violation(`${where}: expected ${[...e.statuses].join('|')}`);
  }
  const text = res.body.toString('utf8');
  if (text.includes(ctx.token)) throw new Violation(`${where}: the body holds the token`);
  if (!e.authorised && FUZZ_VALUES.some((v) => text.includes(v))) {
    throw new Violation(`${where}: a value answered to a request without a valid token`);
  }
  if (header(res, 'cache-control') !== 'no-store')
    throw new Violation(`${where}: no Cache-Control: no-store`);
  if ((res.status === 429 || res.status === 503) && header(res, 'retry-after') === undefined) {
    throw new Violation(`${where}: no Retry-After`);
  }
  // A HEAD's answer has no body, unless the parser refused the request (that raw 400 has no Date header).
  if (r.method === 'HEAD' && header(res, 'date') !== undefined) {
    if (res.body.length !== 0) throw new Violation(`${where}: HEAD answered with a body`);
    return;
  }
  const type = header(res, 'content-type') ?? '';
  if (res.status === 200 && e.body !== 'json') {
    if (!type.startsWith('text/plain')) throw new Violation(`${where}: ${e.body} is not text/plain`);
    if (e.body === 'ping' && text !== 'healthy') throw new Violation(`${where}: /ping body is not "healthy"`);
    if (e.body === 'root' && !/^healthy\npscache \d+\.\d+\.\d+/.test(text)) {
      throw new Violation(`${where}: / body is not "healthy" and the version`);
    }
    if (e.body === 'metrics' && (text.includes('/fz/') || text.includes('fz/'))) {
      throw new Violation(`${where}: /metrics names a parameter or secret`);
    }
    return;
  }
  if (type !== 'application/json')
    throw new Violation(`${where}: Content-Type ${JSON.stringify(type)}, not JSON`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Violation(`${where}: body is not JSON`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new Violation(`${where}: body is not a JSON object`);
  const o = doc as Record<string, unknown>;
  if (res.status !== 200) {
    if (typeof o['__type'] !== 'string' || typeof o['message'] !== 'string') {
      throw new Violation(`${where}: error body without __type and message`);
    }
    return;
  }
  checkValues(r, e, o, where);
}

// ---------------------------------------------------------------------------------------------------------
// Sessions: what one fast-check case does on the wire

export type Session =
  | { kind: 'sequential'; requests: FuzzRequest[] }
  | { kind: 'pipelined'; requests: FuzzRequest[]; halfClose: boolean; splits: number[] }
  | { kind: 'flood'; requests: FuzzRequest[] }
  | { kind: 'garbage'; prefix: string; bytes: Uint8Array; halfClose: boolean };

/** A request that is answered synchronously and simply: what many concurrent connections send. */
const floodRequestArb: fc.Arbitrary<FuzzRequest> = fc
  .tuple(
    fc.constantFrom(
      '/ping',
      '/systemsmanager/parameters/get?name=%2Ffz%2Fplain',
      '/secretsmanager/get?secretId=fz%2Fsecret',
      '/metrics',
    ),
    fc.constantFrom('{T}', '{T~}', ''),
  )
  .map(([target, t]) => ({
    method: 'GET',
    target,
    version: 'HTTP/1.1' as const,
    headers: [['Host', 'localhost'], ...(t === '' ? [] : [['X-Aws-Parameters-Secrets-Token', t]])] as Array<
      [string, string]
    >,
    body: '',
    framing: 'length' as const,
    hostGood: true,
    malformed: false,
  }));

export const sessionArb: fc.Arbitrary<Session> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .array(requestArb, { minLength: 1, maxLength: 4 })
      .map((requests) => ({ kind: 'sequential' as const, requests })),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('pipelined' as const),
      requests: fc.array(requestArb, { minLength: 2, maxLength: 5 }),
      halfClose: fc.boolean(),
      splits: fc.array(fc.integer({ min: 1, max: 400 }), { maxLength: 4 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc
      .array(floodRequestArb, { minLength: 8, maxLength: 40 })
      .map((requests) => ({ kind: 'flood' as const, requests })),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('garbage' as const),
      prefix: fc.constantFrom(
        '',
        'GET / HTTP/1.1\r\n',
        'GET /ping HTTP/1.1\r\nHost: localhost\r\n',
        'GET /secretsmanager/get?secretId=fz%2Fsecret HTTP/1.1\r\n',
      ),
      bytes: fc.uint8Array({ maxLength: 300 }),
      halfClose: fc.boolean(),
    }),
  },
);

export interface SessionStats {
  requests: number;
  responses: number;
  byStatus: Map<number, number>;
}

/** A bound for an answer that never comes, not a deadline: a loaded machine may take seconds. */
const WAIT_MS = 15_000;
const tick = () => new Promise<void>((r) => setImmediate(r));

function count(stats: SessionStats, responses: ParsedResponse[]): void {
  stats.responses += responses.length;
  for (const r of responses) stats.byStatus.set(r.status, (stats.byStatus.get(r.status) ?? 0) + 1);
}

/** Runs one session against the daemon on `port` and checks every answer; throws a Violation on the first problem. */
export async function runSession(
  port: number,
  s: Session,
  token: string,
  stats: SessionStats,
): Promise<void> {
  if (s.kind === 'garbage') return runGarbage(port, s, token, stats);
  if (s.kind === 'flood') return runFlood(port, s, token, stats);
  const exps = s.requests.map(expectationFor);
  const isHead = (i: number) => {
    if (s.requests[i]?.method !== 'HEAD') return false;
    const e = exps[i]!;
    return e.parserRefuses ? (e.refusalCertain ? false : 'maybe') : true;
  };
  const conn = new Conn(port, isHead);
  try {
    await conn.ready();
    if (s.kind === 'sequential') {
      for (let i = 0; i < s.requests.length; i++) {
        // After an answer that may close the connection, the rest of the session has nowhere to go.
        if (i > 0 && exps[i - 1]!.closes) break;
        if (conn.closed)
          throw new Violation(`the connection closed after request #${i - 1}, which keeps it alive`);
        conn.write(serialize(s.requests[i]!, token));
        stats.requests++;
        if (!(await conn.waitFor(i + 1, WAIT_MS)))
          throw new Violation(`request #${i} ${describe(s.requests[i]!)}: no answer within ${WAIT_MS} ms`);
        if (conn.reader.error) throw new Violation(`request #${i}: ${conn.reader.error}`);
        if (conn.reader.responses.length <= i)
          throw new Violation(
            `request #${i} ${describe(s.requests[i]!)}: connection closed without an answer`,
          );
        checkResponse(s.requests[i]!, conn.reader.responses[i]!, { token }, i);
      }
    } else {
      const bytes = Buffer.concat(s.requests.map((r) => serialize(r, token)));
      let at = 0;
      for (const n of s.splits) {
        conn.write(bytes.subarray(at, at + n));
        at += n;
        await tick();
      }
      conn.write(bytes.subarray(at));
      if (s.halfClose) conn.end();
      stats.requests += s.requests.length;
      // The answers stop after the first request that closes the connection (or that the parser refuses).
      const stop = exps.findIndex((e) => e.closes);
      const refusedAt = exps.findIndex((e) => e.parserRefuses);
      const want = stop === -1 ? s.requests.length : stop + 1;
      const waited = await conn.waitFor(want, WAIT_MS);
      const got = conn.reader.responses;
      if (s.requests.some((r, i) => i > 0 && r.method === 'CONNECT')) {
        // A pipelined CONNECT takes the socket from the HTTP server: its 405 may overtake answers still
        // queued (no client does this), so only what holds for any answer is checked.
        for (const res of got) checkAnyAnswer(res, token, 'pipelined CONNECT');
        count(stats, got);
        return;
      }
      if (!waited) throw new Violation(`pipelined: ${got.length} of ${want} answers within ${WAIT_MS} ms`);
      if (conn.reader.error) throw new Violation(`pipelined: ${conn.reader.error}`);
      // A pipelined request the parser refuses may take earlier, still pending answers with it. So may
      // requests sent after one that closes the connection (which RFC 9112 forbids a client to send): Node
      // then drops the answers still queued, the closing request's included.
      const lenient =
        (refusedAt !== -1 && refusedAt <= (stop === -1 ? Number.POSITIVE_INFINITY : stop)) ||
        (stop !== -1 && stop < s.requests.length - 1);
      if (got.length > s.requests.length)
        throw new Violation(`pipelined: ${got.length} answers to ${s.requests.length} requests`);
      if (!lenient && got.length < want) {
        throw new Violation(
          `pipelined${s.halfClose ? ', half-closed' : ''}: ${got.length} of ${want} answers (${got.map((g) => g.status).join(',')})`,
        );
      }
      got.forEach((res, i) => {
        checkResponse(s.requests[i]!, res, { token }, i);
      });
    }
    count(stats, conn.reader.responses);
  } finally {
    conn.destroy();
  }
}

async function runFlood(
  port: number,
  s: Extract<Session, { kind: 'flood' }>,
  token: string,
  stats: SessionStats,
): Promise<void> {
  const conns = s.requests.map(() => new Conn(port, () => false));
  try {
    await Promise.all(conns.map((c) => c.ready()));
    conns.forEach((c, i) => {
      c.write(serialize(s.requests[i]!, token));
    });
    stats.requests += s.requests.length;
    await Promise.all(conns.map((c) => c.waitFor(1, WAIT_MS)));
    conns.forEach((c, i) => {
      if (c.reader.error) throw new Violation(`flood #${i}: ${c.reader.error}`);
      const res = c.reader.responses[0];
      if (!res) throw new Violation(`flood #${i} ${describe(s.requests[i]!)}: no answer`);
      checkResponse(s.requests[i]!, res, { token, extra: new Set([429]) }, i);
      count(stats, [res]);
    });
  } finally {
    for (const c of conns) c.destroy();
  }
  await settle(port);
}

/** After a flood: wait until a new connection is under the inbound limit again. */
export async function settle(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const c = new Conn(port, () => false);
    try {
      await c.ready();
      c.write('GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n');
      await c.waitFor(1, 1000);
      if (c.reader.responses[0]?.status === 200) return;
    } finally {
      c.destroy();
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Violation('the daemon stayed over its inbound connection limit after a flood ended');
}

async function runGarbage(
  port: number,
  s: Extract<Session, { kind: 'garbage' }>,
  token: string,
  stats: SessionStats,
): Promise<void> {
  const conn = new Conn(port, () => false);
  try {
    await conn.ready();
    conn.write(Buffer.concat([Buffer.from(s.prefix, 'latin1'), s.bytes]));
    if (s.halfClose) conn.end();
    stats.requests++;
    await conn.waitClosed(s.halfClose ? 1000 : 150);
    count(stats, conn.reader.responses);
    for (const res of conn.reader.responses) checkAnyAnswer(res, token, 'garbage');
  } finally {
    conn.destroy();
  }
}

/** What holds for any answer, whatever was asked (garbage carries no valid token, so no value either). */
function checkAnyAnswer(res: ParsedResponse, token: string, what: string): void {
  const where = `${what} -> ${res.status}`;
  if (!STATUS_TABLE.has(res.status)) throw new Violation(`${where}: status outside the errors table`);
  const text = res.body.toString('utf8');
  if (text.includes(token)) throw new Violation(`${where}: the token`);
  if (what === 'garbage' && FUZZ_VALUES.some((v) => text.includes(v)))
    throw new Violation(`${where}: a value`);
  const type = header(res, 'content-type') ?? '';
  if (res.status !== 200 && type !== 'application/json')
    throw new Violation(`${where}: error body is not JSON`);
}
