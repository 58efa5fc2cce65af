// STS over the AWS Query protocol: AssumeRole (minting role sessions), GetCallerIdentity, and XML answers.
import { createHash, randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Handler, OpContext, RoleSession } from './context.ts';
import { AwsError, Input } from './errors.ts';
import type { FaultBodies } from './faults.ts';
import { send } from './http.ts';
import { NameSet } from './policy.ts';
import type { SigV4Verifier } from './sigv4.ts';
import { randomAlnum } from './state.ts';
import type { EmulatorCredential } from './types.ts';

const XMLNS = 'https://sts.amazonaws.com/doc/2011-06-15/';
export const QUERY_CONTENT_TYPE = 'application/x-www-form-urlencoded';

/** Role sessions live this long past their expiry (to answer ExpiredToken rather than an unknown key). */
const KEEP_EXPIRED_MS = 15 * 60_000;
const MAX_SESSIONS = 10_000;
const CHAINED_MAX_SECONDS = 3600;

const ROLE_ARN = /^arn:aws[a-z-]*:iam::(\d{12}):role\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]{1,64})$/;

const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** The stable unique id AWS gives a role (AROA...), derived here from its ARN. */
function roleId(roleArn: string): string {
  const h = createHash('sha256').update(roleArn).digest();
  let id = 'AROA';
  for (let i = 0; i < 17; i++) id += UPPER[h[i]! % UPPER.length];
  return id;
}

/** Seconds-precision ISO time, as STS writes Expiration. */
const isoSeconds = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The role sessions AssumeRole minted, and the roles it refuses. */
export class StsState {
  private readonly sessions = new Map<string, { session: RoleSession; credential: EmulatorCredential }>();
  private readonly deniedRoles = new NameSet();

  constructor(
    private readonly verifier: SigV4Verifier,
    /** Lifetime of a session when the request gives no DurationSeconds. */
    readonly defaultSeconds: number,
  ) {}

  denyRoles(roleArns: readonly string[]): void {
    this.deniedRoles.add(roleArns);
  }

  clearDeny(): void {
    this.deniedRoles.clear();
  }

  deniesRole(roleArn: string): boolean {
    return this.deniedRoles.has([roleArn]);
  }

  /** The role session an access key belongs to. */
  session(accessKeyId: string): RoleSession | undefined {
    return this.sessions.get(accessKeyId)?.session;
  }

  /** Every minted credential set, for the verifier. */
  credentials(): EmulatorCredential[] {
    return [...this.sessions.values()].map((s) => s.credential);
  }

  mint(roleArn: string, sessionName: string, seconds: number, now: number) {
    this.prune(now);
    const m = ROLE_ARN.exec(roleArn)!;
    const accountId = m[1]!;
    const expiresAt = (Math.floor(now / 1000) + seconds) * 1000;
    const credential: EmulatorCredential = {
      accessKeyId: `ASIA${randomAlnum(16).toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: randomBytes(96).toString('base64'),
      expiresAt,
    };
    const session: RoleSession = {
      roleArn,
      assumedRoleArn: `arn:${roleArn.split(':')[1]}:sts::${accountId}:assumed-role/${m[2]}/${sessionName}`,
      assumedRoleId: `${roleId(roleArn)}:${sessionName}`,
      accountId,
      expiresAt,
    };
    this.sessions.set(credential.accessKeyId, { session, credential });
    this.verifier.add(credential);
    return { credential, session };
  }

  private prune(now: number): void {
    for (const [key, s] of this.sessions) {
      if (s.session.expiresAt >= now - KEEP_EXPIRED_MS && this.sessions.size < MAX_SESSIONS) continue;
      this.sessions.delete(key);
      this.verifier.remove(key);
    }
  }
}

const validationError = (message: string) => new AwsError('ValidationError', message);

/** One ValidationError listing every constraint the request broke, as AWS words it. */
const constraintErrors = (problems: string[]) =>
  validationError(
    `${problems.length} validation error${problems.length === 1 ? '' : 's'} detected: ${problems.join('; ')}`,
  );

/** A string request parameter with its length bounds checked, or undefined when absent. */
function stringParam(input: Input, key: string, min: number, max: number, problems: string[]) {
  const v = input.peekStrings(key)[0];
  const at = `at '${key.charAt(0).toLowerCase()}${key.slice(1)}' failed to satisfy constraint`;
  if (v === undefined) problems.push(`Value null ${at}: Member must not be null`);
  else if (v.length < min)
    problems.push(`Value '${v}' ${at}: Member must have length greater than or equal to ${min}`);
  else if (v.length > max)
    problems.push(`Value '${v}' ${at}: Member must have length less than or equal to ${max}`);
  return v;
}

const AssumeRole: Handler = (input, ctx) => {
  const problems: string[] = [];
  const roleArn = stringParam(input, 'RoleArn', 20, 2048, problems);
  const sessionName = stringParam(input, 'RoleSessionName', 2, 64, problems);
  if (sessionName !== undefined && !/^[\w+=,.@-]*$/.test(sessionName)) {
    problems.push(
      `Value '${sessionName}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*`,
    );
  }
  const rawDuration = input.peekStrings('DurationSeconds')[0];
  const duration = rawDuration === undefined ? undefined : Number(rawDuration);
  if (duration !== undefined) {
    const at = `Value '${rawDuration}' at 'durationSeconds' failed to satisfy constraint`;
    if (!/^\d+$/.test(rawDuration!)) problems.push(`${at}: Member must be a whole number`);
    else if (duration < 900) problems.push(`${at}: Member must have value greater than or equal to 900`);
    else if (duration > 43200) problems.push(`${at}: Member must have value less than or equal to 43200`);
  }
  if (problems.length) throw constraintErrors(problems);
  if (!ROLE_ARN.test(roleArn!)) throw validationError('Request ARN is invalid');
  if (ctx.sts.deniesRole(roleArn!)) {
    throw new AwsError(
      'AccessDenied',
      `User: ${ctx.caller.arn} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`,
      403,
    );
  }
  // Role chaining (a role session assuming a role) is capped at one hour, as in IAM.
  const chained = ctx.caller.session !== undefined;
  if (chained && duration !== undefined && duration > CHAINED_MAX_SECONDS) {
    throw validationError(
      'The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.',
    );
  }
  const seconds =
    duration ?? (chained ? Math.min(ctx.sts.defaultSeconds, CHAINED_MAX_SECONDS) : ctx.sts.defaultSeconds);
  const { credential, session } = ctx.sts.mint(roleArn!, sessionName!, seconds, ctx.now);
  return {
    Credentials: {
      AccessKeyId: credential.accessKeyId,
      SecretAccessKey: credential.secretAccessKey,
      SessionToken: credential.sessionToken,
      Expiration: isoSeconds(session.expiresAt),
    },
    AssumedRoleUser: { AssumedRoleId: session.assumedRoleId, Arn: session.assumedRoleArn },
  };
};

const GetCallerIdentity: Handler = (_input, ctx: OpContext) => {
  const s = ctx.caller.session;
  return {
    Arn: ctx.caller.arn,
    UserId: s ? s.assumedRoleId : `${roleId('emulator')}:pscache`,
    Account: s ? s.accountId : ctx.state.accountId,
  };
};

export const STS_OPERATIONS: Record<string, Handler> = { AssumeRole, GetCallerIdentity };

/** Names a request is about, for fault-rule matching. */
export const stsRequestNames = (input: Input): string[] => input.peekStrings('RoleArn');

/** A Query request body: its Action and its other parameters. */
export function parseQueryBody(body: Buffer): { action: string; input: Input } {
  const params = Object.fromEntries(new URLSearchParams(body.toString('utf8')));
  const action = params['Action'] ?? '';
  delete params['Action'];
  delete params['Version'];
  return { action, input: new Input(params) };
}

/** Text content: only these three need escaping there. */
const escapeXml = (s: string) =>
  s.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));

function toXml(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v !== 'object') return escapeXml(String(v));
  return Object.entries(v)
    .map(([k, x]) => `<${k}>${toXml(x)}</${k}>`)
    .join('');
}

export function sendQueryResult(res: ServerResponse, op: string, result: unknown, requestId: string): void {
  send(
    res,
    200,
    `<${op}Response xmlns="${XMLNS}"><${op}Result>${toXml(result)}</${op}Result><ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${op}Response>`,
    { 'content-type': 'text/xml', 'x-amzn-RequestId': requestId },
  );
}

/** The Query protocol's names (and statuses) for the errors the JSON services share with it. */
const QUERY_ERRORS: Record<string, [string, number]> = {
  AccessDeniedException: ['AccessDenied', 403],
  ValidationException: ['ValidationError', 400],
  SerializationException: ['ValidationError', 400],
  MissingAuthenticationTokenException: ['MissingAuthenticationToken', 403],
  IncompleteSignatureException: ['IncompleteSignature', 400],
  InvalidSignatureException: ['SignatureDoesNotMatch', 403],
  UnrecognizedClientException: ['InvalidClientTokenId', 403],
  ExpiredTokenException: ['ExpiredToken', 400],
  ThrottlingException: ['Throttling', 400],
  UnknownOperationException: ['InvalidAction', 400],
};

export function sendQueryError(res: ServerResponse, err: AwsError, requestId: string): void {
  const [code, status] = Object.hasOwn(QUERY_ERRORS, err.type)
    ? QUERY_ERRORS[err.type]!
    : [err.type, err.status];
  const type = status >= 500 ? 'Receiver' : 'Sender';
  send(
    res,
    status,
    `<ErrorResponse xmlns="${XMLNS}"><Error><Type>${type}</Type><Code>${code}</Code><Message>${escapeXml(err.text ?? '')}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
    { 'content-type': 'text/xml', 'x-amzn-RequestId': requestId },
  );
}

const STS_HEAD = `<AssumeRoleResponse xmlns="${XMLNS}"><AssumeRoleResult><Credentials><AccessKeyId>ASIAEMULATORFAULT000</AccessKeyId><SecretAccessKey>`;
const STS_TAIL = '</SecretAccessKey></Credentials></AssumeRoleResult></AssumeRoleResponse>';

export const STS_FAULT_BODIES: FaultBodies = {
  contentType: 'text/xml',
  sample: `${STS_HEAD}${'x'.repeat(512)}${STS_TAIL}`,
  truncated: STS_HEAD,
  head: STS_HEAD,
  tail: STS_TAIL,
  endlessHead: STS_HEAD,
};
