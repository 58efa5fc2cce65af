// Where each service lives: the configured override, else the AWS SDK v3 endpoint rules for the Region.
// The rules below are transcribed from the SDK's generated rule sets (client-ssm, client-secrets-manager,
// client-sts) and partition table; test/aws.test.ts compares them with the SDK's own resolvers.
import type { AwsService } from './types.ts';

interface Partition {
  name: string;
  /** What its Region names look like (the SDK's regionRegex); a Region no pattern matches is `aws`'s. */
  pattern: RegExp;
  dnsSuffix: string;
  dualStackDnsSuffix: string;
}

// Order matters only for readability: the patterns do not overlap. Unknown Regions fall back to `aws`,
// as the SDK's aws.partition function does.
const PARTITIONS: readonly Partition[] = [
  {
    name: 'aws-cn',
    pattern: /^cn-\w+-\d+$/,
    dnsSuffix: 'amazonaws.com.cn',
    dualStackDnsSuffix: 'api.amazonwebservices.com.cn',
  },
  {
    name: 'aws-us-gov',
    pattern: /^us-gov-\w+-\d+$/,
    dnsSuffix: 'amazonaws.com',
    dualStackDnsSuffix: 'api.aws',
  },
  {
    name: 'aws-iso',
    pattern: /^us-iso-\w+-\d+$/,
    dnsSuffix: 'c2s.ic.gov',
    dualStackDnsSuffix: 'api.aws.ic.gov',
  },
  {
    name: 'aws-iso-b',
    pattern: /^us-isob-\w+-\d+$/,
    dnsSuffix: 'sc2s.sgov.gov',
    dualStackDnsSuffix: 'api.aws.scloud',
  },
  {
    name: 'aws-iso-e',
    pattern: /^eu-isoe-\w+-\d+$/,
    dnsSuffix: 'cloud.adc-e.uk',
    dualStackDnsSuffix: 'api.cloud-aws.adc-e.uk',
  },
  {
    name: 'aws-iso-f',
    pattern: /^us-isof-\w+-\d+$/,
    dnsSuffix: 'csp.hci.ic.gov',
    dualStackDnsSuffix: 'api.aws.hci.ic.gov',
  },
  {
    name: 'aws-eusc',
    pattern: /^eusc-(de)-\w+-\d+$/,
    dnsSuffix: 'amazonaws.eu',
    dualStackDnsSuffix: 'api.amazonwebservices.eu',
  },
];
const AWS: Partition = {
  name: 'aws',
  pattern: /^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$/,
  dnsSuffix: 'amazonaws.com',
  dualStackDnsSuffix: 'api.aws',
};

/** Every partition's name: what an ARN's second field may be. */
/** Signing Region when none is configured but every endpoint is overridden (emulator, LocalStack). */
export const FALLBACK_SIGNING_REGION = 'us-east-1';

export const PARTITION_NAMES: readonly string[] = [AWS.name, ...PARTITIONS.map((p) => p.name)];

function partitionOf(region: string): Partition {
  return PARTITIONS.find((p) => p.pattern.test(region)) ?? AWS;
}

/** The partition pscache reads from: the configured Region's, and what its Regions' names look like. */
export interface PartitionRule {
  name: string;
  regions: RegExp;
  /** The configured Region (always allowed, whatever its name). */
  region: string;
}

export function partitionRule(region: string): PartitionRule {
  const p = partitionOf(region);
  return { name: p.name, regions: p.pattern, region };
}

/** What a Region name looks like: us-east-1, us-gov-west-1, cn-north-1, eu-isoe-west-1, eusc-de-east-1. */
export const REGION = /^[a-z]{2,4}(?:-[a-z]+)+-\d{1,2}$/;

/** Longer than any AWS Region name (the longest are ~15 characters), and well inside a DNS label. */
const MAX_REGION_LENGTH = 32;

/** Whether reads may go to `region`: the configured one, or a Region of its partition. */
export const inPartition = (region: string, p: PartitionRule): boolean =>
  region === p.region ||
  (region.length <= MAX_REGION_LENGTH && REGION.test(region) && p.regions.test(region));

export interface EndpointOptions {
  region: string;
  useFips: boolean;
  useDualstack: boolean;
  /** AWS_ENDPOINT_URL_* / AWS_ENDPOINT_URL: wins over everything else (the SDKs refuse FIPS/dual-stack with it). */
  override?: string | undefined;
}

/** The base URL for a service, e.g. `https://ssm.eu-west-1.amazonaws.com`. */
export function resolveEndpoint(service: AwsService, opts: EndpointOptions): string {
  if (opts.override !== undefined) return opts.override;
  const { region, useFips, useDualstack } = opts;
  const p = partitionOf(region);
  // SSM and STS (its regional endpoints, what the SDKs v3 use) follow the same rules.
  if (service !== 'secretsmanager') {
    if (useFips && useDualstack) return `https://${service}-fips.${region}.${p.dualStackDnsSuffix}`;
    // GovCloud's regular endpoints are already FIPS validated; they have no -fips host.
    if (useFips)
      return p.name === 'aws-us-gov'
        ? `https://${service}.${region}.amazonaws.com`
        : `https://${service}-fips.${region}.${p.dnsSuffix}`;
    if (useDualstack) return `https://${service}.${region}.${p.dualStackDnsSuffix}`;
    return `https://${service}.${region}.${p.dnsSuffix}`;
  }
  // Secrets Manager's regular and FIPS hosts in aws, aws-us-gov (and aws-cn, non-FIPS) are already
  // dual-stack, so the rule set keeps them when dual-stack is asked for.
  const native = p.name === 'aws' || p.name === 'aws-us-gov';
  if (useFips && useDualstack) {
    return native
      ? `https://secretsmanager-fips.${region}.amazonaws.com`
      : `https://secretsmanager-fips.${region}.${p.dualStackDnsSuffix}`;
  }
  if (useFips) return `https://secretsmanager-fips.${region}.${p.dnsSuffix}`;
  if (useDualstack) {
    if (native) return `https://secretsmanager.${region}.amazonaws.com`;
    if (p.name === 'aws-cn') return `https://secretsmanager.${region}.amazonaws.com.cn`;
    return `https://secretsmanager.${region}.${p.dualStackDnsSuffix}`;
  }
  return `https://secretsmanager.${region}.${p.dnsSuffix}`;
}
