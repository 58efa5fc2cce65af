// The fixed route paths, apart from their handlers, so configuration can check a path prefix against
// them without loading the server.
export const ROUTE_PATHS = [
  '/ping',
  '/',
  '/ready',
  '/metrics',
  '/systemsmanager/parameters/batch',
  '/systemsmanager/parameters/path',
  '/secretsmanager/batch',
  '/systemsmanager/parameters/get',
  '/secretsmanager/get',
  '/parameters/get',
  '/secrets/get',
] as const;

export type RoutePath = (typeof ROUTE_PATHS)[number];

/** The route a path prefix would hide (a route, or its trailing-slash form, under the prefix); else undefined. */
export function pathPrefixCollision(prefix: string): string | undefined {
  for (const route of ROUTE_PATHS) {
    // `${route}/` starts with every prefix `route` itself starts with.
    if (`${route}/`.startsWith(prefix)) return route;
  }
  return undefined;
}
