import type { IncomingHttpHeaders } from 'node:http';

/**
 * Who is on a terminal socket. The VM's Caddy sets `X-Clarateach-Role: viewer` on the
 * instructor's watch route, after checking the class's viewer credential, and strips the header on
 * the learner's routes. The header only ever takes rights away (a viewer reads, and may not type
 * or resize), so what reaches this server without Caddy (only the seat's own container can) gains
 * nothing by sending it; the one thing it relaxes, the Origin check, guards a cookie it does not
 * use.
 */
export type Role = 'learner' | 'viewer';

export const ROLE_HEADER = 'x-clarateach-role';

/** Pure: anything but exactly `viewer` is the learner's own connection. */
export function roleOf(headers: IncomingHttpHeaders): Role {
  return headers[ROLE_HEADER] === 'viewer' ? 'viewer' : 'learner';
}

/** Pure: may this connection change the shell (keystrokes, the pty's size)? */
export const mayType = (role: Role): boolean => role === 'learner';

/**
 * Pure: must the socket's Origin name this host? The learner's credential is a cookie the browser
 * sends by itself, so a page of another site must not open the socket; the viewer's is in the URL
 * (`?v=`), which no other site has, and the console opens it from its own origin.
 */
export const needsSameOrigin = (role: Role): boolean => role === 'learner';
