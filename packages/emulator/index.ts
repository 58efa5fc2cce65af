// The AWS-protocol emulator (SSM + Secrets Manager over AWS JSON 1.1): public entry point.
//
// Control routes on the same port (plain JSON, no SigV4, loopback only):
//   GET    /__emulator/health                 {"status":"ok","region","accountId"}
//   GET    /__emulator/calls                  {"GetParameter": 3, ...}
//   POST   /__emulator/calls/reset
//   PUT    /__emulator/faults                 [FaultRule, ...]      DELETE clears
//   PUT    /__emulator/deny                   {"resources":[...],"operations":[...]} (replaces)   DELETE clears
//   PUT    /__emulator/credentials            [EmulatorCredential, ...] | null (null = no SigV4)
//   PUT    /__emulator/ratelimit              {"ssmTps":40,"secretsTps":N} | null   DELETE clears
//   PUT    /__emulator/container-credentials  {"authToken","ttlSeconds"} | null
//   GET    /__emulator/container-credentials  (header Authorization: <authToken>) mints a credential set
export { startEmulator } from './src/server.ts';
export { loadStoreFile, validateStore } from './src/store.ts';
export type {
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
