// pscache/client: read parameters and secrets from a running pscache (or the official extension) with a
// typed, retrying, zero-dependency client. The module-level functions share one default client.
import { createClient } from './client.ts';
import type { PscacheClient } from './options.ts';

export { createClient } from './client.ts';
export {
  AccessDeniedError,
  BadRequestError,
  ExtensionUnavailableError,
  NotFoundError,
  ParameterNotFoundError,
  PscacheError,
  ThrottledError,
  TransformError,
  UnauthorizedError,
  UpstreamError,
} from './errors.ts';
export type {
  CacheOptions,
  ClientOptions,
  ParameterOptions,
  ParametersOptions,
  PathOptions,
  PscacheClient,
  SecretOptions,
  SecretsOptions,
  TransformMethod,
} from './options.ts';
export { Transform } from './options.ts';

let shared: PscacheClient | undefined;

/** Created on first use, so importing the module costs nothing and reads nothing. */
function client(): PscacheClient {
  shared ??= createClient();
  return shared;
}

/** A parameter's value. `transform: 'json'` parses it, `'binary'` base64-decodes it. */
export const getParameter = ((name: string, options?: Parameters<PscacheClient['getParameter']>[1]) =>
  client().getParameter(name, options)) as PscacheClient['getParameter'];

/** Several parameters by name, in one request per 100: `{ [name]: value }`. */
export const getParameters = ((
  names: readonly string[],
  options?: Parameters<PscacheClient['getParameters']>[1],
) => client().getParameters(names, options)) as PscacheClient['getParameters'];

/** Every parameter under a path: `{ [name relative to the path]: value }`. */
export const getParametersByPath = ((
  path: string,
  options?: Parameters<PscacheClient['getParametersByPath']>[1],
) => client().getParametersByPath(path, options)) as PscacheClient['getParametersByPath'];

/** A secret's value: SecretString as a string, SecretBinary as bytes (or transformed). */
export const getSecret = ((id: string, options?: Parameters<PscacheClient['getSecret']>[1]) =>
  client().getSecret(id, options)) as PscacheClient['getSecret'];

/** Several secrets, in one request per 100: `{ [id]: value }`. */
export const getSecrets = ((ids: readonly string[], options?: Parameters<PscacheClient['getSecrets']>[1]) =>
  client().getSecrets(ids, options)) as PscacheClient['getSecrets'];
