#!/usr/bin/env bash
# Stands the whole system up in one Google Cloud project, idempotently: run it again to update.
#
#   GCP_PROJECT=my-project PORTAL_SERVICE_ACCOUNT=portal@my-project.iam.gserviceaccount.com \
#   ADMIN_EMAILS=ops@school.example,lead@school.example ./deploy.sh
#
# Optional: GCP_REGION (us-central1), GCP_ZONE (us-central1-a), GCP_REPOSITORY (clarateach),
# GCP_REGISTRY (the images' Artifact Registry path; default: that repository), GCP_USE_SPOT (false),
# NETWORK (default): the VPC network the workshop VMs and their firewall rules live in. It must
# already exist; the script checks and stops if it does not (new projects may have no `default`).
# IAM_RETRY_SECONDS (5): the pause step between retries of a binding IAM cannot resolve yet.
#
# ID_TOKEN_ISSUERS, ID_TOKEN_AUDIENCES: whose sign-in tokens name the instructor (README; default:
# Google and this project's Identity Platform, audience the project id).
#
# Needs: gcloud (authenticated as a project owner), curl, node/npm. Always configures AUTH_MODE=token:
# Cloud Run IAM lets the portal in (X-Serverless-Authorization), and the instructor is whoever the
# verified ID token in Authorization names; AUTH_MODE=dev is never set.
set -euo pipefail

: "${GCP_PROJECT:?set GCP_PROJECT to the project id}"
: "${PORTAL_SERVICE_ACCOUNT:?set PORTAL_SERVICE_ACCOUNT to the service account the portal calls with}"
REGION=${GCP_REGION:-us-central1}
ZONE=${GCP_ZONE:-us-central1-a}
REPO=${GCP_REPOSITORY:-clarateach}
GCP_REGISTRY=${GCP_REGISTRY:-$REGION-docker.pkg.dev/$GCP_PROJECT/$REPO}
GCP_USE_SPOT=${GCP_USE_SPOT:-false}
ADMIN_EMAILS=${ADMIN_EMAILS:-}
NETWORK=${NETWORK:-default}
# Seconds between retries of an IAM binding whose principal is not visible yet (times 1, 2, 3, ...).
IAM_RETRY_SECONDS=${IAM_RETRY_SECONDS:-5}
# Ports the VM startup script (startup/clarateach-startup.sh) really uses: Caddy on CT_HTTP_PORT
# (80, plain HTTP; Caddy runs with auto_https off) and, for local seat i = 1..seat-count, Neko's
# WebRTC mux port CT_MUX_PORT_BASE+i (base 30000). A VM hosts at most MAX_SEATS_PER_VM = 20 seats
# (shared/core/plan.ts), so 30001-30020, TCP and UDP. Change all three places together.
HTTP_PORT=80
MUX_PORT_BASE=30000
MAX_SEATS_PER_VM=20
MUX_PORTS=$((MUX_PORT_BASE + 1))-$((MUX_PORT_BASE + MAX_SEATS_PER_VM))
FN_SA=clarateach-functions@$GCP_PROJECT.iam.gserviceaccount.com
VM_SA=clarateach-vm@$GCP_PROJECT.iam.gserviceaccount.com
DEAD_LETTER=clarateach.dead-letter
DEAD_LETTER_SUB=clarateach.dead-letter.sub

cd "$(dirname "$0")"
g() { gcloud --project="$GCP_PROJECT" --quiet "$@"; }
exists() { g "$@" >/dev/null 2>&1; }
step() { printf '\n==> %s\n' "$*"; }
die() {
  printf 'deploy.sh: %s\n' "$*" >&2
  exit 1
}
# Runs a gcloud command that creates something; "already exists" is success, any other error fails.
create_once() {
  local out
  if out=$(g "$@" 2>&1); then
    [[ -z $out ]] || printf '%s\n' "$out"
    return 0
  fi
  if grep -qiE 'ALREADY_EXISTS|already exists' <<<"$out"; then
    echo "  (already there: gcloud $1 $2 $3 ...)"
    return 0
  fi
  printf '%s\n' "$out" >&2
  return 1
}
# Adds an IAM binding. A principal created a moment ago may not be visible to IAM yet ("does not
# exist"): retry that a few times; any other error fails at once.
bind() {
  local attempt out
  for attempt in 1 2 3 4 5; do
    if out=$(g "$@" 2>&1 >/dev/null); then
      return 0
    fi
    if ((attempt == 5)) || ! grep -qiE 'does not exist|NOT_FOUND' <<<"$out"; then
      printf '%s\n' "$out" >&2
      return 1
    fi
    echo "  (principal not visible yet, retrying: gcloud $1 $2 $3 ...)"
    sleep "$((attempt * IAM_RETRY_SECONDS))"
  done
}

step "APIs"
g services enable compute.googleapis.com cloudfunctions.googleapis.com run.googleapis.com \
  eventarc.googleapis.com pubsub.googleapis.com firestore.googleapis.com \
  firebaserules.googleapis.com cloudscheduler.googleapis.com artifactregistry.googleapis.com \
  cloudbuild.googleapis.com iam.googleapis.com
project_number=$(g projects describe "$GCP_PROJECT" --format='value(projectNumber)')
[[ -n $project_number ]] || die "could not read the project number of $GCP_PROJECT"
PUBSUB_AGENT=service-$project_number@gcp-sa-pubsub.iam.gserviceaccount.com

step "Firestore, its indexes and its rules"
exists firestore databases describe --database='(default)' ||
  g firestore databases create --location="$REGION" --type=firestore-native
# shellcheck disable=SC2016 # the single quotes hold JavaScript, not shell
index_specs=$(node -e '
  const { indexes } = require("./firestore.indexes.json");
  for (const i of indexes) {
    const fields = i.fields.map((f) => `--field-config=field-path=${f.fieldPath},order=${f.order.toLowerCase()}`);
    console.log([i.collectionGroup, i.queryScope.toLowerCase(), ...fields].join(" "));
  }')
while read -r group scope fields; do
  [[ -n $group ]] || continue
  # shellcheck disable=SC2086 # one --field-config per word
  create_once firestore indexes composite create --collection-group="$group" \
    --query-scope="$scope" $fields --async
done <<<"$index_specs"
# Join rate-limit counters delete themselves once their window is over.
create_once firestore fields ttls update expiresAt --collection-group=rateLimits --enable-ttl \
  --async
token=$(gcloud auth print-access-token)
rules_api=https://firebaserules.googleapis.com/v1/projects/$GCP_PROJECT
rules_call() { curl -fsS -H "Authorization: Bearer $token" -H 'Content-Type: application/json' "$@"; }
ruleset=$(node -e 'console.log(JSON.stringify({source:{files:[{name:"firestore.rules",content:require("fs").readFileSync("firestore.rules","utf8")}]}}))' |
  rules_call -X POST --data @- "$rules_api/rulesets" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).name))')
release="{\"name\":\"projects/$GCP_PROJECT/releases/cloud.firestore\",\"rulesetName\":\"$ruleset\"}"
# Update the release, or create it on the first deploy.
rules_call -X PATCH --data "{\"release\":$release}" "$rules_api/releases/cloud.firestore" >/dev/null ||
  rules_call -X POST --data "$release" "$rules_api/releases" >/dev/null

step "Artifact Registry repository $REPO (push workspace, neko and caddy images there)"
exists artifacts repositories describe "$REPO" --location="$REGION" ||
  g artifacts repositories create "$REPO" --repository-format=docker --location="$REGION" \
    --description="ClaraTeach workshop images"

step "Service accounts: least privilege for the functions and for the VMs"
exists iam service-accounts describe "$FN_SA" ||
  g iam service-accounts create clarateach-functions --display-name="ClaraTeach functions"
exists iam service-accounts describe "$VM_SA" ||
  g iam service-accounts create clarateach-vm --display-name="ClaraTeach workshop VMs"
for role in roles/datastore.user roles/pubsub.publisher roles/compute.instanceAdmin.v1; do
  bind projects add-iam-policy-binding "$GCP_PROJECT" --member="serviceAccount:$FN_SA" \
    --role="$role" --condition=None
done
# The functions create VMs that run as the VM account.
bind iam service-accounts add-iam-policy-binding "$VM_SA" --member="serviceAccount:$FN_SA" \
  --role=roles/iam.serviceAccountUser
# Eventarc pushes to the event functions with an identity token of the functions' account, which
# Pub/Sub mints (only projects created before April 2021 lack this grant by default).
bind iam service-accounts add-iam-policy-binding "$FN_SA" --member="serviceAccount:$PUBSUB_AGENT" \
  --role=roles/iam.serviceAccountTokenCreator
bind projects add-iam-policy-binding "$GCP_PROJECT" --member="serviceAccount:$VM_SA" \
  --role=roles/logging.logWriter --condition=None
# The VMs pull images from the registry only: read access on that one repository. A registry that
# is not an Artifact Registry docker repository path (LOCATION-docker.pkg.dev/PROJECT/REPOSITORY)
# cannot be granted on here: then the project-wide reader role, as before.
if [[ $GCP_REGISTRY =~ ^([a-z0-9-]+)-docker\.pkg\.dev/([^/]+)/([^/]+)$ ]]; then
  bind artifacts repositories add-iam-policy-binding \
    "projects/${BASH_REMATCH[2]}/locations/${BASH_REMATCH[1]}/repositories/${BASH_REMATCH[3]}" \
    --member="serviceAccount:$VM_SA" --role=roles/artifactregistry.reader
else
  bind projects add-iam-policy-binding "$GCP_PROJECT" --member="serviceAccount:$VM_SA" \
    --role=roles/artifactregistry.reader --condition=None
fi

step "Topics (a VM may publish to vm.ready only) and the dead-letter topic's subscription"
for topic in workshop.started vm.ready workshop.ended workshop.sweep "$DEAD_LETTER"; do
  exists pubsub topics describe "$topic" || g pubsub topics create "$topic"
done
bind pubsub topics add-iam-policy-binding vm.ready --member="serviceAccount:$VM_SA" \
  --role=roles/pubsub.publisher
# Pub/Sub itself forwards poison messages: its service agent publishes to the dead-letter topic.
bind pubsub topics add-iam-policy-binding "$DEAD_LETTER" --member="serviceAccount:$PUBSUB_AGENT" \
  --role=roles/pubsub.publisher
# Messages published to a topic without subscriptions are lost: keep them a week for inspection.
dead_letter_sub=(--message-retention-duration=7d --expiration-period=never)
if exists pubsub subscriptions describe "$DEAD_LETTER_SUB"; then
  g pubsub subscriptions update "$DEAD_LETTER_SUB" "${dead_letter_sub[@]}" >/dev/null
else
  g pubsub subscriptions create "$DEAD_LETTER_SUB" --topic="$DEAD_LETTER" "${dead_letter_sub[@]}"
fi

step "Firewall on network $NETWORK: Caddy and each seat's WebRTC mux port, for the workshop VMs only"
exists compute networks describe "$NETWORK" ||
  die "VPC network \"$NETWORK\" does not exist in $GCP_PROJECT: create it or set NETWORK"
firewall_rule() { # name allow: create the rule, or bring an existing one up to date
  local rule=(--allow="$2" --target-service-accounts="$VM_SA" --source-ranges=0.0.0.0/0) network
  if network=$(g compute firewall-rules describe "$1" \
    --format='value(network.basename())' 2>/dev/null); then
    # A rule's network cannot be changed in place.
    [[ $network == "$NETWORK" ]] ||
      die "firewall rule $1 is on network \"$network\", not \"$NETWORK\": delete it, run again"
    g compute firewall-rules update "$1" "${rule[@]}"
  else
    g compute firewall-rules create "$1" --network="$NETWORK" --direction=INGRESS "${rule[@]}"
  fi
}
firewall_rule clarateach-http "tcp:$HTTP_PORT"
firewall_rule clarateach-webrtc "tcp:$MUX_PORTS,udp:$MUX_PORTS"

step "Functions"
env_vars=(
  "GCP_PROJECT=$GCP_PROJECT" "GCP_ZONE=$ZONE" "GCP_REGISTRY=$GCP_REGISTRY"
  "GCP_USE_SPOT=$GCP_USE_SPOT" "VM_SERVICE_ACCOUNT=$VM_SA" "VM_NETWORK=$NETWORK"
  "AUTH_MODE=token" "ADMIN_EMAILS=$ADMIN_EMAILS"
  "ID_TOKEN_ISSUERS=${ID_TOKEN_ISSUERS:-}" "ID_TOKEN_AUDIENCES=${ID_TOKEN_AUDIENCES:-}"
)
# One --set-env-vars (gcloud accepts only one of the env-var flags), with `|` as the delimiter
# (`gcloud topic escaping`) so that values may hold commas, as ADMIN_EMAILS does.
for pair in "${env_vars[@]}"; do
  [[ $pair != *'|'* ]] || die "environment value must not contain '|': $pair"
done
env_flag=$(
  IFS='|'
  printf '%s' "--set-env-vars=^|^${env_vars[*]}"
)
common=(--gen2 --runtime=nodejs20 --region="$REGION" --source=. --service-account="$FN_SA"
  --memory=512Mi "$env_flag")
deploy_fn() { # name invoker-account deploy-flags...: deploys, then lets only that account invoke
  g functions deploy "$1" "${common[@]}" --entry-point="$1" "${@:3}"
  bind functions add-invoker-policy-binding "$1" --region="$REGION" --member="serviceAccount:$2"
}
for fn in workshops join; do
  deploy_fn "$fn" "$PORTAL_SERVICE_ACCOUNT" --trigger-http --no-allow-unauthenticated --timeout=60s
done
deploy_event() { # name topic timeout --retry|--no-retry
  # Eventarc pushes as the functions' own account, which therefore may invoke the function.
  deploy_fn "$1" "$FN_SA" --trigger-topic="$2" --trigger-service-account="$FN_SA" \
    --timeout="$3" "$4"
  [[ $4 == --retry ]] || return 0
  # Poison messages stop after 20 attempts and land in the dead-letter topic, not in a 24 h loop.
  local trigger sub
  trigger=$(g functions describe "$1" --region="$REGION" --format='value(eventTrigger.trigger)')
  [[ -n $trigger ]] || die "function $1 has no Eventarc trigger; cannot give it a dead-letter topic"
  sub=$(g eventarc triggers describe "$trigger" --location="$REGION" \
    --format='value(transport.pubsub.subscription)')
  [[ -n $sub ]] || die "trigger $trigger of $1 has no Pub/Sub subscription for a dead-letter topic"
  g pubsub subscriptions update "$sub" --dead-letter-topic="$DEAD_LETTER" \
    --max-delivery-attempts=20 >/dev/null
  # Pub/Sub's service agent acknowledges what it forwards to the dead-letter topic.
  bind pubsub subscriptions add-iam-policy-binding "$sub" \
    --member="serviceAccount:$PUBSUB_AGENT" --role=roles/pubsub.subscriber
}
deploy_event onWorkshopStarted workshop.started 540s --retry
deploy_event onVmReady vm.ready 60s --retry
deploy_event onWorkshopEnded workshop.ended 540s --retry
# The sweep is not retried (the next minute's tick is its retry), so it needs no dead-letter topic.
# It may wait for VM deletions: the longest timeout an event function may have.
deploy_event sweep workshop.sweep 540s --no-retry

step "Cloud Scheduler: the sweep every minute"
verb=create
if exists scheduler jobs describe clarateach-sweep --location="$REGION"; then verb=update; fi
g scheduler jobs "$verb" pubsub clarateach-sweep --location="$REGION" --schedule='* * * * *' \
  --topic=workshop.sweep --message-body='{}'

step "Done"
echo "workshops: $(g functions describe workshops --region="$REGION" --format='value(serviceConfig.uri)')"
echo "join:      $(g functions describe join --region="$REGION" --format='value(serviceConfig.uri)')"
