#!/usr/bin/env bash
# A recording, stateful stand-in for `curl` talking to the Firebase Rules API, used by the deploy
# tests. Each call is logged to $FAKE_LOG_DIR/calls.log, and the first line of every `-H @FILE`
# header file to $FAKE_LOG_DIR/curl-headers.log; rulesets and the release live in
# $FAKE_STATE_DIR/rules. An unknown release answers 404 (status 22, as `curl -f` does).
set -u
log_dir=${FAKE_LOG_DIR:?FAKE_LOG_DIR must name the directory for the call log}
rules=${FAKE_STATE_DIR:-$log_dir}/rules
mkdir -p "$rules"
echo "curl $*" >>"$log_dir/calls.log"
method=GET data='' url='' prev=''
for a in "$@"; do
  case $prev in
  -X) method=$a ;;
  --data) data=$a ;;
  -H) [[ $a != @* ]] || head -n 1 "${a#@}" >>"$log_dir/curl-headers.log" ;;
  esac
  [[ $a != https://* ]] || url=$a
  prev=$a
done
if [[ $data == @- ]]; then data=$(cat); elif [[ $data == @* ]]; then data=$(cat "${data#@}"); fi
case "$method $url" in
POST*/rulesets)
  n=$(($(find "$rules" -name 'r*.json' | wc -l) + 1))
  printf '%s' "$data" >"$rules/r$n.json"
  echo "{\"name\":\"projects/p/rulesets/r$n\"}"
  ;;
GET*/releases/cloud.firestore)
  [[ -f $rules/release ]] || exit 22
  echo "{\"name\":\"projects/p/releases/cloud.firestore\",\"rulesetName\":\"$(cat "$rules/release")\"}"
  ;;
GET*/rulesets/*)
  [[ -f $rules/${url##*/}.json ]] || exit 22
  cat "$rules/${url##*/}.json"
  ;;
PATCH*/releases/cloud.firestore | POST*/releases)
  grep -o '"rulesetName":"[^"]*"' <<<"$data" | cut -d'"' -f4 >"$rules/release"
  echo '{}'
  ;;
*) exit 22 ;;
esac
