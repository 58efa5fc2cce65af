// IAM role ARNs: one strict parser shared by the --config file (prefetch role_arn) and the roleArn query parameter.
import { PARTITION_NAMES } from './aws/endpoints.ts';

export interface RoleArn {
  /** aws, aws-cn, aws-us-gov, aws-eusc, aws-iso, aws-iso-b, ... (the endpoint table's partitions) */
  partition: string;
  /** 12 digits. */
  account: string;
  /** `/` or `/a/b/`: the role's path. */
  path: string;
  /** The role's name, without its path. */
  name: string;
  /** The ARN as given. */
  arn: string;
}

/** How a role ARN must look, for error messages. */
export const ROLE_ARN_FORMAT = `an IAM role ARN such as arn:aws:iam::123456789012:role/NAME (partition ${PARTITION_NAMES.join(', ')})`;

// IAM limits: a role name is 1-64 of [\w+=,.@-]; a path is `/` or /segments/ of printable ASCII, 512 at
// most. The partition is one of the endpoint table's (aws-eusc for the European Sovereign Cloud included).
const ROLE_ARN = new RegExp(
  `^arn:(${PARTITION_NAMES.join('|')}):iam::(\\d{12}):role(\\/(?:[\\x21-\\x7e]*\\/)?)([\\w+=,.@-]{1,64})$`,
);

/** Parses `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`; undefined when it is anything else. */
export function parseRoleArn(s: string): RoleArn | undefined {
  if (s.length > 2048) return undefined;
  const m = ROLE_ARN.exec(s);
  if (!m) return undefined;
  const path = m[3]!;
  if (path.length > 512 || path.includes('//')) return undefined;
  return { partition: m[1]!, account: m[2]!, path, name: m[4]!, arn: s };
}
