// STS AssumeRole over the AWS Query protocol (a form-encoded POST, an XML answer): the credentials of
// roleArn reads. The XML reader is a small strict one for the two shapes STS sends here, the answer and
// the error: no XML library rides along on the daemon's start-up path.
import type { AwsJsonClient, CallOptions, Protocol } from './client.ts';
import { AwsCallError, type AwsCredentials } from './types.ts';

export const STS_VERSION = '2011-06-15';

/** One element: its name (as written, with any prefix), its child elements, and its text (entities decoded). */
export interface XmlElement {
  name: string;
  children: XmlElement[];
  text: string;
}

export class XmlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XmlError';
  }
}

const NAME = /[A-Za-z_][\w.:-]*/y;
const SPACE = /\s*/y;
const ATTRIBUTE = /\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"<]*"|'[^'<]*')/y;
const ENTITY = /&(?:(amp|lt|gt|quot|apos)|#(\d{1,7})|#x([0-9A-Fa-f]{1,6}));/g;
const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
/** Deeper than any answer STS sends; a bound so that no input can exhaust the stack. */
const MAX_DEPTH = 32;

const BARE_AMPERSAND = /&(?!(?:amp|lt|gt|quot|apos|#\d{1,7}|#x[0-9A-Fa-f]{1,6});)/;

function decodeText(raw: string): string {
  if (!raw.includes('&')) return raw;
  if (BARE_AMPERSAND.test(raw)) throw new XmlError('an unknown entity, or a bare &');
  return raw.replace(ENTITY, (_m, named: string | undefined, dec: string | undefined, hex?: string) => {
    if (named !== undefined) return NAMED[named]!;
    const code = dec !== undefined ? Number(dec) : Number.parseInt(hex!, 16);
    if (code > 0x10ffff || code === 0) throw new XmlError('a character reference is out of range');
    return String.fromCodePoint(code);
  });
}

/**
 * Parses one XML document: an optional declaration, one root element, elements with attributes (read
 * and ignored) and text. Comments, CDATA, DOCTYPE and processing instructions inside are refused, as is
 * text beside child elements (other than white space): STS sends none of them.
 */
export function parseXml(doc: string): XmlElement {
  let i = doc.charCodeAt(0) === 0xfeff ? 1 : 0;
  const skipSpace = () => {
    SPACE.lastIndex = i;
    SPACE.exec(doc);
    i = SPACE.lastIndex;
  };
  const name = (): string => {
    NAME.lastIndex = i;
    const m = NAME.exec(doc);
    if (!m) throw new XmlError(`an element name was expected at ${i}`);
    i = NAME.lastIndex;
    return m[0];
  };
  const element = (depth: number): XmlElement => {
    if (depth > MAX_DEPTH) throw new XmlError('elements are nested too deeply');
    if (doc[i] !== '<') throw new XmlError(`an element was expected at ${i}`);
    i++;
    const tag = name();
    for (;;) {
      ATTRIBUTE.lastIndex = i;
      if (!ATTRIBUTE.exec(doc)) break;
      i = ATTRIBUTE.lastIndex;
    }
    skipSpace();
    if (doc.startsWith('/>', i)) {
      i += 2;
      return { name: tag, children: [], text: '' };
    }
    if (doc[i] !== '>') throw new XmlError(`the start tag of ${tag} is malformed`);
    i++;
    const children: XmlElement[] = [];
    let text = '';
    for (;;) {
      const lt = doc.indexOf('<', i);
      if (lt === -1) throw new XmlError(`${tag} is not closed`);
      text += doc.slice(i, lt);
      i = lt;
      if (doc.startsWith('</', i)) {
        i += 2;
        if (name() !== tag) throw new XmlError(`${tag} is closed by another element`);
        skipSpace();
        if (doc[i] !== '>') throw new XmlError(`the end tag of ${tag} is malformed`);
        i++;
        break;
      }
      if (doc[i + 1] === '!' || doc[i + 1] === '?') {
        throw new XmlError('comments, CDATA, DOCTYPE and processing instructions are not expected');
      }
      children.push(element(depth + 1));
    }
    if (children.length > 0) {
      if (text.trim() !== '') throw new XmlError(`${tag} mixes text and elements`);
      text = '';
    }
    return { name: tag, children, text: decodeText(text) };
  };
  skipSpace();
  if (doc.startsWith('<?xml', i)) {
    const end = doc.indexOf('?>', i);
    if (end === -1) throw new XmlError('the XML declaration is not closed');
    i = end + 2;
    skipSpace();
  }
  const root = element(0);
  skipSpace();
  if (i !== doc.length) throw new XmlError('there is content after the root element');
  return root;
}

/** The child of `e` with this local name (a namespace prefix is ignored). */
export function xmlChild(e: XmlElement | undefined, name: string): XmlElement | undefined {
  return e?.children.find((c) => c.name === name || c.name.endsWith(`:${name}`));
}

/** An element as a plain object: text for a leaf, child name -> value for the rest. Repeated names refused. */
function toObject(e: XmlElement): Record<string, unknown> | string {
  if (e.children.length === 0) return e.text;
  const out: Record<string, unknown> = {};
  for (const c of e.children) {
    const key = c.name.slice(c.name.indexOf(':') + 1);
    if (Object.hasOwn(out, key)) throw new XmlError(`${key} appears more than once in ${e.name}`);
    out[key] = toObject(c);
  }
  return out;
}

/** RFC 3986, as the SDKs encode Query parameters. */
const formEncode = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** The AWS Query protocol: `Action=...&Version=...&Param=...`, answered `<OpResponse><OpResult>...`. */
export const queryProtocol: Protocol = {
  headers: () => ({ 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8' }),
  body(operation, input) {
    const params: Array<[string, string]> = [
      ['Action', operation],
      ['Version', STS_VERSION],
    ];
    for (const [k, v] of Object.entries((input ?? {}) as Record<string, string | number | undefined>)) {
      if (v !== undefined) params.push([k, String(v)]);
    }
    return params.map(([k, v]) => `${formEncode(k)}=${formEncode(v)}`).join('&');
  },
  success(operation, text) {
    let root: XmlElement;
    try {
      root = parseXml(text);
    } catch (e) {
      return { malformed: `the ${operation} answer is not XML (${(e as Error).message})` };
    }
    const result = root.name.endsWith(`${operation}Response`)
      ? xmlChild(root, `${operation}Result`)
      : undefined;
    if (!result) return { malformed: `the answer is not an ${operation}Response with an ${operation}Result` };
    try {
      const value = toObject(result);
      return { value: typeof value === 'string' ? {} : value };
    } catch (e) {
      return { malformed: `the ${operation} answer is malformed (${(e as Error).message})` };
    }
  },
  error(text) {
    let root: XmlElement;
    try {
      root = parseXml(text);
    } catch {
      return {};
    }
    const error = xmlChild(root, 'Error');
    const code = xmlChild(error, 'Code')?.text.trim();
    const message = xmlChild(error, 'Message')?.text.trim();
    return { ...(code ? { code } : {}), ...(message !== undefined ? { message } : {}) };
  },
};

export interface AssumeRoleInput {
  roleArn: string;
  sessionName: string;
  /** 900..43200; STS's default (one hour) when absent. */
  durationSeconds?: number;
}

const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';

/** One AssumeRole call. Resolves to the role session's credentials, checked before anyone signs with them. */
export async function assumeRole(
  client: AwsJsonClient,
  input: AssumeRoleInput,
  opts?: CallOptions,
): Promise<AwsCredentials> {
  const out = await client.call<Record<string, unknown>>(
    'AssumeRole',
    {
      RoleArn: input.roleArn,
      RoleSessionName: input.sessionName,
      ...(input.durationSeconds !== undefined ? { DurationSeconds: input.durationSeconds } : {}),
    },
    opts,
  );
  const c = out['Credentials'];
  const creds = typeof c === 'object' && c !== null ? (c as Record<string, unknown>) : {};
  const expiration = nonEmpty(creds['Expiration']) ? new Date(creds['Expiration'].trim()) : undefined;
  if (
    !nonEmpty(creds['AccessKeyId']) ||
    !nonEmpty(creds['SecretAccessKey']) ||
    !nonEmpty(creds['SessionToken']) ||
    expiration === undefined ||
    Number.isNaN(expiration.getTime())
  ) {
    throw new AwsCallError(
      'MalformedResponse',
      'the AssumeRole answer has no Credentials with AccessKeyId, SecretAccessKey, SessionToken and Expiration',
      'malformed',
      200,
    );
  }
  return {
    accessKeyId: creds['AccessKeyId'].trim(),
    secretAccessKey: creds['SecretAccessKey'].trim(),
    sessionToken: creds['SessionToken'].trim(),
    expiration,
  };
}
