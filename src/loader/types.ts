// What a load is asked to do and what one item of a batch comes back as: shared by the loader and the
// batch window.
import type { AwsCallError, Service } from '../aws/types.ts';
import type { Loaded } from '../items.ts';

/** How one load is to be made. */
export interface LoadContext {
  /** Aborted when nobody waits for the result any more. */
  signal?: AbortSignal;
  /** Upstream attempts (stale-if-error refetches use 1); default: the client's (3). */
  attempts?: number;
  /** Told when an attempt failed and another follows. */
  onRetry?: (e: AwsCallError) => void;
  /** Told when a load of several calls made one (a page of a path listing came): it is not hung. */
  onProgress?: () => void;
  /** Sign only with credentials fetched at or after this time (Date.now ms): the SnapStart restore window. */
  credentialsSince?: number;
}

/** One item's result inside a batch. */
export type Outcome = { ok: true; loaded: Loaded } | { ok: false; error: unknown };

/** Ids in one upstream batch call (GetParameters, BatchGetSecretValue). */
export const BATCH_LIMIT: Record<Service, number> = { ssm: 10, secretsmanager: 20 };

/** Most parameters a path read returns; beyond it the caller is told to narrow the path. */
export const PATH_ITEM_LIMIT = 500;

/** A path holding more than PATH_ITEM_LIMIT parameters: an answer like a value, cached as one. */
export class PathTooLargeError extends Error {
  constructor(path: string, recursive: boolean) {
    super(
      `path ${path} holds more than ${PATH_ITEM_LIMIT} parameters; narrow the path${recursive ? ' or drop recursive=true' : ''}`,
    );
    this.name = 'PathTooLargeError';
  }
}
