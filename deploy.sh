#!/usr/bin/env bash
# Stands the whole system up in one Google Cloud project, or takes it down again.
#
#   GCP_PROJECT=my-project PORTAL_SERVICE_ACCOUNT=portal@my-project.iam.gserviceaccount.com \
#   ID_TOKEN_AUDIENCES=123-abc.apps.googleusercontent.com INSTRUCTORS=@school.example \
#   ADMIN_EMAILS=ops@school.example,lead@school.example ./deploy.sh [--dry-run] [--browser-api]
#   GCP_PROJECT=my-project ./deploy.sh destroy [--delete-data] [--dry-run]
#
# Every step looks before it acts: a second run changes nothing that is already right, and updates
# only what differs. --dry-run prints every command in order (as if nothing existed yet) and runs
# none. `destroy` removes everything a deploy made (and the VMs of running classes); the Firestore
# database, its indexes and its rules stay unless --delete-data is given.
#
# Optional: GCP_REGION (us-central1), GCP_ZONE (us-central1-a), GCP_ZONES (GCP_ZONE alone: the
# zones of the region a VM may land in, in order, when one is out of capacity), GCP_REPOSITORY
# (clarateach),
# GCP_USE_SPOT (false), NETWORK (default): the VPC network of the VMs and their firewall rules; it
# must exist. SUBNETWORK: the subnetwork in the zone's region, required for a custom-mode network.
# IAM_RETRY_SECONDS (5), DEPLOY_RETRY_SECONDS (30): pause steps of the bounded retries.
#
# ID_TOKEN_AUDIENCES (required): the portal's OAuth client id (the project id only for Identity
# Platform), never assumed. INSTRUCTORS (required): who may run workshops, emails and @domain
# entries (a Google Workspace domain, by the token's hd claim). ID_TOKEN_ISSUERS: whose sign-in
# tokens are accepted (README; default: Google and this project's Identity Platform).
#
# --browser-api (with CONSOLE_ORIGINS, comma-separated origins): browsers call workshops and join
# directly (IAM lets allUsers invoke them; CORS answers those origins only); the verified ID
# token is then the only gate of the instructor API. Without it, a run takes that access back.
# Its console's join QR code points at JOIN_PAGE_URL (the join function's URL) when set.
# PORTAL_ORIGIN (https://portal.example): the portal, the one other site that may frame a seat.
# SEAT_DOMAIN with SEAT_DNS_ZONE (seats.school.example, a public Cloud DNS zone of this project
# that holds it): each VM is named VM.SEAT_DOMAIN and its seats' certificate is for that name
# (README); the functions may change that one zone's records. Without them, seats use the VM's IP.
#
# Needs: gcloud (authenticated as a project owner, user or service account), curl, node and npm.
# Always configures AUTH_MODE=token: Cloud Run IAM lets the portal in (X-Serverless-Authorization),
# and the instructor is whoever the verified ID token in Authorization names; AUTH_MODE=dev is
# never set.
set -euo pipefail

usage() {
  sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'
  exit "$1"
}
MODE=deploy
DRY_RUN=false
DELETE_DATA=false
BROWSER_API=false
for arg in "$@"; do
  case $arg in
  destroy) MODE=destroy ;;
  --dry-run) DRY_RUN=true ;;
  --delete-data) DELETE_DATA=true ;;
  --browser-api) BROWSER_API=true ;;
  -h | --help) usage 0 ;;
  *) usage 2 >&2 ;;
  esac
done
[[ $DELETE_DATA == false || $MODE == destroy ]] || usage 2 >&2
[[ $BROWSER_API == false || $MODE == deploy ]] || usage 2 >&2
if [[ $BROWSER_API == true ]]; then
  [[ ${CONSOLE_ORIGINS:-} =~ ^https?://[^,[:space:]]+(,https?://[^,[:space:]]+)*$ ]] ||
    { echo "--browser-api needs CONSOLE_ORIGINS: comma-separated origins (https://console.example)" >&2; exit 2; }
else
  CONSOLE_ORIGINS=''
fi

: "${GCP_PROJECT:?set GCP_PROJECT to the project id}"
if [[ $MODE != destroy ]]; then
  : "${PORTAL_SERVICE_ACCOUNT:?set PORTAL_SERVICE_ACCOUNT to the service account the portal calls with}"
  : "${ID_TOKEN_AUDIENCES:?set ID_TOKEN_AUDIENCES to the OAuth client id of the portal (never assumed)}"
  : "${INSTRUCTORS:?set INSTRUCTORS to who may run workshops: emails and @domain entries}"
fi
REGION=${GCP_REGION:-us-central1}
ZONE=${GCP_ZONE:-us-central1-a}
ZONES=${GCP_ZONES:-$ZONE}
REPO=${GCP_REPOSITORY:-clarateach}
REGISTRY=$REGION-docker.pkg.dev/$GCP_PROJECT/$REPO
REPO_PATH=projects/$GCP_PROJECT/locations/$REGION/repositories/$REPO
GCP_USE_SPOT=${GCP_USE_SPOT:-false}
ADMIN_EMAILS=${ADMIN_EMAILS:-}
NETWORK=${NETWORK:-default}
SUBNETWORK=${SUBNETWORK:-}
SEAT_DOMAIN=${SEAT_DOMAIN:-}
SEAT_DNS_ZONE=${SEAT_DNS_ZONE:-}
SEAT_DOMAIN=${SEAT_DOMAIN%.}
if [[ -n $SEAT_DOMAIN || -n $SEAT_DNS_ZONE ]]; then
  [[ $SEAT_DOMAIN =~ ^([a-z0-9-]+\.)+[a-z0-9-]+$ && $SEAT_DNS_ZONE =~ ^[a-z][a-z0-9-]*$ ]] ||
    { echo "SEAT_DOMAIN and SEAT_DNS_ZONE go together: a lowercase DNS name and the Cloud DNS zone that holds it" >&2; exit 2; }
fi
IAM_RETRY_SECONDS=${IAM_RETRY_SECONDS:-5}
DEPLOY_RETRY_SECONDS=${DEPLOY_RETRY_SECONDS:-30}
# Ports the VM startup script (startup/clarateach-startup.sh) really uses: Caddy on CT_HTTP_PORT
# (80: ACME HTTP-01 challenges and redirects only) and, for local seat i = 1..seat-count, the
# seat's HTTPS origin on CT_SEAT_HTTPS_BASE+i (base 8400, SEAT_HTTPS_BASE in shared/core/workshop.ts)
# and Neko's WebRTC mux port CT_MUX_PORT_BASE+i (base 30000). A VM hosts at most
# MAX_SEATS_PER_VM = 20 seats (shared/core/plan.ts), so 8401-8420 (TCP) and 30001-30020 (TCP and
# UDP). Change all these places together.
HTTP_PORT=80
SEAT_HTTPS_BASE=8400
MUX_PORT_BASE=30000
MAX_SEATS_PER_VM=20
SEAT_PORTS=$((SEAT_HTTPS_BASE + 1))-$((SEAT_HTTPS_BASE + MAX_SEATS_PER_VM))
MUX_PORTS=$((MUX_PORT_BASE + 1))-$((MUX_PORT_BASE + MAX_SEATS_PER_VM))
# The pinned upstream images the VMs run, mirrored into the project's repository.
CADDY_UPSTREAM=caddy:2.10.2
NEKO_UPSTREAM=ghcr.io/m1k1o/neko/firefox:3.1.5
FN_SA=clarateach-functions@$GCP_PROJECT.iam.gserviceaccount.com
VM_SA=clarateach-vm@$GCP_PROJECT.iam.gserviceaccount.com
BUILD_SA=clarateach-build@$GCP_PROJECT.iam.gserviceaccount.com
TOPICS=(workshop.started vm.ready workshop.ended workshop.sweep)
DEAD_LETTER=clarateach.dead-letter
DEAD_LETTER_SUB=clarateach.dead-letter.sub
FUNCTIONS=(workshops join onWorkshopStarted onVmReady onWorkshopEnded sweep)
FIREWALL_RULES=(clarateach-http clarateach-webrtc)
SCHEDULER_JOB=clarateach-sweep
SPEC_LABEL=clarateach_spec
RULES_API=https://firebaserules.googleapis.com/v1

cd "$(dirname "$0")"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
exec 3>&1 # commands are printed here, also from inside $(...)

# ---- how commands run ----------------------------------------------------------------------------
# `run g ...` and `ask ... g ...` run gcloud on the project, never prompting.
show() { printf '+%s\n' "$(printf ' %q' "$@")" >&3; }
# A command that changes something: printed, and run unless this is a dry run.
run() {
  [[ $1 != g ]] || set -- gcloud --project="$GCP_PROJECT" --quiet "${@:2}"
  show "$@"
  [[ $DRY_RUN == true ]] || "$@"
}
# A command that only reads: run quietly; a dry run prints it and answers $1 (what a fresh project
# would), with status 1 when that answer is empty ("not there").
ask() {
  local answer=$1
  shift
  [[ $1 != g ]] || set -- gcloud --project="$GCP_PROJECT" --quiet "${@:2}"
  if [[ $DRY_RUN == true ]]; then
    show "$@"
    [[ -n $answer ]] || return 1
    printf '%s\n' "$answer"
    return 0
  fi
  "$@" 2>/dev/null
}
# Whether a resource exists; a dry run assumes a fresh project to deploy, a full one to destroy.
exists() {
  local assumed=''
  [[ $MODE != destroy ]] || assumed=yes
  ask "$assumed" g "$@" --format='value(name)' >/dev/null
}
step() { printf '\n==> %s\n' "$*"; }
die() {
  printf 'deploy.sh: %s\n' "$*" >&2
  exit 1
}
# Runs a command that changes something; while a new project's rights are still propagating
# (Eventarc's service agent, the build account's roles) it fails with one of PROPAGATING and is
# tried again, a bounded number of times. Any other failure fails at once.
PROPAGATING='Eventarc Service Agent|permissions are propagated|missing permission on the build service account|may not exist|iam.serviceAccounts.actAs'
run_propagating() { # WHAT COMMAND...
  local what=$1 attempt
  shift
  for attempt in 1 2 3 4 5; do
    if run "$@" 2>"$WORK/run.err"; then
      cat "$WORK/run.err" >&2
      return 0
    fi
    cat "$WORK/run.err" >&2
    if ((attempt == 5)) || ! grep -qiE "$PROPAGATING" "$WORK/run.err"; then
      return 1
    fi
    echo "  (the project's new rights are not in effect yet, retrying: $what)"
    sleep "$((attempt * DEPLOY_RETRY_SECONDS))"
  done
}

# The first line of a sha256 over the arguments and stdin, short enough for a label value.
fingerprint() { sha256sum | cut -c1-40; }
json_field() { # FIELD: prints FIELD of the JSON object on stdin, or nothing
  node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>{let v;try{v=JSON.parse(s)[process.argv[1]]}catch{}console.log(v??"")})' "$1"
}

# Adds an IAM binding unless the policy has it already. A principal or resource created a moment
# ago may not be visible to IAM yet ("does not exist", "or it may not exist", a PERMISSION_DENIED
# that says rights are still propagating): that is retried a few times; any other error fails.
# KIND is the gcloud command group (`projects`, `pubsub topics`, ...), as one word list.
grant() { # KIND RESOURCE MEMBER ROLE [flags...]
  local kind=$1 resource=$2 member=$3 role=$4 policy attempt out
  shift 4
  # shellcheck disable=SC2086 # KIND is a list of words
  policy=$(ask '' g $kind get-iam-policy "$resource" "$@" --format=json) || policy='{}'
  # shellcheck disable=SC2016 # JavaScript
  if node -e '
    const [m, r] = process.argv.slice(1);
    const p = JSON.parse(require("fs").readFileSync(0, "utf8") || "{}");
    process.exit((p.bindings ?? []).some((b) => b.role === r && !b.condition && (b.members ?? []).includes(m)) ? 0 : 1);
  ' "$member" "$role" <<<"$policy"; then
    return 0
  fi
  local extra=()
  [[ $kind != projects ]] || extra=(--condition=None)
  for attempt in 1 2 3 4 5; do
    # shellcheck disable=SC2086
    if out=$(run g $kind add-iam-policy-binding "$resource" "$@" --member="$member" \
      --role="$role" "${extra[@]}" 2>&1 >/dev/null); then
      return 0
    fi
    if ((attempt == 5)) || ! grep -qiE 'does not exist|NOT_FOUND|may not exist|propagat' <<<"$out"; then
      printf '%s\n' "$out" >&2
      return 1
    fi
    echo "  (principal not visible yet, retrying: gcloud $kind add-iam-policy-binding $resource)"
    sleep "$((attempt * IAM_RETRY_SECONDS))"
  done
}
revoke() { # KIND RESOURCE MEMBER ROLE [flags...]: removes a binding when it is there
  local kind=$1 resource=$2 member=$3 role=$4 policy
  shift 4
  # shellcheck disable=SC2086
  policy=$(ask "{\"bindings\":[{\"role\":\"$role\",\"members\":[\"$member\"]}]}" \
    g $kind get-iam-policy "$resource" "$@" --format=json) || return 0
  # shellcheck disable=SC2016
  node -e '
    const [m, r] = process.argv.slice(1);
    const p = JSON.parse(require("fs").readFileSync(0, "utf8") || "{}");
    process.exit((p.bindings ?? []).some((b) => b.role === r && (b.members ?? []).includes(m)) ? 0 : 1);
  ' "$member" "$role" <<<"$policy" || return 0
  local extra=()
  [[ $kind != projects ]] || extra=(--condition=None)
  # shellcheck disable=SC2086
  run g $kind remove-iam-policy-binding "$resource" "$@" --member="$member" --role="$role" \
    "${extra[@]}" >/dev/null
}

# compute.viewer: `start` reads the region's quotas (regions.get) before it inserts a VM.
FN_ROLES=(roles/datastore.user roles/pubsub.publisher roles/compute.instanceAdmin.v1
  roles/compute.viewer)
VM_ROLES=(roles/logging.logWriter)
# What a build needs, per "Configure the build service account" (Cloud Run): Cloud Run Builder on
# the project (logs, staged sources, build images); the mirrored images are pushed to the one
# image repository (artifactregistry.writer, granted on that repository below).
BUILD_ROLES=(roles/run.builder)
project_roles() { # grant|revoke: every account's project roles
  local role
  for role in "${FN_ROLES[@]}"; do "$1" projects "$GCP_PROJECT" "serviceAccount:$FN_SA" "$role"; done
  for role in "${VM_ROLES[@]}"; do "$1" projects "$GCP_PROJECT" "serviceAccount:$VM_SA" "$role"; done
  for role in "${BUILD_ROLES[@]}"; do
    "$1" projects "$GCP_PROJECT" "serviceAccount:$BUILD_SA" "$role"
  done
}

# ---- destroy -------------------------------------------------------------------------------------
destroy() {
  step "Scheduler job, functions (their Eventarc triggers and subscriptions go with them)"
  ! exists scheduler jobs describe "$SCHEDULER_JOB" --location="$REGION" ||
    run g scheduler jobs delete "$SCHEDULER_JOB" --location="$REGION"
  local fn
  for fn in "${FUNCTIONS[@]}"; do
    ! exists functions describe "$fn" --region="$REGION" ||
      run g functions delete "$fn" --region="$REGION"
  done

  step "VMs of classes still running"
  local vm zone
  while read -r vm zone; do
    [[ -n $vm ]] || continue
    run g compute instances delete "$vm" --zone="$zone"
  done < <(ask '' g compute instances list --filter='labels.app=clarateach' \
    --format='value(name,zone.basename())' || true)

  if [[ -n $SEAT_DOMAIN ]]; then
    step "The VMs' names under $SEAT_DOMAIN"
    local name
    while read -r name; do
      [[ -n $name ]] || continue
      run g dns record-sets delete "$name" --type=A --zone="$SEAT_DNS_ZONE"
    done < <(ask '' g dns record-sets list --zone="$SEAT_DNS_ZONE" --filter='type=A' \
      --format='value(name)' | grep -E "^ct-[a-z2-7]+-[0-9]+\.${SEAT_DOMAIN//./\\.}\.$" || true)
    ! exists dns managed-zones describe "$SEAT_DNS_ZONE" || zone_binding remove
  fi

  step "Topics, the dead-letter subscription, firewall rules"
  ! exists pubsub subscriptions describe "$DEAD_LETTER_SUB" ||
    run g pubsub subscriptions delete "$DEAD_LETTER_SUB"
  local topic rule
  for topic in "${TOPICS[@]}" "$DEAD_LETTER"; do
    ! exists pubsub topics describe "$topic" || run g pubsub topics delete "$topic"
  done
  for rule in "${FIREWALL_RULES[@]}"; do
    ! exists compute firewall-rules describe "$rule" || run g compute firewall-rules delete "$rule"
  done

  step "Service accounts, their project roles, the image repository"
  project_roles revoke
  local sa
  for sa in "$FN_SA" "$VM_SA" "$BUILD_SA"; do
    ! exists iam service-accounts describe "$sa" || run g iam service-accounts delete "$sa"
  done
  ! exists artifacts repositories describe "$REPO" --location="$REGION" ||
    run g artifacts repositories delete "$REPO" --location="$REGION"

  if [[ $DELETE_DATA == true ]]; then
    step "Firestore database (--delete-data): every workshop record, with its indexes"
    ! exists firestore databases describe --database='(default)' ||
      run g firestore databases delete --database='(default)'
  else
    step "Kept: the Firestore database, its indexes and rules (--delete-data removes them)"
  fi
}

# ---- deploy --------------------------------------------------------------------------------------
# The effective organization policy on CONSTRAINT, summed up: `deny` (no value allowed), `values
# A !B ...` (allowed A, denied B), or nothing (all allowed, no policy, or unreadable).
org_policy() { # CONSTRAINT
  local policy
  policy=$(ask '{}' g org-policies describe "$1" --effective --format=json) || {
    echo "  (could not read the organization policy $1; going on)" >&2
    return 0
  }
  # shellcheck disable=SC2016 # JavaScript
  node -e '
    const rules = JSON.parse(require("fs").readFileSync(0, "utf8") || "{}").spec?.rules ?? [];
    if (rules.some((r) => r.denyAll)) console.log("deny");
    else if (!rules.some((r) => r.allowAll)) {
      const allowed = rules.flatMap((r) => r.values?.allowedValues ?? []);
      const denied = rules.flatMap((r) => r.values?.deniedValues ?? []).map((v) => `!${v}`);
      if (allowed.length + denied.length > 0) console.log(["values", ...allowed, ...denied].join(" "));
    }' <<<"$policy"
}

# Before anything is created: the organization policies that would break a class. VMs need an
# external address (learners reach Caddy on it), the region must be an allowed location, and the
# portal account must be a member IAM may grant to.
preflight() {
  step "Organization policies"
  local ip locations sharing
  ip=$(org_policy compute.vmExternalIpAccess)
  [[ -z $ip ]] || die "the organization policy constraints/compute.vmExternalIpAccess (${ip}) keeps the workshop VMs from having external IP addresses, which learners connect to. Fix: have an organization policy administrator allow them for this project, e.g. gcloud org-policies reset compute.vmExternalIpAccess --project=$GCP_PROJECT"
  locations=$(org_policy gcp.resourceLocations)
  [[ $locations != deny ]] || die "the organization policy constraints/gcp.resourceLocations allows no location. Fix: have it allow $REGION (e.g. in:$REGION-locations)"
  if [[ $locations == values* ]]; then
    [[ " $locations " != *" !in:$REGION-locations "* && " $locations " != *" !$REGION "* ]] ||
      die "the organization policy constraints/gcp.resourceLocations denies $REGION. Fix: set GCP_REGION to an allowed region, or have the policy allow $REGION"
    [[ " $locations " == *" in:$REGION-locations "* || " $locations " == *" $REGION "* ]] ||
      echo "  warning: constraints/gcp.resourceLocations allows only: ${locations#values }. Check that $REGION is among them (or set GCP_REGION)" >&2
  fi
  sharing=$(org_policy iam.allowedPolicyMemberDomains)
  [[ $sharing != deny ]] || die "the organization policy constraints/iam.allowedPolicyMemberDomains allows no member. Fix: have it allow the organization of $PORTAL_SERVICE_ACCOUNT"
  [[ $sharing != values* ]] ||
    echo "  warning: constraints/iam.allowedPolicyMemberDomains allows only members of: ${sharing#values }. The portal account $PORTAL_SERVICE_ACCOUNT must belong to one of them, or granting it run.invoker fails" >&2
}

deploy() {
  step "APIs"
  local apis=(compute.googleapis.com cloudfunctions.googleapis.com run.googleapis.com
    eventarc.googleapis.com pubsub.googleapis.com firestore.googleapis.com
    firebaserules.googleapis.com cloudscheduler.googleapis.com artifactregistry.googleapis.com
    cloudbuild.googleapis.com iam.googleapis.com orgpolicy.googleapis.com) enabled missing=() api
  [[ -z $SEAT_DOMAIN ]] || apis+=(dns.googleapis.com)
  enabled=$(ask '' g services list --enabled --format='value(config.name)' || true)
  for api in "${apis[@]}"; do
    grep -qxF "$api" <<<"$enabled" || missing+=("$api")
  done
  ((${#missing[@]} == 0)) || run g services enable "${missing[@]}"
  preflight
  # Pub/Sub's service agent may not exist yet in a new project; this creates it (or names it).
  local pubsub_agent
  pubsub_agent=$(ask '<pubsub-service-agent>' g beta services identity create \
    --service=pubsub.googleapis.com --format='value(email)') ||
    die "could not create the Pub/Sub service identity"
  [[ -n $pubsub_agent ]] || die "the Pub/Sub service identity has no email"

  firestore_step
  step "Artifact Registry repository $REPO, service accounts"
  exists artifacts repositories describe "$REPO" --location="$REGION" ||
    run g artifacts repositories create "$REPO" --repository-format=docker \
      --location="$REGION" --description="ClaraTeach workshop images"
  exists iam service-accounts describe "$FN_SA" ||
    run g iam service-accounts create clarateach-functions --display-name="ClaraTeach functions"
  exists iam service-accounts describe "$VM_SA" ||
    run g iam service-accounts create clarateach-vm --display-name="ClaraTeach workshop VMs"
  exists iam service-accounts describe "$BUILD_SA" ||
    run g iam service-accounts create clarateach-build --display-name="ClaraTeach builds"
  project_roles grant
  grant "artifacts repositories" "$REPO_PATH" "serviceAccount:$BUILD_SA" \
    roles/artifactregistry.writer
  # The VMs pull images from this one repository, nothing else.
  grant "artifacts repositories" "$REPO_PATH" "serviceAccount:$VM_SA" \
    roles/artifactregistry.reader
  # The functions create VMs that run as the VM account.
  grant "iam service-accounts" "$VM_SA" "serviceAccount:$FN_SA" roles/iam.serviceAccountUser
  # Eventarc pushes to the event functions with an identity token of the functions' account, which
  # Pub/Sub mints (only projects created before April 2021 lack this grant by default).
  grant "iam service-accounts" "$FN_SA" "serviceAccount:$pubsub_agent" \
    roles/iam.serviceAccountTokenCreator

  images_step
  topics_step "$pubsub_agent"
  network_step
  [[ -z $SEAT_DOMAIN ]] || seat_domain_step
  functions_step "$pubsub_agent"

  step "Cloud Scheduler: the sweep every minute"
  local job
  if job=$(ask '' g scheduler jobs describe "$SCHEDULER_JOB" --location="$REGION" \
    --format='value(schedule,pubsubTarget.topicName.basename(),state)'); then
    if [[ $job != $'* * * * *\tworkshop.sweep\t'* ]]; then
      run g scheduler jobs update pubsub "$SCHEDULER_JOB" --location="$REGION" \
        --schedule='* * * * *' --topic=workshop.sweep --message-body='{}'
    fi
    [[ $job == *$'\tENABLED' ]] ||
      run g scheduler jobs resume "$SCHEDULER_JOB" --location="$REGION"
  else
    run g scheduler jobs create pubsub "$SCHEDULER_JOB" --location="$REGION" \
      --schedule='* * * * *' --topic=workshop.sweep --message-body='{}'
  fi

  step "Done (check it with: npm run doctor -- --project $GCP_PROJECT)"
  local fn
  for fn in workshops join; do
    echo "$fn: $(ask '<url>' g functions describe "$fn" --region="$REGION" \
      --format='value(serviceConfig.uri)')"
  done
}

firestore_step() {
  step "Firestore, its indexes and its rules"
  exists firestore databases describe --database='(default)' ||
    run g firestore databases create --location="$REGION" --type=firestore-native
  # A new database may take a moment to answer; indexes created before it does fail.
  local attempt
  if [[ $DRY_RUN != true ]]; then
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
      exists firestore databases describe --database='(default)' && break
      ((attempt < 10)) || die "the Firestore database (default) did not appear"
      sleep "$IAM_RETRY_SECONDS"
    done
  fi
  # Indexes: create those the database lacks (listed as JSON; `__name__` is implied).
  local existing missing
  existing=$(ask '' g firestore indexes composite list --format=json) || existing='[]'
  # shellcheck disable=SC2016 # JavaScript
  missing=$(node -e '
    const key = (group, scope, fields) =>
      [group, scope.toUpperCase(), ...fields.filter((f) => f.fieldPath !== "__name__")
        .map((f) => `${f.fieldPath}:${(f.order ?? f.arrayConfig).toUpperCase()}`)].join(" ");
    const have = new Set(JSON.parse(require("fs").readFileSync(0, "utf8") || "[]").map((i) =>
      key(i.name.split("/").at(-3), i.queryScope, i.fields)));
    for (const i of require("./firestore.indexes.json").indexes) {
      if (have.has(key(i.collectionGroup, i.queryScope, i.fields))) continue;
      console.log([i.collectionGroup, i.queryScope.toLowerCase(), ...i.fields.map((f) =>
        `--field-config=field-path=${f.fieldPath},order=${f.order.toLowerCase()}`)].join(" "));
    }' <<<"$existing")
  # One at a time, each waited for: on a new database, back-to-back creates can meet 409 contention
  # ("too much contention", "underlying data changed"), which is retried a few times.
  local group scope fields out
  while read -r group scope fields; do
    [[ -n $group ]] || continue
    for attempt in 1 2 3 4 5; do
      # shellcheck disable=SC2086 # one --field-config per word
      if out=$(run g firestore indexes composite create --collection-group="$group" \
        --query-scope="$scope" $fields 2>&1 >/dev/null); then
        break
      fi
      if ((attempt == 5)) ||
        ! grep -qiE 'contention|underlying data changed|ABORTED|409' <<<"$out"; then
        printf '%s\n' "$out" >&2
        return 1
      fi
      echo "  (index creation met contention, retrying: $group)"
      sleep "$((attempt * IAM_RETRY_SECONDS))"
    done
  done <<<"$missing"
  # Documents that delete themselves at `expiresAt`: join rate-limit counters once their window
  # is over, and recorded VM boots (what a scheduled class's lead is learned from) once old.
  for group in rateLimits vmBoots; do
    ask '' g firestore fields ttls list --collection-group="$group" \
      --format='value(name.basename())' | grep -qx expiresAt ||
      run g firestore fields ttls update expiresAt --collection-group="$group" --enable-ttl --async
  done

  # Rules, through the Firebase Rules API. It refuses end-user credentials without a quota
  # project, so every call names one (a service account's token works with it too). The token
  # goes in a header file, never on a command line.
  local token
  token=$(ask '<access-token>' gcloud auth print-access-token) || die "no gcloud credentials"
  printf 'Authorization: Bearer %s\n' "$token" >"$WORK/auth"
  local rules=(curl -fsS -H @"$WORK/auth" -H "x-goog-user-project: $GCP_PROJECT"
    -H 'Content-Type: application/json')
  local api=$RULES_API/projects/$GCP_PROJECT current='' ruleset
  current=$(ask '' "${rules[@]}" "$api/releases/cloud.firestore" | json_field rulesetName) || current=''
  # shellcheck disable=SC2016 # JavaScript
  if [[ -n $current ]] && ask '' "${rules[@]}" "$RULES_API/$current" | node -e '
    const r = JSON.parse(require("fs").readFileSync(0, "utf8") || "{}");
    const local = require("fs").readFileSync("firestore.rules", "utf8");
    process.exit(r.source?.files?.[0]?.content === local ? 0 : 1);'; then
    return 0
  fi
  node -e 'console.log(JSON.stringify({source:{files:[{name:"firestore.rules",content:require("fs").readFileSync("firestore.rules","utf8")}]}}))' >"$WORK/ruleset.json"
  ruleset=$(run "${rules[@]}" -X POST --data @"$WORK/ruleset.json" "$api/rulesets" | json_field name)
  [[ $DRY_RUN == true || -n $ruleset ]] || die "the Rules API returned no ruleset name"
  local release="{\"name\":\"projects/$GCP_PROJECT/releases/cloud.firestore\",\"rulesetName\":\"${ruleset:-<ruleset>}\"}"
  if [[ -n $current ]]; then
    run "${rules[@]}" -X PATCH --data "{\"release\":$release}" "$api/releases/cloud.firestore" >/dev/null
  else
    run "${rules[@]}" -X POST --data "$release" "$api/releases" >/dev/null
  fi
}

# The workspace image is built from images/workspace, tagged with a hash of its sources, so an
# unchanged image is not built again; Caddy and Neko are mirrored at their pinned versions. One
# Cloud Build, as the build account, does whatever is missing. The functions get digests.
images_step() {
  step "Images in $REGISTRY"
  [[ -f images/workspace/Dockerfile ]] || die "images/workspace/Dockerfile is missing"
  local tag caddy_tag=${CADDY_UPSTREAM##*:} neko_tag=${NEKO_UPSTREAM##*:} steps=() pushes=()
  tag=src-$( (
    find images/workspace -path images/workspace/dist -prune -o -type f -print | LC_ALL=C sort |
      xargs sha256sum
    sha256sum package-lock.json
  ) | fingerprint | cut -c1-16)
  if ! exists artifacts docker images describe "$REGISTRY/workspace:$tag"; then
    # npm does not work inside image builds: the seat's Node code is bundled here first.
    run npm ci --no-audit --no-fund
    run npm run build:seat
    steps+=("{\"name\":\"gcr.io/cloud-builders/docker\",\"args\":[\"build\",\"-t\",\"$REGISTRY/workspace:$tag\",\".\"]}")
    pushes+=("\"$REGISTRY/workspace:$tag\"")
  fi
  local name upstream mirror
  for name in caddy neko; do
    upstream=$CADDY_UPSTREAM mirror=$REGISTRY/caddy:$caddy_tag
    [[ $name == caddy ]] || upstream=$NEKO_UPSTREAM mirror=$REGISTRY/neko:$neko_tag
    exists artifacts docker images describe "$mirror" && continue
    steps+=("{\"name\":\"gcr.io/cloud-builders/docker\",\"args\":[\"pull\",\"$upstream\"]}")
    steps+=("{\"name\":\"gcr.io/cloud-builders/docker\",\"args\":[\"tag\",\"$upstream\",\"$mirror\"]}")
    pushes+=("\"$mirror\"")
  done
  if ((${#steps[@]} > 0)); then
    local IFS=,
    printf '{"steps":[%s],"images":[%s],"serviceAccount":"projects/%s/serviceAccounts/%s","options":{"logging":"CLOUD_LOGGING_ONLY"}}\n' \
      "${steps[*]}" "${pushes[*]}" "$GCP_PROJECT" "$BUILD_SA" >"$WORK/cloudbuild.json"
    unset IFS
    printf '  build config: %s\n' "$(cat "$WORK/cloudbuild.json")"
    if [[ ${steps[0]} == *'"build"'* ]]; then
      run_propagating 'builds submit' g builds submit images/workspace \
        --config="$WORK/cloudbuild.json"
    else
      run_propagating 'builds submit' g builds submit --no-source --config="$WORK/cloudbuild.json"
    fi
  fi
  digest() { # IMAGE:TAG: prints IMAGE@sha256:...
    local d
    d=$(ask 'sha256:<digest>' g artifacts docker images describe "$1" \
      --format='value(image_summary.digest)') || d=''
    [[ $d == sha256:* ]] || die "no digest for $1"
    printf '%s@%s' "${1%:*}" "$d"
  }
  WORKSPACE_IMAGE=$(digest "$REGISTRY/workspace:$tag")
  CADDY_IMAGE=$(digest "$REGISTRY/caddy:$caddy_tag")
  NEKO_IMAGE=$(digest "$REGISTRY/neko:$neko_tag")
}

topics_step() { # PUBSUB_AGENT
  step "Topics (a VM may publish to vm.ready only) and the dead-letter topic's subscription"
  local topic
  for topic in "${TOPICS[@]}" "$DEAD_LETTER"; do
    exists pubsub topics describe "$topic" || run g pubsub topics create "$topic"
  done
  grant "pubsub topics" vm.ready "serviceAccount:$VM_SA" roles/pubsub.publisher
  # Pub/Sub itself forwards poison messages: its service agent publishes to the dead-letter topic.
  grant "pubsub topics" "$DEAD_LETTER" "serviceAccount:$1" roles/pubsub.publisher
  # Messages published to a topic without subscriptions are lost: keep them a week for inspection.
  local settings=(--message-retention-duration=7d --expiration-period=never) spec current
  spec=$(printf '%s\n' "${settings[@]}" | fingerprint)
  if current=$(ask '' g pubsub subscriptions describe "$DEAD_LETTER_SUB" \
    --format="value(labels.$SPEC_LABEL)"); then
    [[ $current == "$spec" ]] ||
      run g pubsub subscriptions update "$DEAD_LETTER_SUB" "${settings[@]}" \
        --update-labels="$SPEC_LABEL=$spec" >/dev/null
  else
    run g pubsub subscriptions create "$DEAD_LETTER_SUB" --topic="$DEAD_LETTER" "${settings[@]}" \
      --labels="$SPEC_LABEL=$spec"
  fi
}

network_step() {
  step "Network $NETWORK: Caddy and each seat's WebRTC mux port, for the workshop VMs only"
  local auto
  auto=$(ask 'True' g compute networks describe "$NETWORK" \
    --format='value(autoCreateSubnetworks)') ||
    die "VPC network \"$NETWORK\" does not exist in $GCP_PROJECT: create it or set NETWORK"
  if [[ -n $SUBNETWORK ]]; then
    exists compute networks subnets describe "$SUBNETWORK" --region="${ZONE%-*}" ||
      die "subnetwork \"$SUBNETWORK\" does not exist in ${ZONE%-*}: create it or unset SUBNETWORK"
  elif [[ $auto == False ]]; then
    die "network \"$NETWORK\" is custom-mode: set SUBNETWORK to a subnetwork in ${ZONE%-*}"
  fi
  firewall_rule clarateach-http "tcp:$HTTP_PORT,tcp:$SEAT_PORTS"
  firewall_rule clarateach-webrtc "tcp:$MUX_PORTS,udp:$MUX_PORTS"
}

# A firewall rule carries the fingerprint of its settings in its description: equal means right.
firewall_rule() { # NAME ALLOW
  local rule=(--allow="$2" --target-service-accounts="$VM_SA" --source-ranges=0.0.0.0/0) current
  local spec
  spec=$(printf '%s\n' "${rule[@]}" | fingerprint)
  local description="ClaraTeach workshop VMs (spec $spec)"
  if current=$(ask '' g compute firewall-rules describe "$1" \
    --format='value(network.basename(),description)'); then
    # A rule's network cannot be changed in place.
    [[ ${current%%$'\t'*} == "$NETWORK" ]] ||
      die "firewall rule $1 is on network \"${current%%$'\t'*}\", not \"$NETWORK\": delete it, run again"
    [[ ${current#*$'\t'} == "$description" ]] ||
      run g compute firewall-rules update "$1" "${rule[@]}" --description="$description"
  else
    run g compute firewall-rules create "$1" --network="$NETWORK" --direction=INGRESS \
      "${rule[@]}" --description="$description"
  fi
}

# The operator's zone must hold SEAT_DOMAIN and be public (Let's Encrypt resolves the VMs' names
# through it); the functions' account gets DNS Administrator on that zone alone, not the project.
seat_domain_step() {
  step "Cloud DNS zone $SEAT_DNS_ZONE for $SEAT_DOMAIN"
  local zone dns_name visibility
  zone=$(ask "$SEAT_DOMAIN. public" g dns managed-zones describe "$SEAT_DNS_ZONE" \
    --format='value(dnsName,visibility)') ||
    die "the Cloud DNS zone $SEAT_DNS_ZONE does not exist in $GCP_PROJECT. Fix: create it (gcloud dns managed-zones create) and delegate $SEAT_DOMAIN to its name servers"
  read -r dns_name visibility <<<"$zone"
  [[ $visibility == public ]] || die "the Cloud DNS zone $SEAT_DNS_ZONE is $visibility: the seats' names must be public"
  [[ $SEAT_DOMAIN. == "$dns_name" || $SEAT_DOMAIN. == *".$dns_name" ]] ||
    die "SEAT_DOMAIN $SEAT_DOMAIN is not inside the zone $SEAT_DNS_ZONE ($dns_name)"
  zone_binding add
}

# gcloud has no add-iam-policy-binding for DNS zones: read the zone's policy, add (or remove) the
# functions' DNS Administrator binding, and write it back, only when that changes it.
zone_binding() { # add|remove
  local policy updated file
  policy=$(ask '{}' g dns managed-zones get-iam-policy "$SEAT_DNS_ZONE" --format=json) || policy='{}'
  # shellcheck disable=SC2016 # JavaScript
  updated=$(node -e '
    const [op, m, r] = process.argv.slice(1);
    const p = JSON.parse(require("fs").readFileSync(0, "utf8") || "{}");
    const plain = (p.bindings ?? []).filter((b) => b.role === r && !b.condition);
    const has = plain.some((b) => (b.members ?? []).includes(m));
    if (has === (op === "add")) process.exit(3);
    if (op === "add") p.bindings = [...(p.bindings ?? []), { role: r, members: [m] }];
    else for (const b of plain) b.members = b.members.filter((x) => x !== m);
    p.bindings = p.bindings.filter((b) => (b.members ?? []).length > 0);
    process.stdout.write(JSON.stringify(p));
  ' "$1" "serviceAccount:$FN_SA" roles/dns.admin <<<"$policy") || {
    (($? == 3)) && return 0
    die "could not read the IAM policy of the zone $SEAT_DNS_ZONE"
  }
  file=$(mktemp)
  printf '%s\n' "$updated" >"$file"
  run g dns managed-zones set-iam-policy "$SEAT_DNS_ZONE" "$file" >/dev/null
  rm -f "$file"
}

functions_step() { # PUBSUB_AGENT
  step "Functions"
  local env_vars=(
    "GCP_PROJECT=$GCP_PROJECT" "GCP_ZONE=$ZONE" "GCP_ZONES=$ZONES" "GCP_REGISTRY=$REGISTRY"
    "GCP_USE_SPOT=$GCP_USE_SPOT" "VM_SERVICE_ACCOUNT=$VM_SA" "VM_NETWORK=$NETWORK"
    "VM_SUBNETWORK=$SUBNETWORK"
    "WORKSPACE_IMAGE=$WORKSPACE_IMAGE" "NEKO_IMAGE=$NEKO_IMAGE" "CADDY_IMAGE=$CADDY_IMAGE"
    "AUTH_MODE=token" "ADMIN_EMAILS=$ADMIN_EMAILS"
    "ID_TOKEN_ISSUERS=${ID_TOKEN_ISSUERS:-}" "ID_TOKEN_AUDIENCES=$ID_TOKEN_AUDIENCES"
    "INSTRUCTORS=$INSTRUCTORS"
    "CONSOLE_ORIGINS=$CONSOLE_ORIGINS" "JOIN_PAGE_URL=${JOIN_PAGE_URL:-}"
    "PORTAL_ORIGIN=${PORTAL_ORIGIN:-}"
    "SEAT_DOMAIN=$SEAT_DOMAIN" "SEAT_DNS_ZONE=$SEAT_DNS_ZONE"
  ) pair env_flag
  # One --set-env-vars (gcloud accepts only one of the env-var flags, and it replaces what was set
  # by hand), with `|` as the delimiter (`gcloud topic escaping`) so that values may hold commas.
  for pair in "${env_vars[@]}"; do
    [[ $pair != *'|'* ]] || die "environment value must not contain '|': $pair"
  done
  env_flag=$(
    IFS='|'
    printf '%s' "--set-env-vars=^|^${env_vars[*]}"
  )
  # What goes into a build: a change here redeploys every function.
  SOURCE_HASH=$(find functions shared startup web package.json package-lock.json tsconfig.json \
    tsconfig.build.json .gcloudignore -type f | LC_ALL=C sort | xargs sha256sum | fingerprint)
  COMMON=(--gen2 --runtime=nodejs24 --region="$REGION" --source=. --service-account="$FN_SA"
    --build-service-account="projects/$GCP_PROJECT/serviceAccounts/$BUILD_SA"
    --docker-repository="$REPO_PATH" --memory=512Mi "$env_flag")
  local fn
  for fn in workshops join; do
    # A class joins at once: 30 learners at 9:00 are 30 requests in the same second. One request
    # per instance (gen2's default) starts 30 instances, each cold; a whole vCPU serving 80 at once
    # (they wait on Firestore, not the CPU) answers them from one or two. Above 1 needs --cpu=1.
    deploy_fn "$fn" "$PORTAL_SERVICE_ACCOUNT" --trigger-http --no-allow-unauthenticated \
      --timeout=60s --cpu=1 --concurrency=80
    # --browser-api: anyone may reach the function; the ID token still gates every instructor call.
    if [[ $BROWSER_API == true ]]; then
      grant "run services" "$DEPLOYED_SERVICE" allUsers roles/run.invoker --region="$REGION"
    elif [[ $DRY_RUN == false ]]; then # a dry run shows a first deploy: nothing to take back
      revoke "run services" "$DEPLOYED_SERVICE" allUsers roles/run.invoker --region="$REGION"
    fi
  done
  deploy_event onWorkshopStarted workshop.started 540s --retry "$1"
  deploy_event onVmReady vm.ready 60s --retry "$1"
  deploy_event onWorkshopEnded workshop.ended 540s --retry "$1"
  # The sweep is not retried (the next minute's tick is its retry), so it needs no dead-letter
  # topic. It may wait for VM deletions: the longest timeout an event function may have.
  deploy_event sweep workshop.sweep 540s --no-retry "$1"
}

# Deploys a function unless it is ACTIVE and its label says it runs this very source and these very
# flags (a failed deploy may leave a FAILED function that keeps its label: that one is deployed
# again); retries while a new project's rights propagate; then lets only the given account invoke
# the function's Cloud Run service, whose name it leaves in DEPLOYED_SERVICE.
deploy_fn() { # NAME INVOKER FLAGS...
  local name=$1 invoker=$2 spec current service
  local args=(functions deploy "$name" "${COMMON[@]}" --entry-point="$name" "${@:3}")
  spec=$(printf '%s\n' "${args[@]}" "$SOURCE_HASH" | fingerprint)
  current=$(ask '' g functions describe "$name" --region="$REGION" \
    --format="value(state,labels.$SPEC_LABEL)") || current=''
  if [[ $current != "ACTIVE"$'\t'"$spec" ]]; then
    run_propagating "functions deploy $name" g "${args[@]}" --update-labels="$SPEC_LABEL=$spec" ||
      return 1
  fi
  service=$(ask "${name,,}" g functions describe "$name" --region="$REGION" \
    --format='value(serviceConfig.service.basename())') || service=''
  [[ -n $service ]] || die "function $name has no Cloud Run service; see: gcloud functions describe $name --region=$REGION"
  grant "run services" "$service" "serviceAccount:$invoker" roles/run.invoker --region="$REGION"
  DEPLOYED_SERVICE=$service
}

deploy_event() { # NAME TOPIC TIMEOUT --retry|--no-retry PUBSUB_AGENT
  # Eventarc pushes as the functions' own account, which therefore may invoke the function.
  # Pub/Sub and Eventarc deliveries count as internal traffic: nothing else may reach them.
  deploy_fn "$1" "$FN_SA" --trigger-topic="$2" --trigger-service-account="$FN_SA" \
    --ingress-settings=internal-only --timeout="$3" "$4"
  [[ $4 == --retry ]] || return 0
  # Poison messages stop after 20 attempts and land in the dead-letter topic, not in a 24 h loop.
  local trigger sub policy
  trigger=$(ask "<trigger of $1>" g functions describe "$1" --region="$REGION" \
    --format='value(eventTrigger.trigger)') || trigger=''
  [[ -n $trigger ]] || die "function $1 has no Eventarc trigger; cannot give it a dead-letter topic"
  sub=$(ask "<subscription of $1>" g eventarc triggers describe "$trigger" --location="$REGION" \
    --format='value(transport.pubsub.subscription)') || sub=''
  [[ -n $sub ]] || die "trigger $trigger of $1 has no Pub/Sub subscription for a dead-letter topic"
  policy=$(ask '' g pubsub subscriptions describe "$sub" \
    --format='value(deadLetterPolicy.deadLetterTopic.basename(),deadLetterPolicy.maxDeliveryAttempts)') ||
    policy=''
  [[ $policy == "$DEAD_LETTER"$'\t'20 ]] ||
    run g pubsub subscriptions update "$sub" --dead-letter-topic="$DEAD_LETTER" \
      --max-delivery-attempts=20 >/dev/null
  # Pub/Sub's service agent acknowledges what it forwards to the dead-letter topic.
  grant "pubsub subscriptions" "$sub" "serviceAccount:$5" roles/pubsub.subscriber
}

if [[ $MODE == destroy ]]; then destroy; else deploy; fi
