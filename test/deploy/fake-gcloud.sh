#!/usr/bin/env bash
# A recording, stateful stand-in for `gcloud`, used by the deploy tests (no cloud here).
#
# Every call is appended to $FAKE_LOG_DIR/calls.log (one readable line) and to
# $FAKE_LOG_DIR/argv.bin (exact arguments: the count, then each argument, all NUL-terminated).
# What the calls create lives in $FAKE_STATE_DIR, so a second run (or `destroy`) sees it:
#   res/KEY     one file per resource (KEY: command group and name), holding the flags it was
#               created or last updated with, one per line; `describe --format=value(...)` answers
#               from them
#   iam         KEY<TAB>member<TAB>role, one binding a line
#   enabled, ttls, indexes   enabled services, TTL fields (GROUP/FIELD), composite indexes (JSON,
#               one a line)
# Settings:
#   FAKE_FAIL=SUBSTRING: a call whose command line contains SUBSTRING fails with
#     "ERROR: (gcloud.fake) $FAKE_FAIL_MESSAGE" on stderr and status 1, the first FAKE_FAIL_TIMES
#     times (default: always). A failed `functions deploy` leaves the function FAILED, with the
#     flags and labels it was given but no Cloud Run service, as Cloud Functions does.
#   org-policies/CONSTRAINT.json in the state: the effective policy `org-policies describe`
#     prints (default: one with no rules).
#   FAKE_NO_TRIGGER=1: functions report no Eventarc trigger.
#   FAKE_CUSTOM_VPC=1: networks are custom-mode.
#   FAKE_INSTANCES: what `compute instances list` prints (NAME<TAB>ZONE lines).
#   FAKE_DNS_ZONE="NAME DNSNAME VISIBILITY": the operator's Cloud DNS zone, which exists already;
#     FAKE_DNS_RECORDS: what `dns record-sets list` prints (a name a line).
set -u
log_dir=${FAKE_LOG_DIR:?FAKE_LOG_DIR must name the directory for the call log}
state=${FAKE_STATE_DIR:-$log_dir}
mkdir -p "$state/res"
touch "$state/iam" "$state/enabled" "$state/ttls" "$state/indexes"
args="$*"
printf 'gcloud %s\n' "$args" >>"$log_dir/calls.log"
{
  printf '%d\0' "$#"
  printf '%s\0' "$@"
} >>"$log_dir/argv.bin"

if [[ -n ${FAKE_FAIL:-} && $args == *"$FAKE_FAIL"* ]]; then
  count_file=$log_dir/fail.count
  failed=$(cat "$count_file" 2>/dev/null || echo 0)
  if [[ -z ${FAKE_FAIL_TIMES:-} ]] || ((failed < FAKE_FAIL_TIMES)); then
    echo $((failed + 1)) >"$count_file"
    if [[ " $args " == *' functions deploy '* ]]; then
      fn=$(sed -E 's/(^|.* )functions deploy ([^ ]+).*/\2/' <<<"$args")
      { printf '%s\n' "$@" | grep -E '^--'; echo state=FAILED; } >>"$state/res/functions_$fn"
      rm -f "$state/res/run_services_${fn,,}"
    fi
    echo "ERROR: (gcloud.fake) ${FAKE_FAIL_MESSAGE:-PERMISSION_DENIED: fake failure}" >&2
    exit 1
  fi
fi

# Words and flags; the verb is the first word naming an action, the resource the word after it.
words=() flags=()
for a in "$@"; do
  if [[ $a == -* ]]; then flags+=("$a"); else words+=("$a"); fi
done
verb='' group=() name=''
for i in "${!words[@]}"; do
  case ${words[i]} in
  create | deploy | delete | describe | update | list | get-iam-policy | add-iam-policy-binding | \
    remove-iam-policy-binding | set-iam-policy | enable | submit | pause | resume | print-access-token)
    verb=${words[i]}
    name=${words[i + 1]:-}
    # `scheduler jobs create pubsub NAME`: the target kind comes first.
    [[ $name != pubsub ]] || name=${words[i + 2]:-}
    break
    ;;
  ttls) ;; # `firestore fields ttls update FIELD`
  *) group+=("${words[i]}") ;;
  esac
done
name=${name##*/}
name=${name%%@*}
key=$(IFS=_ && printf '%s' "${group[*]}")_$name
file=$state/res/$key

flag() { # NAME: the last value given to --NAME
  local f v=''
  for f in "${flags[@]}"; do [[ $f != "--$1="* ]] || v=${f#--"$1"=}; done
  printf '%s' "$v"
}
recorded() { # NAME: the last value of --NAME this resource was given
  sed -n "s/^--$1=//p" "$file" 2>/dev/null | tail -n 1
}
field() { # a field of `--format=value(...)`, answered from what was recorded
  local f=${1%.basename()} k
  case $f in
  name) printf '%s' "$name" ;;
  projectNumber) printf 123456789012 ;;
  dnsName) read -r _ v _ <<<"${FAKE_DNS_ZONE:-}" && printf '%s' "$v" ;;
  visibility) read -r _ _ v <<<"${FAKE_DNS_ZONE:-}" && printf '%s' "$v" ;;
  autoCreateSubnetworks) [[ -n ${FAKE_CUSTOM_VPC:-} ]] && printf False || printf True ;;
  labels.*)
    k=${f#labels.}
    grep -hE '^--(update-)?labels=' "$file" | sed -E 's/^--(update-)?labels=//' | tr ',' '\n' |
      sed -n "s/^$k=//p" | tail -n 1
    ;;
  transport.pubsub.subscription) printf 'projects/p/subscriptions/eventarc-us-central1-%s-sub-789' "$name" ;;
  image_summary.digest) printf 'sha256:%s' "$(printf '%s' "$key" | sha256sum | cut -c1-64)" ;;
  state) grep -qx 'state=PAUSED' "$file" && printf PAUSED || printf ENABLED ;;
  pubsubTarget.topicName) recorded topic ;;
  *)
    # deadLetterPolicy.maxDeliveryAttempts -> --max-delivery-attempts
    k=$(sed -E 's/([a-z])([A-Z])/\1-\2/g' <<<"${f##*.}" | tr '[:upper:]' '[:lower:]')
    recorded "$k"
    ;;
  esac
}
# A 2nd gen function as `functions describe --format=json` prints it (the Cloud Functions v2
# Function resource: name, state, labels, buildConfig, serviceConfig, eventTrigger).
function_json() {
  local lower=${name,,} labels topic trigger='' ingress=ALLOW_ALL retry=DO_NOT_RETRY service_config
  labels=$(grep -hE '^--(update-)?labels=' "$file" | sed -E 's/^--(update-)?labels=//' |
    tr ',' '\n' | awk -F= '{ v[$1] = $2 } END { n = 0; for (k in v) printf "%s\"%s\":\"%s\"", (n++ ? "," : ""), k, v[k] }')
  topic=$(recorded trigger-topic)
  [[ $(recorded ingress-settings) != internal-only ]] || ingress=ALLOW_INTERNAL_ONLY
  ! grep -qx -- --retry "$file" || retry=RETRY
  if [[ -n $topic && -z ${FAKE_NO_TRIGGER:-} ]]; then
    trigger=",\"eventTrigger\":{\"trigger\":\"projects/p/locations/us-central1/triggers/$name-123456\",\"triggerRegion\":\"us-central1\",\"eventType\":\"google.cloud.pubsub.topic.v1.messagePublished\",\"pubsubTopic\":\"projects/p/topics/$topic\",\"serviceAccountEmail\":\"$(recorded trigger-service-account)\",\"retryPolicy\":\"RETRY_POLICY_$retry\"}"
  fi
  service_config="\"serviceConfig\":{\"ingressSettings\":\"$ingress\",\"serviceAccountEmail\":\"$(recorded service-account)\""
  # A failed deploy leaves no service; the service itself may be gone (`run services` answers).
  grep -qx state=FAILED "$file" ||
    service_config+=",\"service\":\"projects/p/locations/us-central1/services/$lower\",\"uri\":\"https://$lower-abc-uc.a.run.app\""
  printf '{"name":"projects/p/locations/us-central1/functions/%s","environment":"GEN_2","state":"%s","labels":{%s},"buildConfig":{"runtime":"%s","entryPoint":"%s"},%s}%s}\n' \
    "$name" "$(grep -qx state=FAILED "$file" && echo FAILED || echo ACTIVE)" "$labels" \
    "$(recorded runtime)" "$(recorded entry-point)" "$service_config" "$trigger"
}
# `--format=value(a.b,c.basename())` over a JSON document on stdin: tab-separated, '' for a missing one.
project_value() { # FIELDS
  # shellcheck disable=SC2016 # JavaScript
  node -e '
    const doc = JSON.parse(require("fs").readFileSync(0, "utf8"));
    console.log(process.argv[1].split(",").map((f) => {
      const base = f.endsWith(".basename()");
      let v = f.replace(/\.basename\(\)$/, "").split(".").reduce((o, k) => o?.[k], doc);
      if (v === undefined || v === null) return "";
      v = String(v);
      return base ? v.split("/").at(-1) : v;
    }).join("\t"));' "$1"
}
exists() {
  case $key in
  projects_* | compute_networks_* | compute_instances_* | dns_record-sets_*) return 0 ;;
  dns_managed-zones_*)
    local zone=${FAKE_DNS_ZONE:-}
    [[ -n $zone && $key == "dns_managed-zones_${zone%% *}" ]] && return 0
    ;;
  esac
  [[ -f $file ]]
}
remember() { printf '%s\n' "${flags[@]}" >>"$file"; }

case "$verb" in
print-access-token) echo fake-token ;;
describe)
  if [[ $key == org-policies_* ]]; then
    if [[ -f $state/org-policies/$name.json ]]; then
      cat "$state/org-policies/$name.json"
    else
      printf '{"name":"projects/123456789012/policies/%s","spec":{}}\n' "$name"
    fi
    exit 0
  fi
  ;;&
describe)
  exists || {
    echo "ERROR: (gcloud.fake) NOT_FOUND: $key" >&2
    exit 1
  }
  format=$(flag format)
  if [[ $key == functions_* ]]; then
    if [[ $format == json ]]; then
      function_json
    elif [[ $format == value\(*\) ]]; then
      inner=${format#value(}
      function_json | project_value "${inner%)}"
    fi
  elif [[ $format == value\(*\) ]]; then
    inner=${format#value(}
    inner=${inner%)}
    out=()
    IFS=, read -ra wanted <<<"$inner"
    for w in "${wanted[@]}"; do out+=("$(field "$w")"); done
    (IFS=$'\t' && printf '%s\n' "${out[*]}")
  fi
  ;;
list)
  case $key in
  services_) [[ " ${flags[*]} " != *' --enabled '* ]] || cat "$state/enabled" ;;
  firestore_indexes_composite_) (
    IFS=,
    mapfile -t lines <"$state/indexes"
    printf '[%s]\n' "${lines[*]}"
  ) ;;
  firestore_fields_) sed -n "s|^$(flag collection-group)/||p" "$state/ttls" ;;
  compute_instances_) printf '%s' "${FAKE_INSTANCES:-}" ;;
  dns_record-sets_) printf '%s' "${FAKE_DNS_RECORDS:-}" ;;
  esac
  ;;
create | deploy)
  if [[ $key == beta_services_identity_ ]]; then
    echo "service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"
    exit 0
  fi
  if [[ $key == firestore_indexes_composite_ ]]; then
    fields=()
    for f in "${flags[@]}"; do
      [[ $f == --field-config=* ]] || continue
      path=${f#*field-path=} path=${path%%,*} order=${f#*order=} order=${order%%,*}
      fields+=("{\"fieldPath\":\"$path\",\"order\":\"${order^^}\"}")
    done
    fields+=('{"fieldPath":"__name__","order":"ASCENDING"}')
    group_name=$(flag collection-group)
    printf '{"name":"projects/p/databases/(default)/collectionGroups/%s/indexes/i%s","queryScope":"%s","fields":[%s]}\n' \
      "$group_name" "$RANDOM" "$(flag query-scope | tr '[:lower:]' '[:upper:]')" "$(IFS=, && echo "${fields[*]}")" \
      >>"$state/indexes"
    exit 0
  fi
  if [[ -f $file && $verb == create ]]; then
    echo "ERROR: (gcloud.fake) ALREADY_EXISTS: $key already exists" >&2
    exit 1
  fi
  remember
  if [[ $verb == deploy && $key == functions_* ]]; then
    sed -i '/^state=FAILED$/d' "$file"
    touch "$state/res/run_services_${name,,}"
  fi
  ;;
update)
  if [[ $key == firestore_fields_* ]]; then
    echo "$(flag collection-group)/$name" >>"$state/ttls"
    exit 0
  fi
  exists || {
    echo "ERROR: (gcloud.fake) NOT_FOUND: $key" >&2
    exit 1
  }
  remember
  ;;
enable) printf '%s\n' "${words[@]:2}" >>"$state/enabled" ;;
pause | resume)
  if [[ $verb == pause ]]; then echo state=PAUSED >>"$file"; else sed -i '/^state=PAUSED$/d' "$file"; fi
  ;;
delete)
  if [[ $key == firestore_databases_ ]]; then
    : >"$state/indexes"
    : >"$state/ttls"
  fi
  exists || {
    echo "ERROR: (gcloud.fake) NOT_FOUND: $key" >&2
    exit 1
  }
  rm -f "$file"
  awk -F'\t' -v k="$key" '$1 != k' "$state/iam" >"$state/iam.new" && mv "$state/iam.new" "$state/iam"
  ;;
get-iam-policy | add-iam-policy-binding)
  if [[ $key == run_services_* ]] && ! exists; then
    echo "ERROR: (gcloud.run.services.$verb) NOT_FOUND: Resource '$name' was not found" >&2
    exit 1
  fi
  ;;&
get-iam-policy)
  awk -F'\t' -v k="$key" 'BEGIN { printf "{\"bindings\":[" }
    $1 == k { printf "%s{\"role\":\"%s\",\"members\":[\"%s\"]}", (n++ ? "," : ""), $3, $2 }
    END { print "]}" }' "$state/iam"
  ;;
add-iam-policy-binding)
  printf '%s\t%s\t%s\n' "$key" "$(flag member)" "$(flag role)" >>"$state/iam"
  ;;
set-iam-policy)
  # The whole policy, from the file named after the resource: its bindings replace the resource's.
  awk -F'\t' -v k="$key" '$1 != k' "$state/iam" >"$state/iam.new" && mv "$state/iam.new" "$state/iam"
  # shellcheck disable=SC2016 # JavaScript
  node -e '
    const p = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    for (const b of p.bindings ?? []) for (const m of b.members ?? []) console.log([process.argv[2], m, b.role].join("\t"));
  ' "${words[$((${#words[@]} - 1))]}" "$key" >>"$state/iam"
  ;;
remove-iam-policy-binding)
  awk -F'\t' -v k="$key" -v m="$(flag member)" -v r="$(flag role)" \
    '!($1 == k && $2 == m && $3 == r)' "$state/iam" >"$state/iam.new" && mv "$state/iam.new" "$state/iam"
  ;;
submit)
  # A Cloud Build: the images it pushes exist afterwards.
  config=$(flag config)
  cat "$config" >>"$log_dir/build-configs.log"
  grep -o '"images":\[[^]]*\]' "$config" | grep -o '"[^"]*"' | tail -n +2 | tr -d '"' |
    while read -r image; do touch "$state/res/artifacts_docker_images_${image##*/}"; done
  ;;
esac
# A trigger function brings its Eventarc trigger and that trigger's subscription with it.
if [[ $verb == deploy && -n $(flag trigger-topic) ]]; then
  touch "$state/res/eventarc_triggers_$name-123456" \
    "$state/res/pubsub_subscriptions_eventarc-us-central1-$name-123456-sub-789"
elif [[ $verb == delete && $key == artifacts_repositories_* ]]; then
  rm -f "$state/res/artifacts_docker_images_"* # the images go with their repository
elif [[ $verb == delete && $key == functions_* ]]; then
  rm -f "$state/res/eventarc_triggers_$name-123456" \
    "$state/res/pubsub_subscriptions_eventarc-us-central1-$name-123456-sub-789"
  awk -F'\t' -v k="pubsub_subscriptions_eventarc-us-central1-$name-123456-sub-789" '$1 != k' \
    "$state/iam" >"$state/iam.new" && mv "$state/iam.new" "$state/iam"
  rm -f "$state/res/run_services_${name,,}"
  awk -F'\t' -v k="run_services_${name,,}" '$1 != k' "$state/iam" >"$state/iam.new" &&
    mv "$state/iam.new" "$state/iam"
fi
exit 0
