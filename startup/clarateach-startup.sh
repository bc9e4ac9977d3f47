#!/bin/bash
# ClaraTeach VM startup script.
#
# Runs as root on a Container-Optimized OS VM at every boot (GCE `startup-script` metadata). It
# reads its settings from the metadata server, starts one workspace container and one Neko browser
# container per seat, puts Caddy in front of them (`/vm/<seat>/terminal|files|browser`, gated by
# the seat's access token), checks that every seat answers, and reports the outcome on the
# `vm.ready` Pub/Sub topic. Any failure after the settings are read is reported as
# `state: "failed"` with the tail of this run's log.
#
# It is idempotent: a second run (or a reboot) reuses the seat containers whose configuration is
# unchanged, recreates the ones that changed or that the control plane asked to reset
# (`seat-resets`), removes leftovers, and restarts Caddy when its Caddyfile changed.
#
# Once the VM is ready it starts the watcher (startup/clarateach-watcher.sh, shipped as the
# `clarateach-watcher` attribute), which follows the instance metadata and runs this script again
# when the seats' credentials or resets change: this is how a freed or reset seat is applied.
#
# Everything outside the VM can be pointed elsewhere from the environment, so the local stack runs
# this very file (see local/vm-runner.ts):
#   CT_METADATA_URL       metadata server base URL (…/computeMetadata/v1)
#   CT_PUBSUB_URL         Pub/Sub REST endpoint (https://pubsub.googleapis.com)
#   CT_DOCKER             docker executable
#   CT_CREDENTIAL_HELPER  docker-credential-gcr executable
#   CT_IPTABLES           iptables executable that opens Caddy's port; empty: leave the host
#                         firewall alone (the local stack)
#   CT_LOG                log file (also mirrored to stdout, i.e. the journal)
#   CT_STATE_DIR          writable directory: HOME for docker auth, the rendered Caddyfile
#   CT_HTTP_PORT          Caddy's plain HTTP port: /health, ACME challenges, redirects (80)
#   CT_HTTPS_PORT         Caddy's default HTTPS port (443; no site uses it, nothing opens it)
#   CT_SEAT_HTTPS_BASE    seat i's HTTPS origin is https://PUBLIC_HOST:SEAT_HTTPS_BASE+i (8400)
#   CT_PUBLIC_HOST        the host the seats' origins and certificate name (the metadata's
#                         public-host, the VM's name under the operator's SEAT_DOMAIN, when it
#                         has one; else the external IP)
#   CT_TLS                acme: a certificate from CT_ACME_CA; internal: Caddy's own CA (local)
#   CT_TLS_CA_DIR         internal: root.{pem,key} and intermediate.{pem,key} of the CA to use
#                         (the local stack's one CA, trusted by its tests); empty: Caddy makes one
#   CT_ACME_CA            ACME directory (Let's Encrypt's production directory)
#   CT_ACME_CA_ROOT       PEM file of the root that the ACME server's own HTTPS chains to (a
#                         local ACME server); empty: the system's roots
#   CT_ACME_PROFILE       ACME profile (unset: shortlived for an IP address, the only one LE
#                         issues those under, and the CA's default for a name, 90 days at LE;
#                         empty: none, for an ACME server or a Caddy without profiles)
#   CT_RENEW_INTERVAL     how often Caddy looks for certificates to renew (empty: its 10m)
#   CT_HTTP_BIND          address Caddy and the WebRTC mux ports bind to (empty: all interfaces)
#   CT_PORT_BASE          seat i uses PORT_BASE+10i+1..4 (3000)
#   CT_MUX_PORT_BASE      seat i's WebRTC mux port is MUX_PORT_BASE+i (30000: below the
#                         ephemeral port range, so no outgoing connection holds one)
#   CT_NAME_PREFIX        prefix for container, volume and network names (empty on a real VM)
#   CT_BRIDGE_PREFIX      prefix of the seat networks' bridge interfaces, at most 9 characters
#                         (ctseat); the firewall rules match seat traffic by it
#   CT_FIREWALL_CHAIN     iptables chain of the seat rules (CLARATEACH-SEATS; at most 26 characters)
#   CT_METADATA_ADDR      the metadata server's address, closed to seats (169.254.169.254)
#   CT_PRIVATE_RANGES     address ranges closed to seats (the VPC's private ranges)
#   CT_RESOLV_CONF        the host's resolver list: DNS to its nameservers stays open (/etc/resolv.conf)
#   CT_SEAT_SUBNET_POOL   IPv4 network the seat networks' subnets are cut from, a /28 per seat in
#                         seat order (10.127.0.0/21: 128 seats, clear of Docker's own pools and of
#                         GCE's auto-mode subnets, 10.128.0.0/9)
#   CT_HOME_SIZE          a seat's disk share (1G): its home and its browser's profile and downloads
#   CT_TMP_SIZE           size of each seat container's /tmp, in memory (256m)
#   CT_PULL_POLICY        always: pull every image, falling back to a copy already present;
#                         missing: pull only images not present (the local stack's own images)
#   CT_PARALLEL           seats started side by side (6)
#   CT_DOCKER_WAIT, CT_SEAT_WAIT  seconds to wait for Docker / for every seat and Caddy
#   CT_METADATA_RETRIES, CT_PULL_ATTEMPTS, CT_PUBLISH_ATTEMPTS  bounded retries
#   CT_WATCHING           set by the watcher when it runs this script: start no second watcher

set -Eeuo pipefail
# Tokens end up in the Caddyfile and the docker config: keep every file we write private.
umask 077

CT_METADATA_URL=${CT_METADATA_URL:-http://metadata.google.internal/computeMetadata/v1}
CT_PUBSUB_URL=${CT_PUBSUB_URL:-https://pubsub.googleapis.com}
CT_DOCKER=${CT_DOCKER:-docker}
CT_CREDENTIAL_HELPER=${CT_CREDENTIAL_HELPER:-docker-credential-gcr}
CT_IPTABLES=${CT_IPTABLES-iptables}
CT_LOG=${CT_LOG:-/var/log/clarateach-startup.log}
CT_STATE_DIR=${CT_STATE_DIR:-/var/lib/clarateach}
CT_HTTP_PORT=${CT_HTTP_PORT:-80}
CT_HTTPS_PORT=${CT_HTTPS_PORT:-443}
CT_SEAT_HTTPS_BASE=${CT_SEAT_HTTPS_BASE:-8400}
CT_PUBLIC_HOST=${CT_PUBLIC_HOST:-}
CT_TLS=${CT_TLS:-acme}
CT_TLS_CA_DIR=${CT_TLS_CA_DIR:-}
CT_ACME_CA=${CT_ACME_CA:-https://acme-v02.api.letsencrypt.org/directory}
CT_ACME_CA_ROOT=${CT_ACME_CA_ROOT:-}
CT_RENEW_INTERVAL=${CT_RENEW_INTERVAL:-}
CT_HTTP_BIND=${CT_HTTP_BIND:-}
CT_PORT_BASE=${CT_PORT_BASE:-3000}
CT_MUX_PORT_BASE=${CT_MUX_PORT_BASE:-30000}
CT_NAME_PREFIX=${CT_NAME_PREFIX:-}
CT_BRIDGE_PREFIX=${CT_BRIDGE_PREFIX:-ctseat}
CT_FIREWALL_CHAIN=${CT_FIREWALL_CHAIN:-CLARATEACH-SEATS}
CT_METADATA_ADDR=${CT_METADATA_ADDR:-169.254.169.254}
CT_PRIVATE_RANGES=${CT_PRIVATE_RANGES:-10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 100.64.0.0/10}
CT_RESOLV_CONF=${CT_RESOLV_CONF:-/etc/resolv.conf}
CT_SEAT_SUBNET_POOL=${CT_SEAT_SUBNET_POOL:-10.127.0.0/21}
CT_HOME_SIZE=${CT_HOME_SIZE:-1G}
CT_TMP_SIZE=${CT_TMP_SIZE:-256m}
CT_PULL_POLICY=${CT_PULL_POLICY:-always}
CT_PARALLEL=${CT_PARALLEL:-6}
CT_DOCKER_WAIT=${CT_DOCKER_WAIT:-120}
CT_SEAT_WAIT=${CT_SEAT_WAIT:-180}
CT_METADATA_RETRIES=${CT_METADATA_RETRIES:-10}
CT_PULL_ATTEMPTS=${CT_PULL_ATTEMPTS:-3}
CT_PUBLISH_ATTEMPTS=${CT_PUBLISH_ATTEMPTS:-5}

# ---------------------------------------------------------------------------------------------
# Logging. The file is written directly (not through a pipe) so the failure report, which reads
# the file, always sees the last lines; a `tail` mirrors this run's part of it to stdout, which
# the guest agent forwards to the journal. It stops by itself when this script exits.
mkdir -p "$(dirname "$CT_LOG")" "$CT_STATE_DIR"
touch "$CT_LOG"
log_start=$(stat -c %s "$CT_LOG")
tail -c "+$((log_start + 1))" --pid=$$ -F "$CT_LOG" 2>/dev/null &
exec >>"$CT_LOG" 2>&1

log() { printf '%s clarateach-startup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
# To stderr: fail may run inside $(…), whose stdout is captured, not logged.
fail() {
  log "error: $*" >&2
  exit 1
}
# Name the command that failed; `set -e` alone would exit silently. (Source text, so no secrets.)
trap 'log "error: status $? from \`$BASH_COMMAND\` (line $LINENO, in ${FUNCNAME[*]:-main})" >&2' ERR

# The last ~40 lines of this run's log, at most 4000 bytes (cut at a line start).
log_tail() {
  local tail_text
  tail_text=$(tail -c "+$((log_start + 1))" "$CT_LOG" | tail -n 40)
  if ((${#tail_text} > 4000)); then
    tail_text=$(printf '%s' "$tail_text" | tail -c 4000 | sed 1d)
  fi
  printf '%s' "$tail_text"
}

# A JSON string literal. Drops control characters other than tab, newline and carriage return.
json_str() {
  local s
  s=$(printf '%s' "$1" | tr -d '\000-\010\013\014\016-\037')
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  printf '"%s"' "$s"
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

# Runs a command up to ATTEMPTS times, waiting attempt×STEP seconds between tries.
retry() {
  local attempts=$1 step=$2 what=$3 attempt
  shift 3
  for ((attempt = 1; attempt <= attempts; attempt++)); do
    "$@" && return 0
    log "$what failed (attempt $attempt/$attempts)"
    if ((attempt < attempts)); then sleep $((attempt * step)); fi
  done
  return 1
}

# `command`: with CT_DOCKER=docker (every real VM) a plain "$CT_DOCKER" would call this function.
docker() { command "$CT_DOCKER" "$@"; }

# ---------------------------------------------------------------------------------------------
# Metadata. GCE's metadata server only answers with the Metadata-Flavor header; curl retries
# while it is not reachable yet (early boot), but not on 404.
metadata() {
  curl -fsS --retry "$CT_METADATA_RETRIES" --retry-delay 1 --retry-connrefused --max-time 10 \
    -H 'Metadata-Flavor: Google' "$CT_METADATA_URL/$1"
}
attribute() {
  local value rc=0
  value=$(metadata "instance/attributes/$1") || rc=$?
  case $rc in
  0) printf '%s' "$value" ;;
  22) fail "metadata attribute '$1' is missing" ;; # curl -f: an HTTP error such as 404
  *) fail "metadata server did not answer for '$1' (curl exit $rc)" ;;
  esac
}
optional_attribute() { metadata "instance/attributes/$1" 2>/dev/null || true; }

# A fresh OAuth token of the VM's service account (they expire, so fetched per publish).
access_token() {
  local json token
  json=$(metadata instance/service-accounts/default/token) || return 1
  token=$(printf '%s' "$json" | sed -n 's/.*"access_token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
  [[ -n $token ]] || return 1
  printf '%s' "$token"
}

# ---------------------------------------------------------------------------------------------
# Reporting on vm.ready (Pub/Sub REST; the VM may publish there and nowhere else).
can_report=0
terminated=0
seats_ready=0

publish_state() {
  local state=$1 error_text=${2-} payload data
  payload="{\"workshopId\":$(json_str "$workshop_id"),\"vmName\":$(json_str "$vm_name")"
  payload+=",\"state\":$(json_str "$state"),\"externalIp\":$(json_str "$external_ip")"
  payload+=",\"internalIp\":$(json_str "$internal_ip"),\"httpPort\":$((CT_HTTP_PORT))"
  payload+=",\"seatHttpsBase\":$((CT_SEAT_HTTPS_BASE))"
  payload+=",\"seatsReady\":$((seats_ready)),\"readyToken\":$(json_str "$ready_token")"
  payload+=",\"seatResets\":$(json_str "$(applied_resets)")"
  if [[ $state == ready ]]; then payload+=",\"certificate\":$(certificate_state)"; fi
  if [[ $state == failed ]]; then
    payload+=",\"error\":$(json_str "$error_text")"
  fi
  payload+='}'
  data=$(printf '%s' "$payload" | base64 -w0)
  if retry "$CT_PUBLISH_ATTEMPTS" 2 "publishing vm.ready" publish_once "$data"; then
    log "published vm.ready: state=$state seatsReady=$seats_ready"
    return 0
  fi
  return 1
}

# The seats' certificate as the VM serves it (every seat's origin has the same one): when it ends,
# and what Caddy said last of renewing it (STATE_DIR/renewal-error, written by the watcher; empty
# while renewals succeed), checked at the VM's now.
certificate_state() {
  local end not_after=null renewal_error=null error
  error=$(cat "$CT_STATE_DIR/renewal-error" 2>/dev/null || true)
  if [[ -n $error ]]; then renewal_error=$(json_str "$error"); fi
  # curl's verbose output names it ("expire date: Dec  5 16:00:00 2026 GMT"): the VM's image (COS)
  # has curl, not necessarily an openssl command.
  end=$(curl -sv --insecure --max-time 10 -o /dev/null --connect-to "::${CT_HTTP_BIND:-127.0.0.1}:" \
    "https://$CT_PUBLIC_HOST:$(seat_https_port 1)/health" 2>&1 |
    sed -n 's/^\*[[:space:]]*expire date:[[:space:]]*//p' | head -n 1) || end=''
  if [[ -n $end ]] && end=$(date -u -d "$end" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null); then
    not_after=$(json_str "$end")
  fi
  printf '{"notAfter":%s,"renewalError":%s,"checkedAt":%s}' "$not_after" "$renewal_error" \
    "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")"
}

publish_once() {
  local token
  # The bearer token goes in through a curl config on a pipe, never on the command line.
  token=$(access_token) &&
    printf '{"messages":[{"data":"%s"}]}' "$1" |
    curl -fsS --max-time 15 -X POST -H 'Content-Type: application/json' \
      -K <(printf 'header = "Authorization: Bearer %s"\n' "$token") \
      --data-binary @- "$CT_PUBSUB_URL/v1/$ready_topic:publish" >/dev/null
}

on_exit() {
  local rc=$?
  trap - EXIT ERR
  # Being stopped (shutdown, local stop) is not a provisioning failure: report nothing then.
  if ((rc != 0 && can_report == 1 && terminated == 0)); then
    log "startup failed (exit status $rc), reporting it"
    publish_state failed "$(log_tail)" || log "could not report the failure"
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'terminated=1; exit 143' TERM INT HUP

# ---------------------------------------------------------------------------------------------
log "starting (metadata ${CT_METADATA_URL})"
for setting in CT_HTTP_PORT CT_HTTPS_PORT CT_SEAT_HTTPS_BASE CT_PORT_BASE CT_MUX_PORT_BASE CT_PARALLEL CT_DOCKER_WAIT CT_SEAT_WAIT \
  CT_METADATA_RETRIES CT_PULL_ATTEMPTS CT_PUBLISH_ATTEMPTS; do
  is_uint "${!setting}" || fail "$setting must be a number"
done

workshop_id=$(attribute workshop-id)
vm_name=$(attribute vm-name)
ready_topic=$(attribute ready-topic)
ready_token=$(attribute ready-token)
[[ -n $ready_token ]] || fail "metadata attribute 'ready-token' is empty"
internal_ip=''
external_ip=''
# From here on, every failure is reported on vm.ready.
can_report=1

internal_ip=$(metadata instance/network-interfaces/0/ip) || fail "no internal IP in metadata"
# Learners reach the seats, and Neko's WebRTC its NAT address, only through the external IP.
external_ip=$(metadata instance/network-interfaces/0/access-configs/0/external-ip) || external_ip=''
[[ -n $external_ip ]] || fail "no external IP in metadata (the VM needs an access config)"
CT_PUBLIC_HOST=${CT_PUBLIC_HOST:-$(optional_attribute public-host)}
CT_PUBLIC_HOST=${CT_PUBLIC_HOST:-$external_ip}
[[ $CT_PUBLIC_HOST =~ ^[A-Za-z0-9.-]+$ ]] || fail "malformed public host $CT_PUBLIC_HOST"
if [[ -z ${CT_ACME_PROFILE+set} ]]; then
  CT_ACME_PROFILE=''
  if [[ $CT_PUBLIC_HOST =~ ^[0-9.]+$ ]]; then CT_ACME_PROFILE=shortlived; fi
fi

seat_first=$(attribute seat-first)
seat_count=$(attribute seat-count)
workspace_image=$(attribute workspace-image)
neko_image=$(attribute neko-image)
caddy_image=$(attribute caddy-image)
registry=$(optional_attribute registry)
seat_tokens=$(attribute seat-tokens)
# The workspace page's header and instructions (absent on VMs of older control planes).
workshop_name=$(optional_attribute workshop-name)
instructions=$(optional_attribute instructions)
seat_resets=$(optional_attribute seat-resets)
# The instructor's read-only credential for every seat's terminal; empty: no watch route.
viewer_token=$(optional_attribute viewer-token)
# The portal's origin: the one other site whose pages may frame a seat's (the seat server's CSP).
portal_origin=$(optional_attribute portal-origin)

if ! is_uint "$seat_first" || ((seat_first < 1)); then
  fail "seat-first must be a positive integer"
fi
if ! is_uint "$seat_count" || ((seat_count < 1 || seat_count > 100)); then
  fail "seat-count must be 1..100"
fi
((CT_PORT_BASE + 10 * seat_count + 4 <= 65535 && CT_MUX_PORT_BASE + seat_count <= 65535 &&
  CT_SEAT_HTTPS_BASE + seat_count <= 65535)) || fail "too many seats for the port ranges"
[[ $CT_TLS == acme || $CT_TLS == internal ]] || fail "CT_TLS must be acme or internal"
[[ $CT_ACME_PROFILE =~ ^[A-Za-z0-9_-]*$ && $CT_ACME_CA =~ ^https://[^[:space:]{}]+$ ]] ||
  fail "malformed CT_ACME_CA or CT_ACME_PROFILE"
[[ $CT_RENEW_INTERVAL =~ ^([0-9]+(ms|s|m|h))*$ ]] || fail "malformed CT_RENEW_INTERVAL"

# Seat tokens: "SEAT:TOKEN SEAT:TOKEN …" keyed by global seat number. They land in the Caddyfile
# and CEL string literals, so only URL-safe characters are accepted.
declare -A token_of=()
read -ra pairs <<<"$seat_tokens"
for pair in "${pairs[@]}"; do
  [[ $pair =~ ^([0-9]+):([A-Za-z0-9_-]{8,128})$ ]] || fail "malformed entry in seat-tokens"
  token_of[$((10#${BASH_REMATCH[1]}))]=${BASH_REMATCH[2]}
done

# Seat resets: "SEAT:GENERATION:WIPE_GENERATION …". A seat whose generation is above the one this
# VM applied last gets new containers; above its applied wipe generation, an empty home too. Only
# the latest numbers count, so a missed or repeated change converges all the same.
declare -A reset_gen=() wipe_gen=()
read -ra pairs <<<"$seat_resets"
for entry in "${pairs[@]}"; do
  [[ $entry =~ ^([0-9]{1,4}):([0-9]{1,9}):([0-9]{1,9})$ ]] || fail "malformed entry in seat-resets"
  reset_gen[$((10#${BASH_REMATCH[1]}))]=$((10#${BASH_REMATCH[2]}))
  wipe_gen[$((10#${BASH_REMATCH[1]}))]=$((10#${BASH_REMATCH[3]}))
done

seat_of() { echo $((seat_first + $1 - 1)); }                   # local index → global seat
seat_port() { echo $((CT_PORT_BASE + 10 * $1 + $2)); } # 1 terminal, 2 files, 3 browser, 4 workspace
mux_port() { echo $((CT_MUX_PORT_BASE + $1)); }
for ((i = 1; i <= seat_count; i++)); do
  [[ -n ${token_of[$(seat_of "$i")]:-} ]] || fail "no access token for seat $(seat_of "$i")"
done
[[ -z $viewer_token || $viewer_token =~ ^[A-Za-z0-9_-]{8,128}$ ]] || fail "malformed viewer-token"
[[ -z $portal_origin || $portal_origin =~ ^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$ ]] ||
  fail "malformed portal-origin"

log "workshop=$workshop_id vm=$vm_name seats=$seat_first..$((seat_first + seat_count - 1)) external=${external_ip:-none} internal=$internal_ip"

# ---------------------------------------------------------------------------------------------
# Docker. COS starts it in parallel with this script; wait (bounded) until it answers.
deadline=$((SECONDS + CT_DOCKER_WAIT))
until docker info >/dev/null 2>&1; do
  ((SECONDS < deadline)) || fail "docker did not answer within ${CT_DOCKER_WAIT}s"
  sleep 1
done
log "docker is up"

# ---------------------------------------------------------------------------------------------
# Seat isolation. Every seat has a bridge network of its own, with traffic between its containers
# off, so no seat reaches another's (Docker isolates bridges from each other) and Caddy, on the
# host, reaches each through its loopback ports. Traffic a seat routes out of the VM passes one
# chain of ours, hooked into DOCKER-USER for every seat bridge: the metadata server (where the
# seat tokens, the ready token and the VM's service-account token live) and the private ranges
# (other classes' VMs) are closed, but for DNS to the host's resolvers (on GCE, the metadata
# server itself), which Docker's embedded DNS sends from the seat's namespace. The internet stays
# open for apt, git and pip. iptables rules do not survive a reboot: they are made again here, at
# every boot, as soon as Docker answers and before the image pulls. No seat runs before: Docker may
# restart seat containers at its own start (an unclean stop leaves them "failed"), but it cannot
# until seat_volume has mounted their disks again, after this.
# The chain is filled under a new name and swapped in, so a rerun on a running VM never leaves
# the seats without rules, not even for a moment.
seat_firewall() {
  local ipt=$CT_IPTABLES chain=$CT_FIREWALL_CHAIN ns dest proto i
  local next=$CT_FIREWALL_CHAIN-N jump=(DOCKER-USER -i "$CT_BRIDGE_PREFIX+" -j)
  "$ipt" -w -N "$next" 2>/dev/null || "$ipt" -w -F "$next"
  local -a resolvers
  mapfile -t resolvers < <(awk '$1 == "nameserver" && $2 ~ /^[0-9.]+$/ {print $2}' "$CT_RESOLV_CONF")
  for ns in "${resolvers[@]}"; do
    for proto in udp tcp; do
      "$ipt" -w -A "$next" -d "$ns" -p "$proto" --dport 53 -j RETURN
    done
  done
  # A seat's own two containers reach each other (the seat's browser opens the learner's app on
  # the workspace), though Docker's inter-container traffic is off: only within one seat bridge.
  for ((i = 1; i <= seat_count; i++)); do
    "$ipt" -w -A "$next" -i "$CT_BRIDGE_PREFIX$(seat_of "$i")" -o "$CT_BRIDGE_PREFIX$(seat_of "$i")" -j ACCEPT
  done
  for dest in "$CT_METADATA_ADDR" $CT_PRIVATE_RANGES; do
    "$ipt" -w -A "$next" -d "$dest" -j REJECT --reject-with icmp-net-prohibited
  done
  # DOCKER-USER exists once dockerd runs; it is made here too, for a daemon that is starting.
  "$ipt" -w -N DOCKER-USER 2>/dev/null || true
  "$ipt" -w -I "${jump[@]}" "$next"
  while "$ipt" -w -D "${jump[@]}" "$chain" 2>/dev/null; do :; done
  if "$ipt" -w -F "$chain" 2>/dev/null; then "$ipt" -w -X "$chain"; fi
  "$ipt" -w -E "$next" "$chain"
  seat_firewall_first
}
# Docker puts each network's `-i BRIDGE ! -o BRIDGE -j ACCEPT` at the top of FORWARD when it makes
# the network, and again when it restores it at its start, and only sometimes moves its jump to
# DOCKER-USER back above them: a seat network made after it, or restored at a reboot, would skip
# DOCKER-USER and this chain altogether. So a jump of ours to DOCKER-USER goes first in FORWARD,
# again after every seat network exists and before its containers start. Two tagged copies take
# turns (the new one in, then the old one out, under a lock: seats start side by side), so there
# is no moment without one.
seat_firewall_first() {
  local ipt=$CT_IPTABLES tag old='' new=a
  local -a jump=(FORWARD -i "$CT_BRIDGE_PREFIX+" -m comment --comment)
  {
    flock 9
    for tag in a b; do
      if "$ipt" -w -C "${jump[@]}" "$CT_FIREWALL_CHAIN-$tag" -j DOCKER-USER 2>/dev/null; then old=$tag; fi
    done
    [[ $old != a ]] || new=b
    "$ipt" -w -I "${jump[@]:0:1}" 1 "${jump[@]:1}" "$CT_FIREWALL_CHAIN-$new" -j DOCKER-USER
    if [[ -n $old ]]; then "$ipt" -w -D "${jump[@]}" "$CT_FIREWALL_CHAIN-$old" -j DOCKER-USER; fi
  } 9>"$CT_STATE_DIR/firewall.lock"
}
if [[ -n $CT_IPTABLES ]]; then
  ((${#CT_BRIDGE_PREFIX} >= 1 && ${#CT_BRIDGE_PREFIX} <= 9)) || fail "CT_BRIDGE_PREFIX must be 1..9 characters"
  seat_firewall || fail "could not install the seat firewall"
  log "seat firewall in place (chain $CT_FIREWALL_CHAIN)"
else
  log "warning: CT_IPTABLES is empty: seats are not firewalled"
fi

# ---------------------------------------------------------------------------------------------
# Seat subnets. Docker's default pools hold about 31 networks, a /16 or /20 each: a VM (or the
# local stack's shared Docker) would run out near 30 seats. Each seat network gets a /28 of
# CT_SEAT_SUBNET_POOL instead (gateway, workspace, browser, room to spare), the i-th seat of this VM
# the i-th /28: a rerun or a reboot finds the same subnet for every seat.
SEAT_SUBNET_SIZE=16
ip_to_int() {
  local IFS=. a b c d
  read -r a b c d <<<"$1"
  echo $(((a << 24) | (b << 16) | (c << 8) | d))
}
int_to_ip() { echo "$(($1 >> 24 & 255)).$(($1 >> 16 & 255)).$(($1 >> 8 & 255)).$(($1 & 255))"; }
# "FIRST LAST" addresses (as integers) of an IPv4 network a.b.c.d/n; fails on anything else.
cidr_range() {
  [[ $1 =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})/([0-9]{1,2})$ ]] || return 1
  local octet first size=$((1 << (32 - 10#${BASH_REMATCH[5]})))
  for octet in "${BASH_REMATCH[@]:1:4}"; do ((10#$octet <= 255)) || return 1; done
  ((10#${BASH_REMATCH[5]} <= 32)) || return 1
  first=$(ip_to_int "${1%/*}")
  echo "$((first & ~(size - 1))) $(((first & ~(size - 1)) + size - 1))"
}
# Whether network $1 shares an address with FIRST..LAST ($2, $3); anything but IPv4 does not.
overlaps() {
  local range other_first other_last
  range=$(cidr_range "$1") || return 1
  read -r other_first other_last <<<"$range"
  ((other_first <= $3 && $2 <= other_last))
}
seat_subnet() {
  local first
  read -r first _ <<<"$(cidr_range "$CT_SEAT_SUBNET_POOL")"
  echo "$(int_to_ip $((first + ($1 - 1) * SEAT_SUBNET_SIZE)))/28"
}

# The pool must hold a /28 per seat and overlap nothing else on this host: another Docker network
# (this VM's own seat networks aside) or a route. Checked once, before any seat network is made.
seat_pool_check() {
  local pool=$CT_SEAT_SUBNET_POOL range first last need bits=32 line name subnet route
  range=$(cidr_range "$pool") ||
    fail "seat subnet pool CT_SEAT_SUBNET_POOL=$pool is not an IPv4 network such as 10.127.0.0/21"
  read -r first last <<<"$range"
  (($(ip_to_int "${pool%/*}") == first)) ||
    fail "seat subnet pool CT_SEAT_SUBNET_POOL=$pool is not a network address (its first is $(int_to_ip "$first"))"
  need=$((seat_count * SEAT_SUBNET_SIZE))
  while (((1 << (32 - bits)) < need)); do bits=$((bits - 1)); done
  local wants="$seat_count seats need $seat_count /28 subnets, $need addresses: a /$bits or larger"
  ((first + need - 1 <= last)) ||
    fail "seat subnet pool CT_SEAT_SUBNET_POOL=$pool is exhausted: it holds $(((last - first + 1) / SEAT_SUBNET_SIZE)) /28 subnets; $wants"
  last=$((first + need - 1))
  local -a networks
  mapfile -t networks < <(docker network ls -q)
  local -A ours=()
  for name in $(docker network ls -q --filter "label=clarateach.vm=$vm_name" --format '{{.Name}}'); do
    ours[$name]=1
  done
  while read -r name line; do
    [[ -z ${ours[$name]:-} ]] || continue
    for subnet in $line; do
      ! overlaps "$subnet" "$first" "$last" ||
        fail "seat subnet pool CT_SEAT_SUBNET_POOL=$pool overlaps Docker network $name ($subnet); $wants, free of every other network"
    done
  done < <(docker network inspect --format '{{.Name}}{{range .IPAM.Config}} {{.Subnet}}{{end}}' \
    "${networks[@]}")
  while read -r route; do
    [[ $route != *" dev $CT_BRIDGE_PREFIX"* ]] || continue
    subnet=${route%% *}
    [[ $subnet == */* ]] || subnet+=/32
    ! overlaps "$subnet" "$first" "$last" ||
      fail "seat subnet pool CT_SEAT_SUBNET_POOL=$pool overlaps the host route '$route'; $wants, free of every other network"
  done < <(ip -4 route show | grep -v '^default ')
}

seat_pool_check


# COS's / is read-only and root's HOME is not writable: docker-credential-gcr and docker keep
# their config under a writable HOME.
export HOME=$CT_STATE_DIR
if [[ -n $registry ]]; then
  "$CT_CREDENTIAL_HELPER" configure-docker --registries="$registry" >/dev/null ||
    fail "could not configure docker for $registry"
  log "docker authenticates to $registry"
fi

pull_quietly() { docker pull "$1" >/dev/null; }
# An image already on this VM is pulled once, not retried: a registry hiccup at a reboot must not
# fail (or slow) a class whose images are here. One pinned by digest is never pulled again.
pull_image() {
  if docker image inspect "$1" >/dev/null 2>&1; then
    if [[ $CT_PULL_POLICY == missing || $1 == *@sha256:* ]]; then
      log "using $1, already on this VM"
    elif pull_quietly "$1"; then
      log "pulled $1"
    else
      log "warning: could not pull $1; using the copy already on this VM"
    fi
  elif retry "$CT_PULL_ATTEMPTS" 3 "pulling $1" pull_quietly "$1"; then
    log "pulled $1"
  else
    return 1
  fi
}

# Every container, network and volume of this VM carries these (what a cleanup looks for).
labels=(--label "clarateach.vm=$vm_name" --label "clarateach.workshop=$workshop_id")

# ---------------------------------------------------------------------------------------------
# Caddy. Every seat is an HTTPS origin of its own, https://HOST:SEAT_HTTPS_BASE+i (ports are
# separate origins; one certificate for HOST serves them all), so no script of one seat runs on
# another seat's origin. Port CT_HTTP_PORT answers /health and ACME HTTP-01 challenges, and
# redirects everything else to the seat's HTTPS origin. On a seat's origin, /vm/S/… only with the
# seat's credential: `?t=` once, exchanged for the ct_seat_S cookie by a page that then opens the
# same URL without `t`; /vm/S/{terminal,files,browser}* proxied (prefix stripped), the rest to the
# workspace page (the page, its scripts, /app/PORT/).
caddyfile=$CT_STATE_DIR/Caddyfile
caddy_name=${CT_NAME_PREFIX}clarateach-caddy
seat_https_port() { echo $((CT_SEAT_HTTPS_BASE + $1)); }
# The backticks are Caddyfile quoting for the CEL expressions, not shell substitutions.
# shellcheck disable=SC2016
render_caddyfile() {
  local i seat token kind port origin ancestors
  printf '{\n\tadmin off\n\thttp_port %s\n\thttps_port %s\n' "$CT_HTTP_PORT" "$CT_HTTPS_PORT"
  # Browsers send no SNI for an IP address: the certificate for HOST is the default.
  printf '\tdefault_sni %s\n\tauto_https disable_redirects\n' "$CT_PUBLIC_HOST"
  if [[ -n $CT_RENEW_INTERVAL ]]; then printf '\trenew_interval %s\n' "$CT_RENEW_INTERVAL"; fi
  if [[ $CT_TLS == internal ]]; then
    printf '\tlocal_certs\n'
    if [[ -n $CT_TLS_CA_DIR ]]; then
      printf '\tpki {\n\t\tca local {\n'
      for kind in root intermediate; do
        printf '\t\t\t%s {\n\t\t\t\tcert /etc/clarateach/ca/%s.pem\n' "$kind" "$kind"
        printf '\t\t\t\tkey /etc/clarateach/ca/%s.key\n\t\t\t}\n' "$kind"
      done
      printf '\t\t}\n\t}\n'
    fi
  fi
  printf '}\n'
  # CT_TLS=acme: the ACME issuer, named in each seat's site. As the global `cert_issuer` it would
  # only be the default policy, and Caddy gives its internal CA to every name that no site's own
  # TLS policy lists and that "does not qualify for a public certificate": any IP address in Caddy
  # 2.6 (certmagic 0.17), loopback and private ones in 2.10. Port 443 is not opened: HTTP-01 on
  # CT_HTTP_PORT is the only challenge.
  printf '\n(seat_tls) {\n'
  if [[ $CT_TLS == acme ]]; then
    printf '\ttls {\n\t\tissuer acme {\n\t\t\tdir %s\n\t\t\tdisable_tlsalpn_challenge\n' "$CT_ACME_CA"
    if [[ -n $CT_ACME_CA_ROOT ]]; then printf '\t\t\ttrusted_roots /etc/clarateach/acme-root.pem\n'; fi
    if [[ -n $CT_ACME_PROFILE ]]; then printf '\t\t\tprofile %s\n' "$CT_ACME_PROFILE"; fi
    printf '\t\t}\n\t}\n'
  fi
  printf '}\n\nhttp://:%s {\n' "$CT_HTTP_PORT"
  if [[ -n $CT_HTTP_BIND ]]; then printf '\tbind %s\n' "$CT_HTTP_BIND"; fi
  printf '\thandle /health {\n\t\trespond "OK" 200\n\t}\n'
  for ((i = 1; i <= seat_count; i++)); do
    seat=$(seat_of "$i")
    printf '\t@to%s path /vm/%s /vm/%s/*\n\tredir @to%s https://{host}:%s{uri} 308\n' \
      "$seat" "$seat" "$seat" "$seat" "$(seat_https_port "$i")"
  done
  printf '\thandle {\n\t\trespond "Not Found" 404\n\t}\n}\n'

  ancestors="'self'${portal_origin:+ $portal_origin}"
  for ((i = 1; i <= seat_count; i++)); do
    seat=$(seat_of "$i")
    token=${token_of[$seat]}
    origin="https://$CT_PUBLIC_HOST:$(seat_https_port "$i")"
    printf '\n%s {\n\timport seat_tls\n' "$origin"
    if [[ -n $CT_HTTP_BIND ]]; then printf '\tbind %s\n' "$CT_HTTP_BIND"; fi
    # The instructor watches: the viewer credential, only ever as ?v= (no cookie: the console
    # embeds many seats from its own origin, so this route alone takes cross-site requests), gets
    # the terminal with the role set here, which the seat server reads as read-only. Learners'
    # routes never pass a role on.
    if [[ -n $viewer_token ]]; then
      printf '\t@watch {\n\t\tpath /vm/%s/watch/*\n' "$seat"
      printf '\t\texpression `{query.v} == "%s"`\n\t}\n\thandle @watch {\n' "$viewer_token"
      printf '\t\theader Referrer-Policy no-referrer\n'
      printf '\t\turi strip_prefix /vm/%s/watch\n\t\treverse_proxy 127.0.0.1:%s {\n' \
        "$seat" "$(seat_port "$i" 1)"
      printf '\t\t\theader_up X-Clarateach-Role viewer\n\t\t\theader_up -Cookie\n\t\t}\n\t}\n'
    fi
    # Cookies ignore ports: a browser holding seat 2's cookie sends it to every port of this host,
    # seat 1's too, and SameSite cannot tell the ports apart (one site). So the seat takes from
    # other sites and other ports (Sec-Fetch-Site same-site or cross-site) only a top-level or
    # framed GET navigation: no fetch, form post, WebSocket or subresource.
    printf '\t@foreign {\n\t\theader_regexp Sec-Fetch-Site ^(same-site|cross-site)$\n'
    printf '\t\tnot {\n\t\t\theader Sec-Fetch-Mode navigate\n\t\t\tmethod GET HEAD\n\t\t}\n\t}\n'
    printf '\thandle @foreign {\n\t\trespond "Forbidden" 403\n\t}\n'
    # The pages use relative URLs: /vm/S/terminal must become /vm/S/terminal/ (query kept).
    printf '\t@bare_query {\n\t\tpath_regexp ^/vm/[0-9]+(/terminal|/files|/browser|/app)?$\n'
    printf '\t\texpression `{query} != ""`\n\t}\n\tredir @bare_query {path}/?{query} 308\n'
    printf '\t@bare path_regexp ^/vm/[0-9]+(/terminal|/files|/browser|/app)?$\n\tredir @bare {path}/ 308\n'
    # The token arrives once, as ?t=: it becomes the cookie (Secure, HttpOnly, host-only), and a
    # page opens the URL without it. Not an HTTP redirect: a SameSite=Strict cookie set on a visit
    # that came from another site is not sent on that visit's redirect, but is sent on a
    # navigation this origin's own page starts. A visit framed by the portal can only use a
    # partitioned cookie (a cross-site frame sends no Strict or Lax cookie), which lives in the
    # portal's partition alone; only the portal may frame the seat.
    printf '\t@exchange {\n\t\tpath /vm/%s/*\n\t\texpression `{query.t} == "%s"`\n\t}\n' "$seat" "$token"
    printf '\thandle @exchange {\n'
    printf '\t\t@framed header Sec-Fetch-Dest iframe\n'
    printf '\t\theader @framed Set-Cookie "ct_seat_%s=%s; Path=/vm/%s; Secure; HttpOnly; SameSite=None; Partitioned"\n' \
      "$seat" "$token" "$seat"
    printf '\t\t@top not header Sec-Fetch-Dest iframe\n'
    printf '\t\theader @top Set-Cookie "ct_seat_%s=%s; Path=/vm/%s; Secure; HttpOnly; SameSite=Strict"\n' \
      "$seat" "$token" "$seat"
    printf '\t\theader Cache-Control no-store\n\t\theader Referrer-Policy no-referrer\n'
    printf "\t\theader Content-Security-Policy \"default-src 'none'; frame-ancestors %s\"\n" "$ancestors"
    printf '\t\theader Content-Type "text/html; charset=utf-8"\n'
    printf '\t\trespond `<!doctype html><meta http-equiv="refresh" content="0; url={path}">'
    printf '<title>Opening your seat</title><p><a href="{path}">Open your seat</a></p>` 200\n\t}\n'
    printf '\t@seat {\n\t\tpath /vm/%s/*\n' "$seat"
    printf '\t\texpression `{http.request.cookie.ct_seat_%s} == "%s"`\n\t}\n' "$seat" "$token"
    printf '\thandle @seat {\n'
    port=1
    for kind in terminal files browser; do
      # An app must not plant another seat's access cookie: its ct_seat_* cookies are renamed.
      # The seat's servers authorize nothing by cookie (this does): they get none.
      printf '\t\thandle_path /vm/%s/%s* {\n\t\t\treverse_proxy 127.0.0.1:%s {\n' \
        "$seat" "$kind" "$(seat_port "$i" "$port")"
      printf '\t\t\t\theader_up -X-Clarateach-Role\n'
      if [[ $kind != browser ]]; then printf '\t\t\t\theader_up -Cookie\n'; fi
      printf '\t\t\t\theader_down Set-Cookie "(?i)^\\s*ct_seat_" "blocked_ct_seat_"\n\t\t\t}\n\t\t}\n'
      port=$((port + 1))
    done
    # The rest is the workspace page, and the learner's own app at /app/PORT/: the app gets no
    # cookie at all, so never the seat's credential (Caddy 2.6 cannot edit one cookie out; the
    # app runs sandboxed in an opaque origin, where it has no cookies of its own anyway).
    printf '\t\thandle {\n\t\t\turi strip_prefix /vm/%s\n\t\t\treverse_proxy 127.0.0.1:%s {\n' \
      "$seat" "$(seat_port "$i" 4)"
    printf '\t\t\t\theader_up -Cookie\n'
    printf '\t\t\t\theader_down Set-Cookie "(?i)^\\s*ct_seat_" "blocked_ct_seat_"\n\t\t\t}\n\t\t}\n'
    printf '\t}\n'
    printf '\t@vm path /vm/*\n\thandle @vm {\n\t\trespond "Forbidden" 403\n\t}\n'
    printf '\thandle {\n\t\trespond "Not Found" 404\n\t}\n}\n'
  done
}
# Renders the Caddyfile, opens its port, and (re)starts Caddy when the file changed or it is not
# running.
caddy_up() {
  local caddy_changed caddy_image_id caddy_now
  render_caddyfile >"$caddyfile.tmp"
  caddy_changed=1
  if cmp -s "$caddyfile.tmp" "$caddyfile"; then caddy_changed=0; fi
  mv -f "$caddyfile.tmp" "$caddyfile"

  # COS's host firewall accepts only SSH; Caddy is on the host network, so its ports are opened
  # here. iptables rules do not survive a reboot, and this runs at every boot.
  local ports
  if [[ -n $CT_IPTABLES && -z $CT_HTTP_BIND ]]; then
    for ports in "$CT_HTTP_PORT" "$(seat_https_port 1):$(seat_https_port "$seat_count")"; do
      "$CT_IPTABLES" -w -C INPUT -p tcp --dport "$ports" -j ACCEPT 2>/dev/null ||
        "$CT_IPTABLES" -w -A INPUT -p tcp --dport "$ports" -j ACCEPT ||
        fail "could not open tcp/$ports in the host firewall"
      log "host firewall accepts tcp/$ports"
    done
  fi

  # Recreated when the Caddyfile changed (a running Caddy would keep serving the previous one; its
  # admin API is off) or when it is not running; a rerun that changed no credential keeps it, and
  # with it every open connection of the seats.
  caddy_image_id=$(docker image inspect --format '{{.Id}}' "$caddy_image" 2>/dev/null || true)
  caddy_now=$(docker inspect --format '{{.Image}} {{.State.Running}}' "$caddy_name" 2>/dev/null || true)
  if ((caddy_changed == 0)) && [[ $caddy_now == "$caddy_image_id true" ]]; then
    log "keeping $caddy_name"
  else
    docker rm -f "$caddy_name" >/dev/null 2>&1 || true
    # Certificates and the ACME account live on the VM's disk: a Caddy restarted for new
    # credentials (or a reboot) keeps its certificate instead of asking the CA again.
    mkdir -p "$CT_STATE_DIR/caddy" || fail "could not make $CT_STATE_DIR/caddy"
    local mounts=(-v "$caddyfile:/etc/caddy/Caddyfile:ro" -v "$CT_STATE_DIR/caddy:/data")
    if [[ $CT_TLS == internal && -n $CT_TLS_CA_DIR ]]; then
      mounts+=(-v "$CT_TLS_CA_DIR:/etc/clarateach/ca:ro")
    fi
    if [[ $CT_TLS == acme && -n $CT_ACME_CA_ROOT ]]; then
      mounts+=(-v "$CT_ACME_CA_ROOT:/etc/clarateach/acme-root.pem:ro")
    fi
    docker run -d --name "$caddy_name" --restart unless-stopped --network host "${labels[@]}" \
      --security-opt no-new-privileges --label clarateach.role=proxy "${mounts[@]}" \
      -e XDG_DATA_HOME=/data -e XDG_CONFIG_HOME=/data/config \
      "$caddy_image" caddy run --config /etc/caddy/Caddyfile --adapter caddyfile >/dev/null
    log "started $caddy_name on port $CT_HTTP_PORT"
  fi
}

# On a rerun for changed credentials (the watcher), Caddy takes the new ones first: a freed
# seat's old credential is refused, and Caddy's restart closes its open sockets, before the
# image pulls and the seat's containers are redone. At boot Caddy comes after the seats.
caddy_running=$(docker inspect --format '{{.State.Running}}' "$caddy_name" 2>/dev/null || true)
if [[ -n ${CT_WATCHING:-} && $caddy_running == true ]]; then caddy_up; fi

# Pull in parallel: the images are large and independent.
declare -A pulling=()
for image in "$workspace_image" "$neko_image" "$caddy_image"; do
  [[ -z ${pulling[$image]:-} ]] || continue
  pull_image "$image" &
  pulling[$image]=$!
done
pull_failed=0
for image in "${!pulling[@]}"; do
  wait "${pulling[$image]}" || pull_failed=1
done
((pull_failed == 0)) || fail "could not pull every image"


# One network per seat, on its subnet; its bridge is named by seat so the firewall rule above
# matches it. A network on another subnet (an earlier pool, or Docker's own before seat pools) is
# made again, and the seat's containers with it (start_seat recreates them).
seat_network() {
  local seat=$1 name=${CT_NAME_PREFIX}seat-$1-net subnet have
  subnet=$(seat_subnet "$2")
  have=$(docker network inspect --format '{{range .IPAM.Config}}{{.Subnet}}{{end}}' "$name" 2>/dev/null) ||
    have=''
  if [[ -n $have && $have != "$subnet" ]]; then
    docker rm -f "${CT_NAME_PREFIX}seat-$seat" "${CT_NAME_PREFIX}seat-$seat-browser" >/dev/null 2>&1 || true
    docker network rm "$name" >/dev/null || fail "could not remove network $name ($have)"
    log "removed $name: its subnet $have is not $subnet"
    have=''
  fi
  if [[ -z $have ]]; then
    docker network create --driver bridge --subnet "$subnet" "${labels[@]}" \
      -o "com.docker.network.bridge.name=$CT_BRIDGE_PREFIX$seat" \
      -o com.docker.network.bridge.enable_icc=false "$name" >/dev/null ||
      fail "could not create network $name ($subnet, from seat subnet pool $CT_SEAT_SUBNET_POOL)"
  fi
  printf '%s' "$name"
}

# A seat's disk share: an ext4 image of CT_HOME_SIZE under the state dir (fallocated, so the space
# is the seat's), loop-mounted at the seat's directory. A learner who fills it gets ENOSPC; the VM's
# disk, Docker and the other seats do not notice. Works wherever the kernel has loop devices and
# ext4 (COS does; XFS project quotas and --storage-opt size need an XFS /var/lib/docker, which COS
# does not have). Its `home` and `browser` directories are the seat's volumes (Docker copies the
# image's home into each the first time), so a recreated container keeps the learner's files.
# Mounts do not survive a reboot: until this function mounts it again, after the firewall, a
# seat's volumes point at nothing and Docker cannot start its containers, not even the ones its
# restart policy would start at daemon start.
seat_volume() {
  local seat=$1 disk=$CT_STATE_DIR/seats/seat-$1 kind name
  mkdir -p "$disk"
  if [[ ! -f $disk.img ]]; then
    { fallocate -l "$CT_HOME_SIZE" "$disk.img.new" && mkfs.ext4 -q -F -m 0 "$disk.img.new" &&
      mv "$disk.img.new" "$disk.img"; } || fail "could not make seat $seat's disk of $CT_HOME_SIZE"
  fi
  if ! mountpoint -q "$disk"; then
    mount -o loop,nosuid,nodev "$disk.img" "$disk" || fail "could not mount seat $seat's disk"
  fi
  for kind in home browser; do
    mkdir -p "$disk/$kind"
    name=${CT_NAME_PREFIX}seat-$seat-$kind
    docker volume inspect "$name" >/dev/null 2>&1 ||
      docker volume create "${labels[@]}" --opt type=none --opt o=bind --opt "device=$disk/$kind" \
        "$name" >/dev/null || fail "could not create volume $name"
  done
}

# The disk of a seat no longer on this VM (its volumes are gone): unmounted and deleted.
remove_seat_disk() {
  local disk=$1
  if mountpoint -q "$disk"; then umount "$disk" || fail "could not unmount $disk"; fi
  rm -rf "$disk" "$disk.img"
  log "removed the disk of ${disk##*/}"
}

# What this VM last applied of a seat's resets: "GENERATION WIPE_GENERATION" (0 0 at first).
seats_dir=$CT_STATE_DIR/seats
mkdir -p "$seats_dir"
applied_reset() {
  local applied
  applied=$(cat "$seats_dir/$1" 2>/dev/null || true)
  [[ $applied =~ ^[0-9]+\ [0-9]+$ ]] || applied='0 0'
  printf '%s' "$applied"
}
# A seat the control plane reset (or freed) since: its containers go, and with a wipe its home,
# so the next learner finds no process, shell, history or file of the one before.
reset_seat() {
  local seat=$1 gen wipe applied_gen applied_wipe
  gen=${reset_gen[$seat]:-0}
  wipe=${wipe_gen[$seat]:-0}
  read -r applied_gen applied_wipe <<<"$(applied_reset "$seat")"
  ((gen > applied_gen || wipe > applied_wipe)) || return 0
  docker rm -f "${CT_NAME_PREFIX}seat-$seat" "${CT_NAME_PREFIX}seat-$seat-browser" >/dev/null 2>&1 || true
  if ((wipe > applied_wipe)); then
    docker volume rm -f "${CT_NAME_PREFIX}seat-$seat-home" "${CT_NAME_PREFIX}seat-$seat-browser" >/dev/null ||
      fail "could not wipe the home of seat $seat"
    # The homes live on the seat's own disk: a new, empty one is made by seat_volume.
    remove_seat_disk "$CT_STATE_DIR/seats/seat-$seat"
  fi
  log "seat $seat reset to generation $gen (home wiped at generation $wipe)"
}
# The class clock the seats read (the watcher keeps `class-ends` in it current), mounted read-only.
clock_dir=$CT_STATE_DIR/clock
mkdir -p "$clock_dir"
chmod 755 "$clock_dir"

# ---------------------------------------------------------------------------------------------
# Containers. Each carries a hash of its settings: an unchanged container is kept (learners keep
# their files across reboots) and started if it is not running; a changed one is recreated.
declare -A wanted=()
ensure_container() {
  local name=$1 want have
  shift
  want=$(printf '%s\n' "$@" | sha256sum | cut -c1-16)
  have=$(docker inspect --format '{{index .Config.Labels "clarateach.config"}} {{.State.Running}}' \
    "$name" 2>/dev/null || true)
  case $have in
  "$want true")
    log "keeping $name"
    return 0
    ;;
  "$want false")
    docker start "$name" >/dev/null || fail "container $name did not start again"
    log "started existing $name"
    return 0
    ;;
  "") ;;
  *)
    docker rm -f "$name" >/dev/null
    log "removed outdated $name"
    ;;
  esac
  docker run -d --name "$name" --label "clarateach.config=$want" "$@" >/dev/null ||
    fail "container $name (image ${*: -1}) did not start"
  log "created $name"
}

# Bounds per container, so one learner's runaway process or fork bomb cannot take the VM (and
# every other seat) down: each may use up to a seat's share of 85% of the memory, an equal CPU
# weight, and a bounded number of processes (threads count: Firefox needs many).
mem_kb=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\) kB$/\1/p' /proc/meminfo)
is_uint "$mem_kb" || fail "cannot read MemTotal from /proc/meminfo"
seat_memory=$((mem_kb * 85 / 100 / seat_count / 1024))m
hardening=(--security-opt no-new-privileges --cpu-shares 1024
  --memory "$seat_memory" --memory-swap "$seat_memory" --restart on-failure:5)
# The seat server runs as root (real id) and works as `learner` (effective ids), so nothing the
# learner runs can signal, trace or read it; it needs SETUID and SETGID to start the shell as
# `learner` in every id, and nothing else (no-new-privileges still holds for the shell). Docker
# lets any user bind any port in a container; 1024 keeps the ports below it root's again. The
# server holds 3001..3003 for the container's whole life (tini ends the container with it).
workspace_caps=(--cap-drop ALL --cap-add SETUID --cap-add SETGID --pids-limit 512
  --sysctl net.ipv4.ip_unprivileged_port_start=1024)
# Neko's supervisord starts as root and drops to its user, and its X server and PulseAudio
# chown their sockets: it needs to change users and ownership, nothing else.
browser_caps=(--cap-drop ALL --cap-add SETUID --cap-add SETGID --cap-add CHOWN
  --cap-add FOWNER --cap-add DAC_OVERRIDE --cap-add KILL --pids-limit 2048)
public_bind=${CT_HTTP_BIND:+$CT_HTTP_BIND:}
# The class's instructions, one file for every seat of the VM, mounted read-only; not secret, and
# the seat server reads it as the learner (the script's umask would keep it to root).
instructions_file=$CT_STATE_DIR/instructions.md
{ printf '%s' "$instructions" >"$instructions_file.tmp" && chmod 644 "$instructions_file.tmp" &&
  mv -f "$instructions_file.tmp" "$instructions_file"; } ||
  fail "could not write $instructions_file"
start_seat() {
  local i=$1 seat net mux
  seat=$(seat_of "$i")
  reset_seat "$seat"
  net=$(seat_network "$seat" "$i")
  if [[ -n $CT_IPTABLES ]]; then seat_firewall_first || fail "could not put the seat firewall first"; fi
  seat_volume "$seat"
  # Seat ports listen on loopback only: learners reach them through Caddy and its token check.
  ensure_container "${CT_NAME_PREFIX}seat-$seat" \
    --network "$net" "${labels[@]}" "${hardening[@]}" "${workspace_caps[@]}" \
    --label "clarateach.seat=$seat" --label clarateach.role=workspace \
    --hostname "seat-$seat" --network-alias workspace -v "${CT_NAME_PREFIX}seat-$seat-home:/home/learner" \
    -v "$instructions_file:/etc/clarateach/instructions.md:ro" -v "$clock_dir:/run/clarateach:ro" \
    --read-only --tmpfs "/tmp:rw,exec,nosuid,nodev,size=$CT_TMP_SIZE" \
    -p "127.0.0.1:$(seat_port "$i" 1):3001" -p "127.0.0.1:$(seat_port "$i" 2):3002" \
    -p "127.0.0.1:$(seat_port "$i" 4):3003" \
    -e "CLARATEACH_SEAT=$seat" -e "CLARATEACH_WORKSHOP_ID=$workshop_id" \
    -e "CLARATEACH_CLASS_NAME=$workshop_name" -e "CLARATEACH_PORTAL_ORIGIN=$portal_origin" \
    "$workspace_image"
  # WebRTC cannot go through the HTTP proxy: each browser has its own public mux port (tcp+udp),
  # with the VM's external IP as its NAT address. Neko v3's names only: any v2 name switches v3
  # into legacy mode. Firefox needs more than docker's 64 MB of /dev/shm. No Neko password: Neko
  # listens on loopback only and Caddy lets only the seat's learner reach it, on the seat's origin.
  mux=$(mux_port "$i")
  ensure_container "${CT_NAME_PREFIX}seat-$seat-browser" \
    --network "$net" "${labels[@]}" "${hardening[@]}" "${browser_caps[@]}" \
    --shm-size 2g --label "clarateach.seat=$seat" --label clarateach.role=browser \
    -v "${CT_NAME_PREFIX}seat-$seat-browser:/home/neko" \
    --tmpfs "/tmp:rw,nosuid,nodev,size=$CT_TMP_SIZE" \
    -p "127.0.0.1:$(seat_port "$i" 3):8080" \
    -p "$public_bind$mux:$mux/tcp" -p "$public_bind$mux:$mux/udp" \
    -e NEKO_MEMBER_PROVIDER=noauth \
    -e "NEKO_WEBRTC_TCPMUX=$mux" -e "NEKO_WEBRTC_UDPMUX=$mux" \
    -e "NEKO_WEBRTC_NAT1TO1=$external_ip" -e NEKO_SERVER_PROXY=true \
    "$neko_image"
  printf '%s %s\n' "${reset_gen[$seat]:-0}" "${wipe_gen[$seat]:-0}" >"$seats_dir/$seat"
}

# Seats start side by side (a few at a time): one after another, a 20-seat VM waits on 40
# sequential `docker run`s.
starting=()
seats_failed=0
for ((i = 1; i <= seat_count; i++)); do
  seat=$(seat_of "$i")
  wanted[${CT_NAME_PREFIX}seat-$seat]=1
  wanted[${CT_NAME_PREFIX}seat-$seat-browser]=1
  start_seat "$i" &
  starting+=($!)
  if ((${#starting[@]} >= CT_PARALLEL)); then
    wait "${starting[0]}" || seats_failed=1
    starting=("${starting[@]:1}")
  fi
done
for pid in "${starting[@]}"; do wait "$pid" || seats_failed=1; done
((seats_failed == 0)) || fail "not every seat container started"

# Anything else of this VM (seats from an earlier configuration) goes; Caddy is recreated below.
wanted[$caddy_name]=1
existing=$(docker ps -a --filter "label=clarateach.vm=$vm_name" --format '{{.Names}}')
for name in $existing; do
  if [[ -z ${wanted[$name]:-} ]]; then
    docker rm -f "$name" >/dev/null
    log "removed $name"
  fi
done
for ((i = 1; i <= seat_count; i++)); do
  wanted[${CT_NAME_PREFIX}seat-$(seat_of "$i")-net]=1
  wanted[${CT_NAME_PREFIX}seat-$(seat_of "$i")-home]=1
done
for name in $(docker network ls -q --filter "label=clarateach.vm=$vm_name" --format '{{.Name}}') \
  $(docker volume ls -q --filter "label=clarateach.vm=$vm_name"); do
  if [[ -z ${wanted[$name]:-} ]]; then
    docker network rm "$name" >/dev/null 2>&1 || docker volume rm "$name" >/dev/null
    log "removed $name"
  fi
done
for disk in "$CT_STATE_DIR"/seats/seat-*.img; do
  disk=${disk%.img}
  if [[ -f $disk.img && -z ${wanted[${CT_NAME_PREFIX}${disk##*/}]:-} ]]; then remove_seat_disk "$disk"; fi
done

caddy_up


# ---------------------------------------------------------------------------------------------
# Checks, bounded by CT_SEAT_WAIT: Caddy's /health, and for every seat its four routes through
# Caddy on the seat's HTTPS origin with its token (anything but a refusal or a proxy error: the
# apps decide what / returns; an app that does not answer is Caddy's 502, so this checks the
# seat's ports too). Only a handshake with the seat's certificate gets an answer, so a seat is
# not ready before its certificate is (the check talks to itself: --insecure, no CA list).
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" || true; }
seat_answers() {
  local i=$1 seat token code kind
  seat=$(seat_of "$i")
  token=${token_of[$seat]}
  for kind in terminal/ files/ browser/ ''; do
    code=$(http_code --insecure -K <(printf 'header = "Cookie: ct_seat_%s=%s"\n' "$seat" "$token") \
      --connect-to "::${CT_HTTP_BIND:-127.0.0.1}:" \
      "https://$CT_PUBLIC_HOST:$(seat_https_port "$i")/vm/$seat/$kind")
    case $code in 000 | 403 | 404 | 502 | 503 | 504) return 1 ;; esac
  done
}

deadline=$((SECONDS + CT_SEAT_WAIT))
while :; do
  health=$(curl -fsS --max-time 5 "http://127.0.0.1:$CT_HTTP_PORT/health" 2>/dev/null || true)
  seats_ready=0
  pending=()
  for ((i = 1; i <= seat_count; i++)); do
    if seat_answers "$i"; then
      seats_ready=$((seats_ready + 1))
    else
      pending+=("$(seat_of "$i")")
    fi
  done
  if [[ $health == OK ]] && ((${#pending[@]} == 0)); then break; fi
  if ((SECONDS >= deadline)); then
    [[ $health == OK ]] || log "caddy does not answer /health on port $CT_HTTP_PORT"
    if ((${#pending[@]} > 0)); then
      log "seats not answering: ${pending[*]}"
      # What the first such seat's containers said last: usually why.
      for name in "${CT_NAME_PREFIX}seat-${pending[0]}" "${CT_NAME_PREFIX}seat-${pending[0]}-browser"; do
        log "last output of $name:"
        docker logs --tail 5 "$name" 2>&1 | sed 's/^/  /' || true
      done
      # A seat answers only once its certificate is there: what Caddy said of getting it.
      log "what $caddy_name said of certificates:"
      docker logs "$caddy_name" 2>&1 | grep -iE 'obtain|acme|certificate' | grep -iE 'error|fail' |
        tail -n 3 | sed 's/^/  /' || true
    fi
    fail "VM not healthy within ${CT_SEAT_WAIT}s ($seats_ready/$seat_count seats ready)"
  fi
  sleep 1
done
log "all $seats_ready seats answer, caddy is healthy"

# What the control plane waits for before it hands a freed seat out again: the generations this
# VM applied, "SEAT:GENERATION …", in the ready report.
applied_resets() {
  local i seat gen list=()
  for ((i = 1; i <= seat_count; i++)); do
    seat=$(seat_of "$i")
    read -r gen _ <<<"$(applied_reset "$seat")"
    if ((gen > 0)); then list+=("$seat:$gen"); fi
  done
  printf '%s' "${list[*]}"
}
publish_state ready || fail "could not publish vm.ready"
# The watcher runs this script again only when what it applied here changes.
printf '%s\n%s\n' "$seat_tokens" "$seat_resets" >"$CT_STATE_DIR/applied-seats"

# The watcher, once per boot (the instance's processes end with it), unless this run is its own.
watcher_text=$(optional_attribute clarateach-watcher)
if [[ -z ${CT_WATCHING:-} && -n $watcher_text ]]; then
  watcher=$CT_STATE_DIR/clarateach-watcher.sh
  printf '%s\n' "$watcher_text" >"$watcher"
  old=$(cat "$CT_STATE_DIR/watcher.pid" 2>/dev/null || true)
  if [[ $old =~ ^[0-9]+$ ]] && grep -qs clarateach-watcher "/proc/$old/cmdline"; then kill "$old" || true; fi
  CT_STARTUP_SELF=$(readlink -f "${BASH_SOURCE[0]}") nohup bash "$watcher" </dev/null >/dev/null 2>&1 &
  echo $! >"$CT_STATE_DIR/watcher.pid"
  log "watcher started"
fi
log "done"
