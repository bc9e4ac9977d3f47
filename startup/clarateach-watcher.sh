#!/bin/bash
# ClaraTeach VM watcher: the control plane's channel to a running VM.
#
# The startup script starts it at every boot, once the seats are ready (so it survives a reboot
# the way the startup script does). It long-polls the instance attributes on the metadata server
# (`?recursive=true&wait_for_change=true&last_etag=…`) and, on every answer, converges on the
# latest values, so a missed or repeated change is harmless:
#   class-ends               written to the clock file the seat servers read (CLOCK_DIR/class-ends)
#   seat-tokens, seat-resets when they differ from what the startup script applied last
#                            (STATE_DIR/applied-seats), the startup script runs again: it resets
#                            the seats asked for, renders Caddy with the new credentials, and
#                            reports on vm.ready which reset generations it applied.
# Between polls, at most every CT_CERT_CHECK seconds, it reads what Caddy last said of renewing the
# seats' certificate (its `tls.renew` log). When that changes (a renewal failed, or one succeeded
# after failing), it writes it to STATE_DIR/renewal-error and runs the startup script again, which
# reports it on vm.ready with the certificate's end: the control plane and the instructor see it.
# Settings come from the startup script's environment (CT_METADATA_URL, CT_STATE_DIR, CT_LOG,
# CT_DOCKER, CT_NAME_PREFIX, CT_STARTUP_SELF: the script's own path when the metadata has no
# `startup-script`), plus
#   CT_WATCH_TIMEOUT  seconds one long poll may wait (60)
#   CT_CERT_CHECK     seconds between certificate checks (300)

set -Euo pipefail
umask 077

CT_METADATA_URL=${CT_METADATA_URL:-http://metadata.google.internal/computeMetadata/v1}
CT_STATE_DIR=${CT_STATE_DIR:-/var/lib/clarateach}
CT_LOG=${CT_LOG:-/var/log/clarateach-startup.log}
CT_WATCH_TIMEOUT=${CT_WATCH_TIMEOUT:-60}
CT_CERT_CHECK=${CT_CERT_CHECK:-300}
CT_DOCKER=${CT_DOCKER:-docker}
CT_NAME_PREFIX=${CT_NAME_PREFIX:-}
exec >>"$CT_LOG" 2>&1

log() { printf '%s clarateach-watcher: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
attribute() {
  curl -fsS --max-time 10 -H 'Metadata-Flavor: Google' "$CT_METADATA_URL/instance/attributes/$1"
}

clock_dir=$CT_STATE_DIR/clock
rerun=$CT_STATE_DIR/startup-rerun.sh

# The class's end, for the seat servers: replaced in one rename, readable by the seat's user.
write_clock() {
  local ends
  ends=$(attribute class-ends 2>/dev/null) || return 0
  [[ $ends == "$(cat "$clock_dir/class-ends" 2>/dev/null)" ]] && return 0
  mkdir -p "$clock_dir"
  printf '%s' "$ends" >"$clock_dir/class-ends.tmp"
  chmod 644 "$clock_dir/class-ends.tmp"
  mv -f "$clock_dir/class-ends.tmp" "$clock_dir/class-ends"
  log "class ends at $ends"
}

# The startup script converges on the metadata and reports on vm.ready.
run_startup_script() {
  log "$1: running the startup script again"
  if ! attribute startup-script >"$rerun" 2>/dev/null; then cp "$CT_STARTUP_SELF" "$rerun"; fi
  # It writes its own log (CT_LOG); its stdout mirror would copy that log into itself here.
  CT_WATCHING=1 bash "$rerun" >/dev/null 2>&1 ||
    log "the startup script failed (it reported why on vm.ready)"
}

# The seats' credentials and resets: the startup script applies them, and reports.
apply_seats() {
  local tokens resets
  tokens=$(attribute seat-tokens) || return 1
  resets=$(attribute seat-resets 2>/dev/null) || resets=''
  [[ $(printf '%s\n%s' "$tokens" "$resets") == "$(cat "$CT_STATE_DIR/applied-seats" 2>/dev/null)" ]] &&
    return 0
  run_startup_script "seats changed"
}

# What Caddy said last of renewing a certificate: empty when it succeeded (or never had to), else
# its message and error. Caddy logs JSON lines, e.g.
#   {"level":"error","logger":"tls.renew","msg":"could not get certificate from issuer",…,"error":"…"}
renewal_error() {
  local line
  line=$("$CT_DOCKER" logs "${CT_NAME_PREFIX}clarateach-caddy" 2>&1 | grep -F '"logger":"tls.renew"' |
    tail -n 1) || true
  [[ $line == *'"level":"error"'* ]] || return 0
  # The message and the error's JSON string, its escaped quotes unescaped.
  printf '%s' "$line" |
    sed -nE 's/.*"msg":"([^"]*)".*"error":"(([^"\\]|\\.)*)".*/\1: \2/p' |
    sed 's/\\"/"/g' | head -c 1000
}

# A renewal that starts or stops failing is logged here and reported on vm.ready.
cert_checked=0
check_certificate() {
  local now error
  now=$(date +%s)
  ((now - cert_checked >= CT_CERT_CHECK)) || return 0
  cert_checked=$now
  error=$(renewal_error)
  [[ $error == "$(cat "$CT_STATE_DIR/renewal-error" 2>/dev/null)" ]] && return 0
  printf '%s' "$error" >"$CT_STATE_DIR/renewal-error"
  if [[ -n $error ]]; then
    log "certificate renewal failing: $error"
    run_startup_script "certificate renewal failing"
  else
    log "certificate renewed"
    run_startup_script "certificate renewed"
  fi
}

etag=''
while :; do
  wait=false # the first poll answers at once: converge on what is there now
  if [[ -n $etag ]]; then wait=true; fi
  headers=$(curl -sS -o /dev/null -D - --max-time $((CT_WATCH_TIMEOUT + 10)) \
    -H 'Metadata-Flavor: Google' \
    "$CT_METADATA_URL/instance/attributes/?recursive=true&wait_for_change=$wait&timeout_sec=$CT_WATCH_TIMEOUT&last_etag=$etag" 2>/dev/null) ||
    headers=''
  next=$(printf '%s' "$headers" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]:[[:space:]]*//p' | head -n 1)
  check_certificate
  if [[ -z $next ]]; then
    sleep 1 # the metadata server is not answering: try again shortly
    continue
  fi
  etag=$next
  write_clock
  apply_seats
done
