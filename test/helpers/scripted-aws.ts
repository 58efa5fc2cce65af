// A scripted AWS JSON client for tests of the loader: every call waits until the test answers it, in any
// order, and keeps its operation, input and call options for the test to look at.
import type { AwsJsonClient, CallOptions } from '../../src/aws/client.ts';
import type { Upstream } from '../../src/aws/index.ts';

export interface Call {
  operation: string;
  input: Record<string, unknown>;
  opts: CallOptions | undefined;
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

/** An AWS JSON client whose every call waits for the test. */
export class ScriptedAws {
  readonly calls: Call[] = [];
  call<T>(operation: string, input: unknown, opts?: CallOptions): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.calls.push({
        operation,
        input: input as Record<string, unknown>,
        opts,
        resolve: resolve as (v: unknown) => void,
        reject,
      });
    });
  }
  ops(): string[] {
    return this.calls.map((c) => c.operation);
  }
}

/**
 * An upstream whose client per (service, role, Region) is its own scripted one, keyed
 * `service role region` ('-' for none). `refuse(via)` may throw instead, as a role beyond max_roles does.
 */
export function scriptedUpstream(refuse?: (via: { roleArn?: string; region?: string } | undefined) => void) {
  const clients = new Map<string, ScriptedAws>();
  const upstream = {
    region: 'us-east-1',
    client: (service: string, via?: { roleArn?: string; region?: string }) => {
      refuse?.(via);
      const key = `${service} ${via?.roleArn ?? '-'} ${via?.region ?? '-'}`;
      if (!clients.has(key)) clients.set(key, new ScriptedAws());
      return clients.get(key)! as unknown as AwsJsonClient;
    },
  } as unknown as Upstream;
  /** The calls each client was asked, by its key. */
  const client = (key: string) => clients.get(key) ?? new ScriptedAws();
  return { clients, upstream, client };
}
