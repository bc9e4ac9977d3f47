#!/usr/bin/env bash
# A recording stand-in for `gcloud`, used by deploy.test.ts (no cloud here). Every call is appended
# to $FAKE_LOG_DIR/calls.log (one readable line) and to $FAKE_LOG_DIR/argv.bin (exact arguments:
# the argument count, then each argument, all NUL-terminated).
#
# Behaviour:
#   - `describe` fails (nothing exists yet) unless FAKE_EXISTS=1 (everything exists: a second run);
#     the describes deploy.sh reads values from answer with plausible values.
#   - FAKE_FAIL=SUBSTRING: a call whose command line contains SUBSTRING fails with
#     "ERROR: (gcloud.fake) $FAKE_FAIL_MESSAGE" on stderr and status 1, the first FAKE_FAIL_TIMES
#     times (default: always).
#   - FAKE_NO_TRIGGER=1: functions report no Eventarc trigger.
#   - everything else succeeds silently.
set -u
log_dir=${FAKE_LOG_DIR:?FAKE_LOG_DIR must name the directory for the call log}
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
    echo "ERROR: (gcloud.fake) ${FAKE_FAIL_MESSAGE:-PERMISSION_DENIED: fake failure}" >&2
    exit 1
  fi
fi

# The word after "describe": the resource a describe is about.
subject=${args#* describe }
subject=${subject%% *}
case "$args" in
*"auth print-access-token"*) echo fake-token ;;
*"projects describe "*) echo 123456789012 ;;
*"compute networks describe "*) echo default ;;
*"functions describe "*"eventTrigger.trigger"*)
  [[ -n ${FAKE_NO_TRIGGER:-} ]] || echo "projects/p/locations/us-central1/triggers/$subject-123456"
  ;;
*"functions describe "*"serviceConfig.uri"*) echo "https://$subject-abc-uc.a.run.app" ;;
*"eventarc triggers describe "*)
  echo "projects/p/subscriptions/eventarc-us-central1-${subject##*/}-sub-789"
  ;;
*"firewall-rules describe "*)
  [[ -n ${FAKE_EXISTS:-} ]] || exit 1
  echo default
  ;;
*" describe "*) [[ -n ${FAKE_EXISTS:-} ]] || exit 1 ;;
esac
exit 0
