// Same-origin JSON fetching with readable errors.

export class HttpError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** getJSON fetches a same-origin URL and decodes JSON; non-2xx answers throw HttpError with the server's message. */
export async function getJSON<T>(url: string, signal?: AbortSignal): Promise<T> {
  if (!url.startsWith("/")) throw new Error("only same-origin URLs are fetched");
  let res: Response;
  try {
    res = await fetch(url, { signal, headers: { Accept: "application/json" } });
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    throw new HttpError(`cannot reach Lookout: ${(e as Error).message}`, 0);
  }
  const text = await res.text();
  let body: unknown = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const b = body as { error?: string; message?: string } | undefined;
    const msg = b?.error || b?.message || text.trim().slice(0, 300) || res.statusText;
    throw new HttpError(`${res.status} ${msg}`, res.status);
  }
  if (body === undefined) throw new HttpError(`bad JSON from ${url.split("?")[0]}`, res.status);
  return body as T;
}

/** qs builds a query string, repeating array values. */
export function qs(params: Record<string, string | number | undefined | (string | number)[]>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === "") continue;
    if (Array.isArray(v)) for (const x of v) u.append(k, String(x));
    else u.append(k, String(v));
  }
  return u.toString();
}
