// @pscache/emulator: a local AWS SSM Parameter Store + Secrets Manager (AWS JSON 1.1) and STS (Query)
// emulator. The routes, options and store file format are in README.md.
export { CONTROL_TOKEN_HEADER } from './src/control.ts';
export { startEmulator } from './src/server.ts';
export { loadStoreFile, validateStore } from './src/store.ts';
export type {
  CallRecord,
  ContainerCredentialsOptions,
  Emulator,
  EmulatorCredential,
  EmulatorOptions,
  FaultKind,
  FaultRule,
  ParameterType,
  RateLimitOptions,
  StoreFile,
  StoreParameter,
  StoreSecret,
  StoreSecretValue,
} from './src/types.ts';
export { FAULT_KINDS } from './src/types.ts';
