#!/usr/bin/env bash
# Builds the images a VM runs, as the seed's push-image.sh did.
#
#   images/build.sh [--tag TAG] [REGISTRY]
#
# Without REGISTRY: builds, for the local stack, clarateach-local/workspace, …/caddy (Debian's
# Caddy) and …/browser (a stand-in for Neko, whose images cannot be fetched here), tagged TAG
# (default `latest`) and `latest`.
# With REGISTRY (an Artifact Registry path such as REGION-docker.pkg.dev/PROJECT/clarateach):
# builds the workspace image, pushes it as REGISTRY/workspace:TAG, and mirrors the pinned official
# Caddy and Neko images to REGISTRY/caddy and REGISTRY/neko-firefox (run `gcloud auth
# configure-docker REGION-docker.pkg.dev` first).
#
# Every image is FROM $BASE, by default the official debian:bookworm-slim. When that cannot be
# pulled (no Docker Hub), a base is made from Debian's packages with debootstrap, from the mirror
# that apt's own sources name, once, as clarateach-local/debian:bookworm.
set -euo pipefail
cd "$(dirname "$0")/.."

CADDY_UPSTREAM=caddy:2.10.2
NEKO_UPSTREAM=ghcr.io/m1k1o/neko/firefox:3.1.5
LOCAL=clarateach-local
DOCKER=${DOCKER:-docker}

tag=latest
registry=''
while (($# > 0)); do
  case $1 in
  --tag)
    tag=${2:?--tag needs a value}
    shift 2
    ;;
  -h | --help)
    sed -n '2,16p' "$0"
    exit 0
    ;;
  -*)
    echo "unknown option $1" >&2
    exit 2
    ;;
  *)
    registry=${1%/}
    shift
    ;;
  esac
done

say() { printf 'images: %s\n' "$*" >&2; }
present() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# The mirror apt uses (deb822 or one-line sources), so debootstrap needs no address of its own.
apt_mirror() {
  local uri
  uri=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '{print $1}' | grep -v -- '-security' | head -n 1 || true)
  if [[ -z $uri ]]; then
    uri=$(awk '$1 == "deb" && $3 !~ /-security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  fi
  printf '%s' "$uri"
}

base_image() {
  local official=debian:bookworm-slim made=$LOCAL/debian:bookworm root mirror
  if present "$official" || "$DOCKER" pull -q "$official" >/dev/null 2>&1; then
    printf '%s' "$official"
    return
  fi
  if ! present "$made"; then
    command -v debootstrap >/dev/null || {
      echo "cannot pull $official and debootstrap is missing (apt-get install -y debootstrap)" >&2
      exit 1
    }
    mirror=$(apt_mirror)
    [[ -n $mirror ]] || {
      echo "cannot find a Debian mirror in apt's sources" >&2
      exit 1
    }
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    say "cannot pull $official: making $made from Debian's packages (about 30 s)"
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
      tail -n 20 "$root.log" >&2
      exit 1
    }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root.log"
    tar -C "$root" -c . | "$DOCKER" import - "$made" >/dev/null
    rm -rf "$root"
    trap - EXIT
  fi
  printf '%s' "$made"
}

build() {
  local name=$1 context=$2
  shift 2
  say "building $name"
  "$DOCKER" build -q --build-arg "BASE=$base" "$@" -t "$name" "$context" >/dev/null
}

base=$(base_image)
say "base image $base"

# The seat server is bundled on the host: npm does not work inside an image build here.
say "bundling the seat server (npm run build:seat)"
npm run --silent build:seat >/dev/null

if [[ -z $registry ]]; then
  build "$LOCAL/workspace:$tag" images/workspace -t "$LOCAL/workspace:latest"
  build "$LOCAL/caddy:$tag" images/caddy -t "$LOCAL/caddy:latest"
  build "$LOCAL/browser:$tag" images/browser-standin -t "$LOCAL/browser:latest"
  say "built $LOCAL/{workspace,caddy,browser}:$tag"
  exit 0
fi

build "$registry/workspace:$tag" images/workspace
"$DOCKER" push -q "$registry/workspace:$tag" >/dev/null
say "pushed $registry/workspace:$tag"
for pair in "$CADDY_UPSTREAM=$registry/caddy:${CADDY_UPSTREAM##*:}" \
  "$NEKO_UPSTREAM=$registry/neko-firefox:${NEKO_UPSTREAM##*:}"; do
  "$DOCKER" pull -q "${pair%%=*}" >/dev/null
  "$DOCKER" tag "${pair%%=*}" "${pair#*=}"
  "$DOCKER" push -q "${pair#*=}" >/dev/null
  say "mirrored ${pair%%=*} to ${pair#*=}"
done
