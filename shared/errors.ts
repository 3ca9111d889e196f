/** Helpers to read errors thrown by @kubernetes/client-node and by our own code. */

/** HTTP status of a Kubernetes API error (client-node's ApiException has `code`). */
export function apiStatus(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null) {
    const e = err as { code?: unknown; statusCode?: unknown };
    if (typeof e.code === 'number') return e.code;
    if (typeof e.statusCode === 'number') return e.statusCode;
  }
  return undefined;
}

export function isConflict(err: unknown): boolean {
  return apiStatus(err) === 409;
}

export function isNotFound(err: unknown): boolean {
  return apiStatus(err) === 404;
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const body = (err as { body?: unknown }).body;
    if (typeof body === 'string' && body.length > 0) {
      try {
        const parsed = JSON.parse(body) as { message?: unknown };
        if (typeof parsed.message === 'string') return `${err.message.split('\n')[0]}: ${parsed.message}`;
      } catch {
        // body not JSON: fall through to the message
      }
    }
    return err.message;
  }
  return String(err);
}
