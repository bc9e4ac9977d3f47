/** List paging: `maxResults` and opaque `pageToken`s, as Compute pages a list. */
import { invalid } from './errors.ts';
import { isObj } from './is-object.ts';

/** The most items a page holds, Compute's limit for `maxResults`. */
export const MAX_PAGE = 500;

function decodePageToken(token: string): number {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (isObj(parsed) && typeof parsed.o === 'number' && parsed.o >= 0) return parsed.o;
  } catch {
    // fall through
  }
  throw invalid("Invalid value for field 'pageToken'.");
}

function encodePageToken(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset })).toString('base64url');
}

/** The `maxResults` query parameter, checked; MAX_PAGE when absent. */
export function parseMaxResults(value: string | undefined): number {
  const maxResults = value === undefined ? MAX_PAGE : Number(value);
  if (!Number.isInteger(maxResults) || maxResults < 0 || maxResults > MAX_PAGE) {
    throw invalid(
      `Invalid value for field 'maxResults': '${value ?? ''}'. Must be less than or equal to 500`,
    );
  }
  return maxResults;
}

/**
 * The page of `items` that `pageToken` points at, at most `maxResults` (0: MAX_PAGE) and at most
 * `pageSize` long, with the token of the next page when there is one.
 */
export function pageOf<T>(
  items: T[],
  maxResults: number,
  pageToken: string | undefined,
  pageSize: number,
): { page: T[]; next?: string } {
  const offset = pageToken ? decodePageToken(pageToken) : 0;
  const size = Math.min(maxResults === 0 ? MAX_PAGE : maxResults, pageSize);
  const page = items.slice(offset, offset + size);
  const next = offset + size < items.length ? encodePageToken(offset + size) : undefined;
  return next ? { page, next } : { page };
}
