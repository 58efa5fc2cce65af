#!/bin/sh
# Reads one SSM parameter or Secrets Manager secret from pscache (or the official extension) with curl,
# for shell scripts and custom runtimes. POSIX sh; needs curl, od and awk (to judge the token on its
# bytes; busybox has both), and jq or python3 to print the value.
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
# Every value is judged on its raw bytes (od), decoded as UTF-8 the way Node decodes it, never through the
# shell's own notion of characters (dash counts bytes, bash the locale's characters, and a command
# substitution silently drops NUL bytes).
refuse() {
  echo "pscache-get: $1" >&2
  exit 3
}
nl='
'

# The awk program that judges bytes (decimal numbers from od on stdin). It decodes UTF-8 as Node does
# (a U+FFFD for each malformed sequence) and prints: the byte count, the length in UTF-16 code units
# (JavaScript's .length, which the daemon counts), then 1 or 0 for: a control character (U+0000-U+001F,
# U+007F), a character beyond Latin-1, whitespace at the start, at the end, and nothing but whitespace
# (JavaScript's \s and trim()). With mode=file, one trailing line break (LF or CRLF) is dropped first and a
# second line gives the remaining bytes as printf %b escapes. With mode=list, it prints the names of a
# comma-separated variables list instead (each trimmed as the daemon trims it), `default` for a blank list,
# or `bad`.
# shellcheck disable=SC2016 # an awk program: its $ are awk's
inspect='
function ws(c) {
  return c == 9 || c == 10 || c == 11 || c == 12 || c == 13 || c == 32 || c == 160 || c == 5760 ||
    (c >= 8192 && c <= 8202) || c == 8232 || c == 8233 || c == 8239 || c == 8287 || c == 12288 || c == 65279
}
{ for (i = 1; i <= NF; i++) b[++n] = $i + 0 }
END {
  size = n
  if (mode == "file" && n > 0 && b[n] == 10) { n--; if (n > 0 && b[n] == 13) n-- }
  m = 0; i = 1
  while (i <= n) {
    c = b[i]
    if (c < 128) { cp[++m] = c; i++; continue }
    if (c >= 194 && c <= 223) { k = 1; v = c - 192; lo = 128; hi = 191 }
    else if (c >= 224 && c <= 239) { k = 2; v = c - 224; lo = (c == 224) ? 160 : 128; hi = (c == 237) ? 159 : 191 }
    else if (c >= 240 && c <= 244) { k = 3; v = c - 240; lo = (c == 240) ? 144 : 128; hi = (c == 244) ? 143 : 191 }
    else { cp[++m] = 65533; i++; continue }
    j = i + 1; good = 1
    for (t = 1; t <= k; t++) {
      if (j > n || b[j] < lo || b[j] > hi) { good = 0; break }
      v = v * 64 + b[j] - 128; j++; lo = 128; hi = 191
    }
    cp[++m] = good ? v : 65533
    i = j
  }
  units = 0; ctl = 0; beyond = 0; blank = 1
  for (i = 1; i <= m; i++) {
    c = cp[i]
    units += (c > 65535) ? 2 : 1
    if (c < 32 || c == 127) ctl = 1
    if (c > 255) beyond = 1
    if (!ws(c)) blank = 0
  }
  if (mode == "list") {
    if (blank) { print "default"; exit }
    out = ""; names = 0; cp[m + 1] = 44
    for (i = 1; i <= m + 1; i = e + 1) {
      for (e = i; cp[e] != 44; e++) ;
      s = i; f = e - 1
      while (s <= f && ws(cp[s])) s++
      while (f >= s && ws(cp[f])) f--
      if (s > f) continue
      if (f - s >= 128) { print "bad"; exit }
      name = ""
      for (t = s; t <= f; t++) {
        c = cp[t]
        if (!(c == 95 || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (t > s && c >= 48 && c <= 57))) { print "bad"; exit }
        name = name sprintf("%c", c)
      }
      out = out " " name; names++
    }
    print names ? out : "bad"
    exit
  }
  lead = m > 0 && ws(cp[1]); trail = m > 0 && ws(cp[m])
  print size, units, ctl, beyond, lead, trail, blank
  if (mode == "file") { s = ""; for (i = 1; i <= n; i++) s = s sprintf("\\0%03o", b[i]); print s }
}'

# Judges the value $1 (mode $2, token or list): sets $facts to what awk printed.
facts_of() {
  facts=$(printf %s "$1" | LC_ALL=C od -An -v -tu1 | LC_ALL=C awk -v mode="$2" "$inspect")
}

# The token's rules, the daemon's (src/client/token-source.ts, checkToken), in its order: $1 what to call
# it, $2 1 when it came from a file; the facts in $units $ctl $beyond $lead $trail.
check_token() {
  [ "$units" -ge 16 ] ||
    refuse "$1 is too short ($units characters): a token must have at least 16, or it can be guessed; make one with \`pscache token\`"
  [ "$units" -le 16384 ] ||
    refuse "$1 is too long ($units characters): no request could carry it (pscache takes at most 16384 bytes of headers)"
  [ "$ctl" = 0 ] || refuse "$1 holds control characters (a line break?): no HTTP header can carry them"
  [ "$beyond" = 0 ] ||
    refuse "$1 holds characters beyond Latin-1 (U+0100 and up, or bytes that are not UTF-8): no request could match; use ASCII (\`pscache token\` makes such a token)"
  [ "$lead$trail" = 00 ] || refuse "$1 begins or ends with whitespace: no request could match"
  if [ "$2" = 0 ]; then
    case $token in
      /*)
        if [ -e "${token%%:*}" ] || [ -L "${token%%:*}" ]; then
          refuse "$name=(hidden) is invalid: it holds a path to something on this host, not a token: set it to the token, or to file:///path"
        fi
        ;;
    esac
  fi
}

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
      # Decoded once, strictly, as JavaScript's decodeURIComponent: escaped bytes must spell UTF-8.
      path=$(LC_ALL=C awk 'BEGIN {
        s = ARGV[1]; ARGV[1] = ""; hex = "0123456789abcdef"; out = ""
        while ((i = index(s, "%")) > 0) {
          out = out substr(s, 1, i - 1); s = substr(s, i)
          c = byte(); k = 0
          if (c >= 194 && c <= 223) { k = 1; v = c - 192; min = 128 }
          else if (c >= 224 && c <= 239) { k = 2; v = c - 224; min = 2048 }
          else if (c >= 240 && c <= 244) { k = 3; v = c - 240; min = 65536 }
          else if (c >= 128 || c == 0) exit 3
          seq = sprintf("%c", c)
          for (t = 1; t <= k; t++) {
            d = byte()
            if (d < 128 || d > 191) exit 3
            v = v * 64 + d - 128; seq = seq sprintf("%c", d)
          }
          if (k > 0 && (v < min || v > 1114111 || (v >= 55296 && v <= 57343))) exit 3
          out = out seq
        }
        printf "%s/", out s
      }
      function byte(   h) {
        h = tolower(substr(s, 2, 2))
        if (substr(s, 1, 1) != "%" || h !~ /^[0-9a-f][0-9a-f]$/) exit 3
        s = substr(s, 4)
        return (index(hex, substr(h, 1, 1)) - 1) * 16 + index(hex, substr(h, 2, 1)) - 1
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
  # Its bytes as numbers, never through a shell variable: a NUL would vanish there unseen.
  bytes=$(LC_ALL=C $bounded od -An -v -tu1 -N 4097 "$path") || {
    [ $? != 124 ] || refuse "$named could not be read within 5 s"
    refuse "$named could not be read"
  }
  facts=$(printf '%s\n' "$bytes" | LC_ALL=C awk -v mode=file "$inspect")
  read -r size units ctl beyond lead trail blank <<EOF
$facts
EOF
  [ "$size" -le 4096 ] || refuse "$named is larger than 4096 bytes: it must hold one token"
  [ "$units" -gt 0 ] || refuse "$named is empty"
  check_token "$bad: the token in $path" 1
  # (Its owner is normally pscache's user, not this one: only a file anyone may write is worth a word.)
  if [ -n "$(find "$path" -prune -perm -0002 2>/dev/null)" ]; then
    echo "pscache-get: warning: the token file $path is writable by others: anyone on the host can choose the token" >&2
  fi
  # The bytes judged above, and no others (the file may have changed since): no control character among
  # them, so nothing is lost on the way; the trailing x keeps a final byte the substitution would trim.
  token=$(printf '%b' "${facts#*"$nl"}" && echo x)
  token=${token%x}
}

# Variables holding configuration anyone can read, never a token: the daemon's list (NON_SECRET_VARIABLES
# and NON_SECRET_PREFIXES in src/client/token-source.ts), compared in upper case.
non_secret() {
  upper=$(printf %s "$1" | LC_ALL=C awk '{ print toupper($0) }')
  case $upper in
    PARAMETERS_SECRETS_EXTENSION_TOKEN) return 1 ;;
    PARAMETERS_SECRETS_EXTENSION_* | AWS_LAMBDA_* | AWS_ENDPOINT_URL_* | AWS_XRAY_* | KUBERNETES_* | LC_* | \
      AWS_REGION | AWS_DEFAULT_REGION | AWS_ACCESS_KEY_ID | AWS_PROFILE | AWS_DEFAULT_PROFILE | \
      AWS_EXECUTION_ENV | AWS_ROLE_ARN | AWS_ROLE_SESSION_NAME | AWS_WEB_IDENTITY_TOKEN_FILE | \
      AWS_CONTAINER_CREDENTIALS_FULL_URI | AWS_CONTAINER_CREDENTIALS_RELATIVE_URI | \
      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE | AWS_CA_BUNDLE | AWS_CONFIG_FILE | AWS_SHARED_CREDENTIALS_FILE | \
      AWS_ENDPOINT_URL | AWS_USE_FIPS_ENDPOINT | AWS_USE_DUALSTACK_ENDPOINT | AWS_STS_REGIONAL_ENDPOINTS | \
      AWS_NODEJS_CONNECTION_REUSE_ENABLED | _HANDLER | _X_AMZN_TRACE_ID | LAMBDA_TASK_ROOT | LAMBDA_RUNTIME_DIR | \
      ECS_CONTAINER_METADATA_URI | ECS_CONTAINER_METADATA_URI_V4 | HOME | PATH | PWD | OLDPWD | USER | LOGNAME | \
      SHELL | HOSTNAME | TERM | LANG | LANGUAGE | TZ | TMPDIR | NODE_OPTIONS | NODE_ENV | NODE_PATH | \
      HTTP_PROXY | HTTPS_PROXY | NO_PROXY) return 0 ;;
  esac
  return 1
}

list=${PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES-}
vars='AWS_TOKEN AWS_SESSION_TOKEN AWS_CONTAINER_AUTHORIZATION_TOKEN'
if [ -n "$list" ]; then
  shown="PARAMETERS_SECRETS_EXTENSION_TOKEN_VARIABLES=\"$list\" is invalid"
  facts_of "$list" list
  case $facts in
    default) ;;
    bad) refuse "$shown: must be a non-empty comma-separated list of variable names" ;;
    *) vars=$facts ;;
  esac
  for name in $vars; do
    ! non_secret "$name" ||
      refuse "$shown: $name holds configuration, not a secret: a token read from it would be known to anyone who can read the configuration; name only variables that hold a secret"
  done
fi

token=''
for name in PARAMETERS_SECRETS_EXTENSION_TOKEN $vars; do
  eval "value=\${$name-}"
  [ -n "$value" ] || continue
  case $value in
    [Ff][Ii][Ll][Ee]:*) token_file "$name" "$value" ;;
    *)
      facts_of "$value" token
      read -r size units ctl beyond lead trail blank <<EOF
$facts
EOF
      # Empty and all-blank values count as unset (`VAR=` in a shell or a console).
      [ "$blank" = 0 ] || continue
      token=$value
      check_token "$name=(hidden) is invalid: the token" 0
      ;;
  esac
  break
done
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
