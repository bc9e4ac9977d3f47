#!/usr/bin/env bash
# Stands the whole system up in one Google Cloud project, idempotently: run it again to update.
#
#   GCP_PROJECT=my-project PORTAL_SERVICE_ACCOUNT=portal@my-project.iam.gserviceaccount.com \
#   ADMIN_EMAILS=ops@school.example ./deploy.sh
#
# Needs: gcloud (authenticated as a project owner), curl, node/npm. Never configures AUTH_MODE=dev:
# the functions accept only calls that Cloud Run IAM let through (the portal's service account).
set -euo pipefail

: "${GCP_PROJECT:?set GCP_PROJECT to the project id}"
: "${PORTAL_SERVICE_ACCOUNT:?set PORTAL_SERVICE_ACCOUNT to the service account the portal calls with}"
REGION=${GCP_REGION:-us-central1}
ZONE=${GCP_ZONE:-us-central1-a}
REPO=${GCP_REPOSITORY:-clarateach}
GCP_REGISTRY=${GCP_REGISTRY:-$REGION-docker.pkg.dev/$GCP_PROJECT/$REPO}
GCP_USE_SPOT=${GCP_USE_SPOT:-false}
ADMIN_EMAILS=${ADMIN_EMAILS:-}
MUX_PORTS=${MUX_PORTS:-52001-52020}
FN_SA=clarateach-functions@$GCP_PROJECT.iam.gserviceaccount.com
VM_SA=clarateach-vm@$GCP_PROJECT.iam.gserviceaccount.com
DEAD_LETTER=clarateach.dead-letter

cd "$(dirname "$0")"
g() { gcloud --project="$GCP_PROJECT" --quiet "$@"; }
exists() { g "$@" >/dev/null 2>&1; }
step() { printf '\n==> %s\n' "$*"; }

step "APIs"
g services enable compute.googleapis.com cloudfunctions.googleapis.com run.googleapis.com \
  eventarc.googleapis.com pubsub.googleapis.com firestore.googleapis.com \
  firebaserules.googleapis.com cloudscheduler.googleapis.com artifactregistry.googleapis.com \
  cloudbuild.googleapis.com iam.googleapis.com

step "Firestore, its indexes and its rules"
exists firestore databases describe --database='(default)' ||
  g firestore databases create --location="$REGION" --type=firestore-native
# shellcheck disable=SC2016 # the single quotes hold JavaScript, not shell
node -e '
  const { indexes } = require("./firestore.indexes.json");
  for (const i of indexes) {
    const fields = i.fields.map((f) => `--field-config=field-path=${f.fieldPath},order=${f.order.toLowerCase()}`);
    console.log([i.collectionGroup, i.queryScope.toLowerCase(), ...fields].join(" "));
  }' | while read -r group scope fields; do
  # shellcheck disable=SC2086 # one --field-config per word
  g firestore indexes composite create --collection-group="$group" --query-scope="$scope" \
    $fields --async 2>&1 | grep -v ALREADY_EXISTS || true
done
# Join rate-limit counters delete themselves once their window is over.
g firestore fields ttls update expiresAt --collection-group=rateLimits --enable-ttl --async >/dev/null 2>&1 || true
token=$(gcloud auth print-access-token)
rules_api=https://firebaserules.googleapis.com/v1/projects/$GCP_PROJECT
ruleset=$(node -e 'console.log(JSON.stringify({source:{files:[{name:"firestore.rules",content:require("fs").readFileSync("firestore.rules","utf8")}]}}))' |
  curl -fsS -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    --data @- "$rules_api/rulesets" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).name))')
release="{\"release\":{\"name\":\"projects/$GCP_PROJECT/releases/cloud.firestore\",\"rulesetName\":\"$ruleset\"}}"
curl -fsS -X PATCH -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  --data "$release" "$rules_api/releases/cloud.firestore" >/dev/null ||
  curl -fsS -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    --data "{\"name\":\"projects/$GCP_PROJECT/releases/cloud.firestore\",\"rulesetName\":\"$ruleset\"}" \
    "$rules_api/releases" >/dev/null

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
  g projects add-iam-policy-binding "$GCP_PROJECT" --member="serviceAccount:$FN_SA" \
    --role="$role" --condition=None >/dev/null
done
# The functions create VMs that run as the VM account.
g iam service-accounts add-iam-policy-binding "$VM_SA" --member="serviceAccount:$FN_SA" \
  --role=roles/iam.serviceAccountUser >/dev/null
for role in roles/artifactregistry.reader roles/logging.logWriter; do
  g projects add-iam-policy-binding "$GCP_PROJECT" --member="serviceAccount:$VM_SA" \
    --role="$role" --condition=None >/dev/null
done

step "Topics (a VM may publish to vm.ready only)"
for topic in workshop.started vm.ready workshop.ended workshop.sweep "$DEAD_LETTER"; do
  exists pubsub topics describe "$topic" || g pubsub topics create "$topic"
done
g pubsub topics add-iam-policy-binding vm.ready --member="serviceAccount:$VM_SA" \
  --role=roles/pubsub.publisher >/dev/null

step "Firewall: Caddy on :80 and each seat's WebRTC mux port, for the workshop VMs only"
exists compute firewall-rules describe clarateach-http ||
  g compute firewall-rules create clarateach-http --network=default --direction=INGRESS \
    --allow=tcp:80,tcp:443 --target-service-accounts="$VM_SA" --source-ranges=0.0.0.0/0
exists compute firewall-rules describe clarateach-webrtc ||
  g compute firewall-rules create clarateach-webrtc --network=default --direction=INGRESS \
    --allow="tcp:$MUX_PORTS,udp:$MUX_PORTS" --target-service-accounts="$VM_SA" --source-ranges=0.0.0.0/0

step "Functions"
env_vars="GCP_PROJECT=$GCP_PROJECT,GCP_ZONE=$ZONE,GCP_REGISTRY=$GCP_REGISTRY,GCP_USE_SPOT=$GCP_USE_SPOT"
env_vars+=",VM_SERVICE_ACCOUNT=$VM_SA,AUTH_MODE=header"
common=(--gen2 --runtime=nodejs20 --region="$REGION" --source=. --service-account="$FN_SA"
  --set-env-vars="$env_vars" --update-env-vars="^|^ADMIN_EMAILS=$ADMIN_EMAILS")
for fn in workshops join; do
  g functions deploy "$fn" "${common[@]}" --entry-point="$fn" --trigger-http \
    --no-allow-unauthenticated --memory=512Mi --timeout=60s
  g functions add-invoker-policy-binding "$fn" --region="$REGION" \
    --member="serviceAccount:$PORTAL_SERVICE_ACCOUNT" >/dev/null
done
deploy_event() { # name topic timeout retry-flag
  g functions deploy "$1" "${common[@]}" --entry-point="$1" --trigger-topic="$2" \
    --memory=512Mi --timeout="$3" "$4"
  # Poison messages stop after 20 attempts and land in the dead-letter topic, not in a 24 h loop.
  local sub
  sub=$(g eventarc triggers list --location="$REGION" \
    --filter="destination.cloudRun.service~^${1,,}\$" --format='value(transport.pubsub.subscription)' | head -n1)
  if [[ -n "$sub" ]]; then
    g pubsub subscriptions update "$sub" --dead-letter-topic="$DEAD_LETTER" --max-delivery-attempts=20 >/dev/null
  fi
}
deploy_event onWorkshopStarted workshop.started 540s --retry
deploy_event onVmReady vm.ready 60s --retry
deploy_event onWorkshopEnded workshop.ended 540s --retry
# The sweep is not retried: the next minute's tick is its retry.
deploy_event sweep workshop.sweep 300s --no-retry

step "Cloud Scheduler: the sweep every minute"
if exists scheduler jobs describe clarateach-sweep --location="$REGION"; then
  g scheduler jobs update pubsub clarateach-sweep --location="$REGION" --schedule='* * * * *' \
    --topic=workshop.sweep --message-body='{}'
else
  g scheduler jobs create pubsub clarateach-sweep --location="$REGION" --schedule='* * * * *' \
    --topic=workshop.sweep --message-body='{}'
fi

step "Done"
echo "workshops: $(g functions describe workshops --region="$REGION" --format='value(serviceConfig.uri)')"
echo "join:      $(g functions describe join --region="$REGION" --format='value(serviceConfig.uri)')"
