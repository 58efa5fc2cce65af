#!/bin/sh
# Reads one SSM parameter or Secrets Manager secret from pscache (or the official extension) with curl,
# for shell scripts and custom runtimes. POSIX sh; needs curl, and jq or python3 to print the value.
#
#   sh pscache-get.sh parameter NAME [--decrypt] [--version N | --label L] [--json]
#   sh pscache-get.sh secret ID [--stage STAGE] [--version VERSION_ID] [--json]
#
# Prints the value (a binary secret as base64), or with --json the whole answer. PSCACHE_TIMEOUT_SECONDS
# (default 1) bounds each attempt, PSCACHE_RETRIES (default 2) counts the retries. Exit status, as
# `pscache get`: 0 found, 2 not found, 3 denied (AWS refused, or the token is wrong or missing),
# 4 pscache unreachable, 1 anything else.
set -eu

usage() {
  echo "usage: $0 parameter NAME [--decrypt] [--version N | --label L] [--json]" >&2
  echo "       $0 secret ID [--stage STAGE] [--version VERSION_ID] [--json]" >&2
  exit 1
}

[ $# -ge 2 ] || usage
kind=$1 id=$2
shift 2
decrypt='' version='' label='' stage='' json=''
while [ $# -gt 0 ]; do
  case $1 in
    --decrypt) decrypt=1 ;;
    --json) json=1 ;;
    --version) [ $# -ge 2 ] || usage; version=$2; shift ;;
    --label) [ $# -ge 2 ] || usage; label=$2; shift ;;
    --stage) [ $# -ge 2 ] || usage; stage=$2; shift ;;
    *) usage ;;
  esac
  shift
done

# The token, in the daemon's order; file:///path reads it from a file.
token=${PARAMETERS_SECRETS_EXTENSION_TOKEN:-}
case $token in
  file://*) token=$(cat "${token#file://}") ;;
esac
[ -n "$token" ] || token=${AWS_SESSION_TOKEN:-${AWS_CONTAINER_AUTHORIZATION_TOKEN:-}}
if [ -z "$token" ]; then
  echo "pscache-get: no token: set PARAMETERS_SECRETS_EXTENSION_TOKEN (inside Lambda, AWS_SESSION_TOKEN is used)" >&2
  exit 3
fi

# --data-urlencode quotes every reserved character of the value (`/ : & + = ?`, spaces, non-ASCII).
case $kind in
  parameter)
    route=/systemsmanager/parameters/get
    set -- --data-urlencode "name=$id"
    [ -z "$version" ] || set -- "$@" --data-urlencode "version=$version"
    [ -z "$label" ] || set -- "$@" --data-urlencode "label=$label"
    [ -z "$decrypt" ] || set -- "$@" --data withDecryption=true
    ;;
  secret)
    route=/secretsmanager/get
    set -- --data-urlencode "secretId=$id"
    [ -z "$version" ] || set -- "$@" --data-urlencode "versionId=$version"
    [ -z "$stage" ] || set -- "$@" --data-urlencode "versionStage=$stage"
    ;;
  *) usage ;;
esac

body=$(mktemp)
trap 'rm -f "$body"' EXIT

# - the token goes in on stdin (-H @-), not on the command line, where `ps` would show it;
# - --noproxy: an HTTP(S)_PROXY must not send localhost traffic elsewhere;
# - --max-time bounds each attempt; --retry retries timeouts, 429, 502, 503 and 504 with a growing pause
#   and honours Retry-After; --retry-connrefused and --retry-all-errors add refused and reset
#   connections. A 4xx is not a curl error here (no --fail), so 400, 401, 403 and 404 are never retried.
status=$(printf 'X-Aws-Parameters-Secrets-Token: %s\n' "$token" |
  curl --silent --show-error --noproxy '*' --get -H @- "$@" \
    --max-time "${PSCACHE_TIMEOUT_SECONDS:-1}" --retry "${PSCACHE_RETRIES:-2}" --retry-connrefused --retry-all-errors \
    --output "$body" --write-out '%{http_code}' \
    "http://127.0.0.1:${PARAMETERS_SECRETS_EXTENSION_HTTP_PORT:-2773}$route") || status=000

# The value out of the JSON answer: jq where it is installed, else python3.
field() {
  if command -v jq >/dev/null 2>&1; then
    jq -r "$1" "$body"
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
v = d["Parameter"]["Value"] if sys.argv[2] == "parameter" else (d["SecretString"] if d.get("SecretString") is not None else d["SecretBinary"])
print(v)' "$body" "$kind"
  else
    echo "pscache-get: needs jq or python3 to read the answer (or use --json)" >&2
    exit 1
  fi
}

case $status in
  200)
    if [ -n "$json" ]; then
      cat "$body"
      echo
    elif [ "$kind" = parameter ]; then
      field .Parameter.Value
    else
      field '.SecretString // .SecretBinary'
    fi
    exit 0
    ;;
  000)
    echo "pscache-get: pscache did not answer on port ${PARAMETERS_SECRETS_EXTENSION_HTTP_PORT:-2773}" >&2
    exit 4
    ;;
esac
# Errors are JSON {"__type","message"} from pscache (plain text from the original): never values.
echo "pscache-get: HTTP $status: $(cat "$body")" >&2
case $status in
  404) exit 2 ;;
  401 | 403) exit 3 ;;
  503) exit 4 ;;
  *) exit 1 ;;
esac
