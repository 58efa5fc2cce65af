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

# The token, by the daemon's rules (docs/configuration.md, "The token"): the first set variable of
# PARAMETERS_SECRETS_EXTENSION_TOKEN, then those of PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES (default
# AWS_TOKEN, AWS_SESSION_TOKEN, AWS_CONTAINER_AUTHORIZATION_TOKEN); each holds the token or a file: URL.
refuse() {
  echo "pscache-get: $1" >&2
  exit 3
}
nl='
'
cr=$(printf '\r')

# Reads the token file a file: URL names ($1 the variable, $2 the URL) into $token: only a regular file on
# this host, not a link, at most 4096 bytes, read within 5 s (with `timeout`, where it is installed).
token_file() {
  bad="$1=\"$2\" is invalid"
  rest=${2#?????}
  case $rest in *[?#]*) refuse "$bad: a token file URL takes no query or fragment (? or #)" ;; esac
  case $rest in
    //*)
      rest=${rest#//}
      host=${rest%%/*}
      case $rest in */*) rest=/${rest#*/} ;; *) rest= ;; esac
      case $host in '' | [Ll][Oo][Cc][Aa][Ll][Hh][Oo][Ss][Tt]) ;; *) refuse "$bad: the host \"$host\" is not this one; use file:///path" ;; esac
      ;;
  esac
  case $rest in /*) ;; *) refuse "$bad: no absolute path; use file:///path" ;; esac
  path=$rest
  case $path in
    *%*)
      path=$(LC_ALL=C awk 'BEGIN {
        s = ARGV[1]; ARGV[1] = ""; hex = "0123456789abcdef"; out = ""
        while ((i = index(s, "%")) > 0) {
          h = tolower(substr(s, i + 1, 2))
          if (h !~ /^[0-9a-f][0-9a-f]$/) exit 3
          c = (index(hex, substr(h, 1, 1)) - 1) * 16 + index(hex, substr(h, 2, 1)) - 1
          if (c == 0) exit 3
          out = out substr(s, 1, i - 1) sprintf("%c", c); s = substr(s, i + 3)
        }
        printf "%s/", out s
      }' "$path") || refuse "$bad: the path has a malformed percent-escape"
      path=${path%/}
      ;;
  esac
  named="$bad: the token file $path"
  [ ! -L "$path" ] || refuse "$named is a symbolic link: token files are opened without following links, so name the file itself"
  [ -e "$path" ] || refuse "$named could not be opened (ENOENT)"
  [ -f "$path" ] || refuse "$named is not a regular file"
  [ -r "$path" ] || refuse "$named could not be opened (EACCES)"
  bounded=''
  ! command -v timeout >/dev/null 2>&1 || bounded='timeout 5'
  # The trailing x keeps the file's own trailing newlines from the command substitution.
  text=$($bounded dd if="$path" bs=4097 count=1 2>/dev/null && echo x) || {
    [ $? != 124 ] || refuse "$named could not be read within 5 s"
    refuse "$named could not be read"
  }
  text=${text%x}
  [ "$(printf %s "$text" | LC_ALL=C wc -c)" -le 4096 ] || refuse "$named is larger than 4096 bytes: it must hold one token"
  case $text in *"$nl") text=${text%"$nl"}; case $text in *"$cr") text=${text%"$cr"} ;; esac ;; esac
  [ -n "$text" ] || refuse "$named is empty"
  # (Its owner is normally pscache's user, not this one: only a file anyone may write is worth a word.)
  if [ -n "$(find "$path" -prune -perm -0002 2>/dev/null)" ]; then
    echo "pscache-get: warning: the token file $path is writable by others: anyone on the host can choose the token" >&2
  fi
  token=$text
  where="$bad: the token in $path"
}

token=''
vars=${PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES:-AWS_TOKEN,AWS_SESSION_TOKEN,AWS_CONTAINER_AUTHORIZATION_TOKEN}
old_ifs=$IFS
IFS=', '
set -f
for name in PARAMETERS_SECRETS_EXTENSION_TOKEN $vars; do
  case $name in
    '' | [!A-Za-z_]* | *[!A-Za-z0-9_]*)
      refuse "PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES=\"$vars\" is invalid: must be a comma-separated list of variable names" ;;
  esac
  eval "value=\${$name-}"
  case $value in *[![:space:]]*) ;; *) continue ;; esac
  case $value in
    [Ff][Ii][Ll][Ee]:*) token_file "$name" "$value" ;;
    *)
      token=$value
      where="$name=(hidden) is invalid: the token"
      case $token in
        /*) [ ! -e "${token%%:*}" ] && [ ! -L "${token%%:*}" ] ||
          refuse "$name=(hidden) is invalid: it holds a path to something on this host, not a token: set it to the token, or to file:///path" ;;
      esac
      ;;
  esac
  [ "${#token}" -ge 16 ] ||
    refuse "$where is too short (${#token} characters): a token must have at least 16, or it can be guessed; make one with \`pscache token\`"
  [ "${#token}" -le 16384 ] ||
    refuse "$where is too long (${#token} characters): no request could carry it (pscache takes at most 16384 bytes of headers)"
  case $token in *[[:cntrl:]]*) refuse "$where holds control characters: no HTTP header can carry them" ;; esac
  case $token in [[:space:]]* | *[[:space:]]) refuse "$where begins or ends with whitespace: no request could match" ;; esac
  break
done
set +f
IFS=$old_ifs
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
