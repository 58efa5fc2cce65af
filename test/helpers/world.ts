// A test world: the emulator (in this process, on a real loopback port) plus official AWS SDK clients
// pointed at it, used as an independent way to seed and change data.

import { after, beforeEach } from 'node:test';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { LabelParameterVersionCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { type Emulator, startEmulator } from '../../packages/emulator/index.ts';
import { type Daemons, SENSITIVE, TEST_CREDENTIALS } from './daemon.ts';

export interface World {
  emu: Emulator;
  ssm: SSMClient;
  sm: SecretsManagerClient;
  putParameter(name: string, value: string, type?: 'String' | 'StringList' | 'SecureString'): Promise<number>;
  label(name: string, version: number, labels: string[]): Promise<void>;
  createSecret(name: string, value: string | Uint8Array): Promise<string>;
  putSecretValue(name: string, value: string): Promise<string>;
  /** Clears faults, deny lists and rate limits, and zeroes the call counters: a clean emulator per test. */
  reset(): void;
  close(): Promise<void>;
}

/** Values a test stores are also registered as sensitive: no daemon output may contain them. */
export function sensitive<T extends string>(value: T): T {
  SENSITIVE.add(value);
  return value;
}

/**
 * The hooks every end-to-end file registers: after the file, stop its daemons (their output scanned) and
 * the emulator; before each test, a clean emulator.
 */
export function worldHooks(world: () => World, daemons: Daemons): void {
  after(async () => {
    await daemons.stopAll();
    await world().close();
  });
  beforeEach(() => world().reset());
}

export async function startWorld(): Promise<World> {
  const emu = await startEmulator({
    port: 0,
    store: { parameters: [], secrets: [] },
    credentials: [TEST_CREDENTIALS],
  });
  const common = {
    endpoint: emu.url,
    region: 'us-east-1',
    credentials: TEST_CREDENTIALS,
    maxAttempts: 1,
  };
  const ssm = new SSMClient(common);
  const sm = new SecretsManagerClient(common);
  return {
    emu,
    ssm,
    sm,
    async putParameter(name, value, type = 'String') {
      const r = await ssm.send(
        new PutParameterCommand({ Name: name, Value: value, Type: type, Overwrite: true }),
      );
      return r.Version!;
    },
    async label(name, version, labels) {
      await ssm.send(
        new LabelParameterVersionCommand({ Name: name, ParameterVersion: version, Labels: labels }),
      );
    },
    async createSecret(name, value) {
      const r = await sm.send(
        new CreateSecretCommand(
          typeof value === 'string'
            ? { Name: name, SecretString: value }
            : { Name: name, SecretBinary: value },
        ),
      );
      return r.VersionId!;
    },
    async putSecretValue(name, value) {
      const r = await sm.send(new PutSecretValueCommand({ SecretId: name, SecretString: value }));
      return r.VersionId!;
    },
    reset() {
      emu.clearFaults();
      emu.clearDeny();
      emu.setRateLimit(undefined);
      emu.resetCalls();
    },
    async close() {
      ssm.destroy();
      sm.destroy();
      await emu.close();
    },
  };
}
