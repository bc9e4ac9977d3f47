/**
 * Pure: does a browser's Origin name the host it is talking to? An absent Origin (curl, the
 * startup script's check) passes; `null` or garbage does not. Behind Caddy the Host header is
 * the browser's own, so the comparison holds through the proxy.
 */
export function originMatchesHost(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true;
  if (!host) return false;
  try {
    const o = new URL(origin);
    if (o.protocol !== 'http:' && o.protocol !== 'https:') return false;
    // Parse the Host with the Origin's scheme so a default port written out (`h:443`) compares equal.
    const h = new URL(`${o.protocol}//${host}`);
    return o.host === h.host && h.pathname === '/' && !h.username && !h.search;
  } catch {
    return false;
  }
}
