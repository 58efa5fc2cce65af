// The role session name pscache signs AssumeRole with: read by configuration (which checks it) and by
// sts.ts, without configuration loading the AWS clients.

/** `pscache-<name>` with what RoleSessionName refuses replaced by `-`, at most 64 characters. */
export function roleSessionName(name: string | undefined): string {
  const clean = (name ?? '').replace(/[^\w+=,.@-]/g, '-');
  return (clean === '' ? 'pscache' : `pscache-${clean}`).slice(0, 64);
}
