/** A route of the mock's own (control endpoints, image links, photos): method, path, handler. */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface Route {
  methods: readonly string[];
  /** An exact path, or a pattern whose first group is handed to `serve` as `name`. */
  path: string | RegExp;
  serve(req: IncomingMessage, res: ServerResponse, at: { path: string; name: string }): void | Promise<void>;
}

export const GET = ['GET'] as const;
export const GET_OR_HEAD = ['GET', 'HEAD'] as const;
export const POST = ['POST'] as const;

/** The first route that takes this method and path. */
export function findRoute(
  routes: readonly Route[],
  method: string | undefined,
  path: string,
): { route: Route; name: string } | undefined {
  for (const route of routes) {
    if (!route.methods.includes(method ?? '')) continue;
    if (typeof route.path === 'string') {
      if (route.path === path) return { route, name: '' };
      continue;
    }
    const match = route.path.exec(path);
    if (match) return { route, name: match[1] ?? '' };
  }
  return undefined;
}
