#!/bin/sh
# Installs pscache as a systemd service on an EC2 instance (or any systemd Linux host with Node.js 22 or 24),
# the way the Workload Credentials Provider's install script does: a system user, a token group whose
# members may read the token file, the unit, enabled and started. By default it installs the pscache
# checkout it is part of (built first: npm ci && npm run build); pscache is not on the public npm registry.
set -eu

PREFIX=/opt/pscache
TOKEN_GROUP=pscache-token
SDK_CHAIN=@aws-sdk/credential-provider-node

usage() {
  cat <<'USAGE'
Usage: sudo sh install-ec2.sh [--package SPEC] [--node PATH] [--config FILE] [--no-start]

  --package SPEC  what to install (default: the pscache checkout this script is in, built
                  with npm ci && npm run build): a .tgz made by `npm pack`, another built
                  checkout, or a spec from a registry you publish pscache to, installed under
                  the name pscache (pscache@npm:@yourorg/pscache@0.1.0)
  --node PATH     the Node.js (22 or 24) to run pscache with (default: node on PATH)
  --config FILE   a TOML configuration file, copied to /etc/pscache/config.toml and passed
                  to `pscache serve --config`
  --no-start      install and enable, but do not start now

Then add each application's user to the pscache-token group (sudo usermod -aG pscache-token USER)
and give the application PARAMETERS_SECRETS_EXTENSION_TOKEN=file:///run/pscache/token.
USAGE
}

die() {
  printf 'install-ec2.sh: %s\n' "$*" >&2
  exit 2
}

PACKAGE=
NODE=
CONFIG=
START=yes
while [ $# -gt 0 ]; do
  case $1 in
    --package | --node | --config)
      if [ $# -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value"; fi
      case $1 in
        --package) PACKAGE=$2 ;;
        --node) NODE=$2 ;;
        --config) CONFIG=$2 ;;
      esac
      shift 2
      ;;
    --no-start) START=no; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument \"$1\"" ;;
  esac
done

HERE=$(cd "$(dirname "$0")" && pwd)
UNIT=$HERE/pscache.service
# Never the public registry by default: a package named pscache there is not this one.
[ -n "$PACKAGE" ] || PACKAGE=$(cd "$HERE/.." && pwd)

[ "$(id -u)" -eq 0 ] || die "run as root (sudo sh $0)"
command -v systemctl >/dev/null 2>&1 || die "systemd is needed (systemctl not found)"
[ -f "$UNIT" ] || die "$UNIT not found: run the script from pscache's deploy directory"
if [ -z "$NODE" ]; then
  NODE=$(command -v node) || die "Node.js 22 or 24 is needed (Amazon Linux 2023: sudo dnf install -y nodejs22 nodejs22-npm), or pass --node PATH"
fi
[ -x "$NODE" ] || die "--node $NODE is not an executable"
# The real file, not an alternatives link that may later point at another version.
NODE=$(readlink -f "$NODE")
case $NODE in
  /home/* | /root/*) die "$NODE is in a home directory, which the service cannot see (ProtectHome=yes): install Node.js system-wide" ;;
esac
MAJOR=$("$NODE" -p 'process.versions.node.split(".")[0]') || die "$NODE does not run"
[ "$MAJOR" -ge 22 ] || die "$NODE is Node.js $MAJOR; pscache needs 22 or 24 (pass --node PATH, e.g. --node /usr/bin/node-22)"
# npm beside that node: Amazon Linux 2023 names them node-22 and npm-22.
NPM=
for candidate in "$(dirname "$NODE")/npm-$MAJOR" "$(dirname "$NODE")/npm"; do
  if [ -x "$candidate" ]; then
    NPM=$candidate
    break
  fi
done
if [ -z "$NPM" ]; then
  NPM=$(command -v npm) || die "npm is needed (Amazon Linux 2023: sudo dnf install -y nodejs22-npm)"
fi
if [ -n "$CONFIG" ]; then
  [ -f "$CONFIG" ] || die "--config $CONFIG: no such file"
fi

# A checkout is packed first: installing a directory would only link to it, and the service (with
# ProtectHome) may not even see it.
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ -d "$PACKAGE" ]; then
  [ -f "$PACKAGE/dist/pscache.cjs" ] || die "$PACKAGE has no dist/pscache.cjs: run npm ci && npm run build there first (or pass --package)"
  (cd "$PACKAGE" && PATH=$(dirname "$NODE"):$PATH "$NPM" pack --silent --pack-destination "$WORK" >/dev/null) || die "npm pack failed in $PACKAGE"
  PACKAGE=$(ls "$WORK"/*.tgz)
elif [ -f "$PACKAGE" ]; then
  PACKAGE=$(cd "$(dirname "$PACKAGE")" && pwd)/$(basename "$PACKAGE")
fi

echo "install-ec2.sh: user pscache, group $TOKEN_GROUP"
getent group "$TOKEN_GROUP" >/dev/null 2>&1 || groupadd --system "$TOKEN_GROUP"
getent group pscache >/dev/null 2>&1 || groupadd --system pscache
NOLOGIN=/usr/sbin/nologin
[ -x "$NOLOGIN" ] || NOLOGIN=/sbin/nologin
id -u pscache >/dev/null 2>&1 ||
  useradd --system --gid pscache --no-create-home --home-dir /nonexistent --shell "$NOLOGIN" pscache

echo "install-ec2.sh: installing $PACKAGE into $PREFIX"
mkdir -p "$PREFIX/bin"
[ -f "$PREFIX/package.json" ] || printf '{"private":true}\n' >"$PREFIX/package.json"
PATH=$(dirname "$NODE"):$PATH "$NPM" install --prefix "$PREFIX" --omit=dev --no-audit --no-fund "$PACKAGE"
# The SDK's default chain (instance profile through IMDS, profiles) is an optional peer of pscache:
# install the version range pscache declares.
RANGE=$("$NODE" -p "const p = require('$PREFIX/node_modules/pscache/package.json');
  (p.peerDependencies || {})['$SDK_CHAIN'] || (p.dependencies || {})['$SDK_CHAIN'] || 'latest'")
PATH=$(dirname "$NODE"):$PATH "$NPM" install --prefix "$PREFIX" --omit=dev --no-audit --no-fund "$SDK_CHAIN@$RANGE"
ln -sf "$NODE" "$PREFIX/bin/node"
ln -sf "$PREFIX/node_modules/.bin/pscache" /usr/local/bin/pscache

echo "install-ec2.sh: configuration in /etc/pscache"
mkdir -p /etc/pscache
if [ ! -f /etc/pscache/pscache.env ]; then
  cat >/etc/pscache/pscache.env <<'ENV'
# Settings for pscache, one NAME=value a line (see pscache's README). Restart after a change:
#   sudo systemctl restart pscache
# AWS_REGION=us-east-1
# SECRETS_MANAGER_TTL=300
# SSM_PARAMETER_STORE_TTL=300
ENV
fi
chown root:pscache /etc/pscache/pscache.env
chmod 0640 /etc/pscache/pscache.env

install -m 0644 "$UNIT" /etc/systemd/system/pscache.service
DROPIN=/etc/systemd/system/pscache.service.d
if [ -n "$CONFIG" ]; then
  install -m 0640 -o root -g pscache "$CONFIG" /etc/pscache/config.toml
  mkdir -p "$DROPIN"
  cat >"$DROPIN/config.conf" <<CONF
[Service]
ExecStart=
ExecStart=$PREFIX/bin/node $PREFIX/node_modules/pscache/bin/pscache.cjs serve --config /etc/pscache/config.toml
CONF
fi

systemctl daemon-reload
if [ "$START" = yes ]; then
  systemctl enable pscache
  systemctl restart pscache
  echo "install-ec2.sh: pscache is running; token in /run/pscache/token"
else
  systemctl enable pscache
  echo "install-ec2.sh: pscache is enabled; start it with: sudo systemctl start pscache"
fi
cat <<DONE

Give each application access to the token, then restart it:
  sudo usermod -aG $TOKEN_GROUP APP_USER
and in its environment:
  PARAMETERS_SECRETS_EXTENSION_TOKEN=file:///run/pscache/token
DONE
