#!/bin/sh
# Install heimdall as a systemd service. POSIX sh; see deploy/README.md.
#
#   deploy/install.sh [--binary PATH] [--root DIR] [--no-start] [--no-sysctl]
#                     [--dry-run]
#
#   --binary PATH  install this heimdall binary instead of building one with
#                  `cargo build --release -p heimdall --locked`
#   --root DIR     install under DIR (a staging tree for packaging or
#                  tests) instead of /; implies --no-start and --no-sysctl,
#                  and needs no root
#   --no-start     install and run daemon-reload, but neither enable nor
#                  (re)start the service (edit the config first)
#   --no-sysctl    do not install or apply deploy/sysctl/90-heimdall.conf
#   --dry-run      print what would be done, change nothing, need no root
#
# Installs:
#   /usr/local/bin/heimdall
#   /etc/systemd/system/heimdall.service     (replaced on every run)
#   /etc/sysctl.d/90-heimdall.conf           (replaced on every run)
#   /etc/heimdall/heimdall.yaml              (from deploy/heimdall.yaml, only
#                                             if there is none: never replaced)
# then checks the configuration with `heimdall check-config`, loads the
# sysctl file, runs `systemctl daemon-reload` and `systemctl enable heimdall`
# and `systemctl restart heimdall` (which starts it, or restarts it on the
# new binary).

set -eu

usage() {
    sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 1
}

say() {
    printf '%s\n' "$*"
}

binary=""
root=""
start=yes
sysctl=yes
dry_run=no

while [ $# -gt 0 ]; do
    case $1 in
        --binary)
            [ $# -ge 2 ] || die "--binary needs a path"
            binary=$2
            shift 2
            ;;
        --binary=*)
            binary=${1#--binary=}
            shift
            ;;
        --root)
            [ $# -ge 2 ] || die "--root needs a directory"
            root=$2
            shift 2
            ;;
        --root=*)
            root=${1#--root=}
            shift
            ;;
        --no-start)
            start=no
            shift
            ;;
        --no-sysctl)
            sysctl=no
            shift
            ;;
        --dry-run)
            dry_run=yes
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            die "unknown argument: $1 (try --help)"
            ;;
    esac
done

# Run a command, or print it in dry-run mode.
run() {
    if [ "$dry_run" = yes ]; then
        say "+ $*"
    else
        "$@"
    fi
}

deploy_dir=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
repo_dir=$(dirname -- "$deploy_dir")
unit_src=$deploy_dir/heimdall.service
sysctl_src=$deploy_dir/sysctl/90-heimdall.conf
config_src=$deploy_dir/heimdall.yaml
for file in "$unit_src" "$sysctl_src" "$config_src"; do
    [ -f "$file" ] || die "missing $file (run this from a heimdall checkout)"
done

if [ -n "$root" ]; then
    # A staging tree: nothing to start, and no kernel settings to change.
    case $root in
        /*) ;;
        *) root=$(pwd)/$root ;;
    esac
    root=${root%/}
    start=no
    sysctl_apply=no
    systemd=no
else
    sysctl_apply=$sysctl
    systemd=yes
    if [ "$dry_run" = no ] && [ "$(id -u)" -ne 0 ]; then
        die "run as root (or with --dry-run, or --root DIR)"
    fi
fi

bin_dst=$root/usr/local/bin/heimdall
unit_dst=$root/etc/systemd/system/heimdall.service
sysctl_dst=$root/etc/sysctl.d/90-heimdall.conf
config_dir=$root/etc/heimdall
config_dst=$config_dir/heimdall.yaml

# 1. The binary: given, or built.
if [ -z "$binary" ]; then
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust, or pass --binary PATH"
    say "building heimdall (cargo build --release -p heimdall --locked)"
    run cargo build --release -p heimdall --locked --manifest-path "$repo_dir/Cargo.toml"
    binary=${CARGO_TARGET_DIR:-$repo_dir/target}/release/heimdall
fi
if [ "$dry_run" = no ] || [ -e "$binary" ]; then
    if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then
        die "not an executable file: $binary"
    fi
fi

# 2. Files. The unit and the sysctl file are ours and replaced; the
# configuration is the operator's and never replaced.
run install -d -m 0755 "$root/usr/local/bin" "$root/etc/systemd/system" "$config_dir"
run install -m 0755 "$binary" "$bin_dst"
run install -m 0644 "$unit_src" "$unit_dst"
if [ "$sysctl" = yes ]; then
    run install -d -m 0755 "$root/etc/sysctl.d"
    run install -m 0644 "$sysctl_src" "$sysctl_dst"
fi
if [ -e "$config_dst" ]; then
    say "keeping the existing $config_dst"
else
    # 0644: the service runs as a transient user (DynamicUser=yes) that
    # must be able to read it.
    run install -m 0644 "$config_src" "$config_dst"
    say "new $config_dst from deploy/heimdall.yaml: edit server.listen and upstream.servers"
fi

# 3. Check the configuration with the installed binary.
if [ "$dry_run" = yes ]; then
    say "+ $bin_dst check-config $config_dst"
elif ! "$bin_dst" check-config "$config_dst" >/dev/null; then
    die "$config_dst is not valid (see above); fix it and run this again"
fi

# 4. Kernel settings.
if [ "$sysctl_apply" = yes ]; then
    if [ "$dry_run" = yes ]; then
        say "+ sysctl -p $sysctl_dst"
    elif ! sysctl -p "$sysctl_dst" >/dev/null; then
        say "warning: could not apply $sysctl_dst (a container?); it applies at the next boot"
    fi
fi

# 5. systemd.
if [ "$systemd" = yes ]; then
    run systemctl daemon-reload
    if [ "$start" = yes ]; then
        run systemctl enable heimdall.service
        run systemctl restart heimdall.service
        if [ "$dry_run" = no ]; then
            systemctl --no-pager --lines=5 status heimdall.service || true
        fi
    else
        say "not started: systemctl enable --now heimdall"
    fi
fi

if [ "$dry_run" = yes ]; then
    say "dry run: nothing was changed"
else
    say "done"
fi
