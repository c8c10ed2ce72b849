#!/usr/bin/env bash
# deploy/test-deb.sh (`just deb-test`, run by .ci/run): build the .deb with
# cargo-deb, install it on this machine with dpkg, check what it installed,
# run the installed binary as the packaged unit would, then remove and purge
# the package.
#
#   deploy/test-deb.sh            build target/debian/heimdall_*.deb, then test it
#   DEB=path deploy/test-deb.sh   test a .deb built before
#
# Checks, in order:
#   1. dpkg -i installs it without starting anything (a policy-rc.d that
#      answers 101 is put in place for the install when there is none;
#      there is no systemd in CI's container anyway);
#   2. /usr/bin/heimdall --version runs and names the package's version;
#   3. heimdall check-config accepts the packaged /etc/heimdall/heimdall.yaml;
#   4. every asset of the cargo-deb metadata (crates/heimdall/Cargo.toml:
#      the man pages, the bash/zsh/fish completions, the docs, the sysctl
#      file) is where the metadata says, and the unit is in
#      /usr/lib/systemd/system (or /lib/systemd/system) with
#      ExecStart=/usr/bin/heimdall --config /etc/heimdall/heimdall.yaml;
#   5. postinst created the `heimdall` system user (no login shell);
#   6. with /etc/heimdall/heimdall.yaml overridden to serve 127.0.0.1 on a
#      free high port and forward to a synthetic upstream this script starts
#      on 127.0.0.1, the installed binary started as the unit starts it (its
#      ExecStart arguments, as the heimdall user (setpriv), in /var/lib/heimdall, with
#      /run/heimdall made as RuntimeDirectory= would) answers dig;
#      `heimdall --config /etc/heimdall/heimdall.yaml ctl reload` (the unit's
#      ExecReload) reports success; after a broken edit it reports failure
#      with a non-zero exit and the server still answers; SIGTERM stops it
#      with status 0;
#   7. dpkg -r removes the binary and keeps the conffile; dpkg --purge
#      removes the conffile and /var/lib/heimdall.
#
# It needs root (dpkg, a system user): not root, it skips with the reason
# (exit 0), or fails under CI=true. It refuses to touch a machine where a
# heimdall package is already installed. Nothing is sent anywhere but
# 127.0.0.1. Everything it starts is stopped by PID; the heimdall user is
# removed again if it did not exist before (Debian's postrm keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

say() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
skip() {
    if [ "${CI:-}" = true ]; then
        fail "cannot run the .deb test: $*"
    fi
    printf 'SKIPPED the .deb test: %s\n' "$*"
    exit 0
}

[ "$(id -u)" = 0 ] || skip "needs root (dpkg -i, a system user); run it as root, e.g. sudo just deb-test"
for tool in dpkg dpkg-deb dig setpriv python3; do
    command -v "$tool" >/dev/null || skip "$tool is missing"
done
if dpkg-query -W -f '${Status}' heimdall 2>/dev/null | grep -q 'install ok\|config-files'; then
    skip "a heimdall package is already installed here; not touching it (dpkg --purge heimdall first)"
fi

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d /tmp/heimdall-deb-test.XXXXXX)
SERVER_PID=
UPSTREAM_PID=
CREATED_POLICY=0
USER_EXISTED=0
getent passwd heimdall >/dev/null && USER_EXISTED=1
stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local status=$?
    [ -n "$SERVER_PID" ] && stop_pid "$SERVER_PID"
    [ -n "$UPSTREAM_PID" ] && stop_pid "$UPSTREAM_PID"
    if dpkg-query -W -f '${Status}' heimdall 2>/dev/null | grep -q 'install ok\|config-files'; then
        echo "cleaning up: dpkg --purge heimdall" >&2
        dpkg --purge heimdall >/dev/null 2>&1 || true
    fi
    if [ "$USER_EXISTED" = 0 ] && getent passwd heimdall >/dev/null; then
        userdel heimdall 2>/dev/null || true
        if getent group heimdall >/dev/null; then groupdel heimdall 2>/dev/null || true; fi
    fi
    [ "$CREATED_POLICY" = 1 ] && rm -f /usr/sbin/policy-rc.d
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { # a port free for both UDP and TCP on 127.0.0.1
    python3 - <<'PY'
import socket
while True:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port)); print(port); break
    except OSError:
        pass
    finally:
        u.close(); t.close()
PY
}

# ---------------------------------------------------------------- build
if [ -z "${DEB:-}" ]; then
    command -v cargo-deb >/dev/null || skip "cargo-deb is missing (cargo install cargo-deb --locked)"
    say "cargo deb -p heimdall --locked (a release build)"
    started=$(date +%s)
    cargo deb -p heimdall --locked --output "$WORK/" >"$WORK/cargo-deb.log" 2>&1 ||
        { tail -30 "$WORK/cargo-deb.log" >&2; fail "cargo deb failed"; }
    DEB=$(ls "$WORK"/heimdall_*.deb)
    say "built $(basename "$DEB") in $(( $(date +%s) - started )) s"
fi
[ -f "$DEB" ] || fail "no .deb at $DEB"
VERSION=$(dpkg-deb -f "$DEB" Version)

# The asset destinations the metadata names, globs expanded against the tree.
cargo metadata --format-version 1 --no-deps --locked 2>/dev/null | python3 -c '
import glob, json, os, sys
root = sys.argv[1]
meta = json.load(sys.stdin)
pkg = next(p for p in meta["packages"] if p["name"] == "heimdall")
base = os.path.dirname(pkg["manifest_path"])
for source, dest, _mode in pkg["metadata"]["deb"]["assets"]:
    if source.startswith("target/"):
        files = [source]
    else:
        files = sorted(glob.glob(os.path.join(base, source)))
        if not files:
            sys.exit(f"asset {source} matches no file")
    for f in files:
        path = "/" + dest
        if dest.endswith("/"):
            path += os.path.basename(f)
        print(path)
' "$ROOT" >"$WORK/assets.txt" || fail "cannot read the cargo-deb assets from cargo metadata"
[ -s "$WORK/assets.txt" ] || fail "no assets in the metadata"

# ---------------------------------------------------------------- install
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    CREATED_POLICY=1
fi
# The package's dependencies (libc6, adduser, ...): dpkg -i does not fetch
# them, so a fresh machine gets the missing ones from apt first.
missing=()
for dep in $(dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*//; s/:any//' | tr -d ' '); do
    dpkg-query -W -f '${Status}' "$dep" 2>/dev/null | grep -q 'install ok installed' || missing+=("$dep")
done
if [ "${#missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null || fail "the package needs ${missing[*]}, which are not installed"
    say "apt-get install ${missing[*]} (the package's dependencies)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$WORK/apt.log" 2>&1 ||
        { cat "$WORK/apt.log" >&2; fail "cannot install the dependencies ${missing[*]}"; }
fi
say "dpkg -i $(basename "$DEB") (services not started: policy-rc.d says 101)"
DEBIAN_FRONTEND=noninteractive dpkg -i "$DEB" >"$WORK/dpkg-i.log" 2>&1 ||
    { cat "$WORK/dpkg-i.log" >&2; fail "dpkg -i failed"; }
dpkg-query -W -f '${Status}' heimdall | grep -q 'install ok installed' || fail "not installed: $(dpkg-query -W -f '${Status}' heimdall)"
if pgrep -a -x heimdall 2>/dev/null | grep -q ' /usr/bin/heimdall '; then
    fail "the install started /usr/bin/heimdall"
fi

# ---------------------------------------------------------------- files
say "heimdall --version"
[ "$(command -v heimdall)" = /usr/bin/heimdall ] || fail "heimdall on PATH is $(command -v heimdall), not /usr/bin/heimdall"
out=$(/usr/bin/heimdall --version) || fail "heimdall --version failed"
echo "   $out"
grep -q "${VERSION%%-*}" <<<"$out" || fail "--version ($out) does not name $VERSION"

say "heimdall check-config /etc/heimdall/heimdall.yaml (as packaged)"
cmp -s /etc/heimdall/heimdall.yaml "$ROOT/deploy/heimdall.yaml" || fail "/etc/heimdall/heimdall.yaml differs from deploy/heimdall.yaml"
/usr/bin/heimdall check-config /etc/heimdall/heimdall.yaml >"$WORK/check.log" 2>&1 ||
    { cat "$WORK/check.log" >&2; fail "check-config refused the packaged configuration"; }
dpkg-query -W -f '${Conffiles}' heimdall | grep -q '/etc/heimdall/heimdall.yaml' || fail "heimdall.yaml is not a conffile"

say "assets where the metadata says ($(wc -l <"$WORK/assets.txt") files)"
while read -r path; do
    [ -f "$path" ] || [ -f "$path.gz" ] || fail "$path is not installed"
done <"$WORK/assets.txt"
for must in /usr/share/man/man1/heimdall.1 /usr/share/man/man1/heimdall-ctl.1 \
    /usr/share/bash-completion/completions/heimdall /usr/share/zsh/vendor-completions/_heimdall \
    /usr/share/fish/vendor_completions.d/heimdall.fish; do
    grep -qx "$must" "$WORK/assets.txt" || fail "the metadata no longer installs $must"
done
UNIT=
for dir in /usr/lib/systemd/system /lib/systemd/system; do
    [ -f "$dir/heimdall.service" ] && UNIT=$dir/heimdall.service && break
done
[ -n "$UNIT" ] || fail "the unit heimdall.service is not installed"
dpkg -L heimdall | grep -q 'systemd/system/heimdall.service$' || fail "the unit is not the package's"
cmp -s "$UNIT" "$ROOT/deploy/deb/heimdall.service" || fail "$UNIT differs from deploy/deb/heimdall.service"
EXEC_START=$(sed -n 's/^ExecStart=//p' "$UNIT")
EXEC_RELOAD=$(sed -n 's/^ExecReload=//p' "$UNIT")
[ "$EXEC_START" = "/usr/bin/heimdall --config /etc/heimdall/heimdall.yaml" ] || fail "ExecStart is $EXEC_START"
echo "   $UNIT: ExecStart=$EXEC_START"

say "the heimdall system user"
entry=$(getent passwd heimdall) || fail "postinst did not create the heimdall user"
IFS=: read -r _ _ uid _ _ home shell <<<"$entry"
(( uid < 1000 )) || fail "heimdall is not a system user (uid $uid)"
[ "$shell" = /usr/sbin/nologin ] || fail "heimdall's shell is $shell"
echo "   uid $uid, home $home, shell $shell"

# ---------------------------------------------------------------- run
UPSTREAM_PORT=$(free_port)
PORT=$(free_port)
CONTROL_PORT=$(free_port)
LOADTEST=${LOADTEST_BIN:-$TARGET_DIR/debug/heimdall-loadtest}
if [ ! -x "$LOADTEST" ]; then
    say "cargo build -p heimdall-loadtest (the synthetic upstream)"
    cargo build --quiet --locked -p heimdall-loadtest
fi
"$LOADTEST" upstream --listen "127.0.0.1:$UPSTREAM_PORT" >"$WORK/upstream.log" 2>&1 &
UPSTREAM_PID=$!
for _ in $(seq 100); do grep -q listening "$WORK/upstream.log" && break; sleep 0.1; done
grep -q listening "$WORK/upstream.log" || { cat "$WORK/upstream.log" >&2; fail "the upstream did not start"; }

# The override: the unit's file, now serving a high port on 127.0.0.1 and
# forwarding only to the upstream above.
write_config() {
    cat >/etc/heimdall/heimdall.yaml <<EOF
# deploy/test-deb.sh's override of the packaged file.
server:
  cores: 1
  listen: ["127.0.0.1:$PORT"]
upstream:
  servers: ["127.0.0.1:$UPSTREAM_PORT"]
dnssec:
  mode: off
control:
  listen: 127.0.0.1:$CONTROL_PORT
  socket: /run/heimdall/control.sock
log:
  level: info
EOF
    chmod 644 /etc/heimdall/heimdall.yaml
}
write_config
/usr/bin/heimdall check-config /etc/heimdall/heimdall.yaml >/dev/null 2>&1 || fail "the override does not check"
# What RuntimeDirectory=, StateDirectory= and WorkingDirectory= provide.
install -d -m 0750 -o heimdall -g heimdall /run/heimdall /var/lib/heimdall
say "starting $EXEC_START as user heimdall, DNS on 127.0.0.1:$PORT"
# setpriv execs (no process in between), so SERVER_PID is heimdall itself.
# shellcheck disable=SC2086  # the unit's ExecStart, split into its words
(cd /var/lib/heimdall && exec setpriv --reuid heimdall --regid heimdall --init-groups -- $EXEC_START) \
    >"$WORK/heimdall.log" 2>&1 &
SERVER_PID=$!
answer() { dig +time=1 +tries=1 @127.0.0.1 -p "$PORT" host-1.zone.test A 2>&1; }
ok=0
for _ in $(seq 100); do
    if answer | grep -q 'status: NOERROR'; then ok=1; break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
[ "$ok" = 1 ] || { tail -20 "$WORK/heimdall.log" >&2; fail "the installed heimdall did not answer on 127.0.0.1:$PORT"; }
answer | grep -A1 'ANSWER SECTION' | tail -1 | sed 's/^/   dig: /'
[ "$(ps -o user= -p "$SERVER_PID" | tr -d ' ')" = heimdall ] || fail "PID $SERVER_PID does not run as heimdall"

say "$EXEC_RELOAD (ExecReload): success"
# shellcheck disable=SC2086
$EXEC_RELOAD >"$WORK/reload-ok.log" 2>&1 || { cat "$WORK/reload-ok.log" >&2; fail "ctl reload of a good file failed"; }
sed 's/^/   /' "$WORK/reload-ok.log"

say "$EXEC_RELOAD after a broken edit: failure, non-zero exit"
printf 'no_such_section:\n  key: 1\n' >>/etc/heimdall/heimdall.yaml
set +e
# shellcheck disable=SC2086
$EXEC_RELOAD >"$WORK/reload-bad.log" 2>&1
status=$?
set -e
sed 's/^/   /' "$WORK/reload-bad.log"
[ "$status" != 0 ] || fail "ctl reload of a broken file exited 0"
grep -qi 'reload failed' "$WORK/reload-bad.log" || fail "ctl reload did not say the reload failed"
answer | grep -q 'status: NOERROR' || fail "heimdall stopped answering after the failed reload"
echo "   exit $status; still answering"
write_config

say "SIGTERM"
kill -TERM "$SERVER_PID"
set +e
wait "$SERVER_PID"
status=$?
set -e
SERVER_PID=
[ "$status" = 0 ] || { tail -20 "$WORK/heimdall.log" >&2; fail "heimdall exited $status on SIGTERM"; }
stop_pid "$UPSTREAM_PID"; UPSTREAM_PID=

# ---------------------------------------------------------------- remove
say "dpkg -r heimdall"
dpkg -r heimdall >"$WORK/dpkg-r.log" 2>&1 || { cat "$WORK/dpkg-r.log" >&2; fail "dpkg -r failed"; }
[ ! -e /usr/bin/heimdall ] || fail "/usr/bin/heimdall is still there after dpkg -r"
[ ! -e "$UNIT" ] || fail "$UNIT is still there after dpkg -r"
[ -f /etc/heimdall/heimdall.yaml ] || fail "dpkg -r removed the conffile"
say "dpkg --purge heimdall"
dpkg --purge heimdall >"$WORK/dpkg-purge.log" 2>&1 || { cat "$WORK/dpkg-purge.log" >&2; fail "dpkg --purge failed"; }
[ ! -e /etc/heimdall/heimdall.yaml ] || fail "the conffile is still there after --purge"
[ ! -e /var/lib/heimdall ] || fail "/var/lib/heimdall is still there after --purge"
dpkg-query -W heimdall >/dev/null 2>&1 && fail "dpkg still knows heimdall after --purge"
rm -rf /run/heimdall
say "PASS: the .deb installs, runs, reloads and purges"
