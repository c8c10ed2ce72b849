# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_heimdall_global_optspecs
    string join \n c/config= h/help V/version
end

function __fish_heimdall_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_heimdall_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_heimdall_using_subcommand
    set -l cmd (__fish_heimdall_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c heimdall -n "__fish_heimdall_needs_command" -s c -l config -d 'The YAML configuration file. Without it, heimdall reads /etc/heimdall/heimdall.yaml when that exists, else runs on its embedded default: 127.0.0.1:5353, all cores, upstreams from /etc/resolv.conf' -r -F
complete -c heimdall -n "__fish_heimdall_needs_command" -s h -l help -d 'Print help'
complete -c heimdall -n "__fish_heimdall_needs_command" -s V -l version -d 'Print version'
complete -c heimdall -n "__fish_heimdall_needs_command" -f -a "check-config" -d 'Check a configuration as a start would (zone files, block lists, CPUs, cookie secret) and print the effective configuration'
complete -c heimdall -n "__fish_heimdall_needs_command" -f -a "default-config" -d 'Print the default configuration, with comments'
complete -c heimdall -n "__fish_heimdall_needs_command" -f -a "ctl" -d 'Talk to a running heimdall over its control socket'
complete -c heimdall -n "__fish_heimdall_needs_command" -f -a "generate" -d 'Print the man pages or shell completions (for packagers)'
complete -c heimdall -n "__fish_heimdall_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c heimdall -n "__fish_heimdall_using_subcommand check-config" -s c -l config -d 'The YAML configuration file. Without it, heimdall reads /etc/heimdall/heimdall.yaml when that exists, else runs on its embedded default: 127.0.0.1:5353, all cores, upstreams from /etc/resolv.conf' -r -F
complete -c heimdall -n "__fish_heimdall_using_subcommand check-config" -l other-host -d 'The file is for another machine: do not check its CPU ids against this one'
complete -c heimdall -n "__fish_heimdall_using_subcommand check-config" -s h -l help -d 'Print help'
complete -c heimdall -n "__fish_heimdall_using_subcommand default-config" -s c -l config -d 'The YAML configuration file. Without it, heimdall reads /etc/heimdall/heimdall.yaml when that exists, else runs on its embedded default: 127.0.0.1:5353, all cores, upstreams from /etc/resolv.conf' -r -F
complete -c heimdall -n "__fish_heimdall_using_subcommand default-config" -s h -l help -d 'Print help'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and not __fish_seen_subcommand_from status stats reload flush cache top-queries log-level help" -l socket -d 'The control socket. Default: `control.socket` of the configuration file (`-c`, or /etc/heimdall/heimdall.yaml), else /run/heimdall/control.sock' -r -F
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and not __fish_seen_subcommand_from status stats reload flush cache top-queries log-level help" -s c -l config -d 'The YAML configuration file. Without it, heimdall reads /etc/heimdall/heimdall.yaml when that exists, else runs on its embedded default: 127.0.0.1:5353, all cores, upstreams from /etc/resolv.conf' -r -F
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and not __fish_seen_subcommand_from status stats reload flush cache top-queries log-level help" -l json -d 'Print the server\'s JSON reply as it is (for scripts)'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and not __fish_seen_subcommand_from status stats reload flush cache top-queries log-level help" -s h -l help -d 'Print help'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and not __fish_seen_subcommand_from status stats reload flush cache top-queries log-level help" -f -a "status" -d 'Version, uptime, cores, and each upstream\'s smoothed RTT and failures in a row'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and not __fish_seen_subcommand_from status stats reload flush cache top-queries log-level help" -f -a "stats" -d 'The counters, summed over the cores (`--json`: per core as well)'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and not __fish_seen_subcommand_from status stats reload flush cache top-queries log-level help" -f -a "reload" -d 'Reload the configuration file; exits 1 when the reload failed (the running configuration then stays)'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and not __fish_seen_subcommand_from status stats reload flush cache top-queries log-level help" -f -a "flush" -d 'Drop cached answers: all of them, those at and below NAME, or with --type only NAME\'s answer of that type'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and not __fish_seen_subcommand_from status stats reload flush cache top-queries log-level help" -f -a "cache" -d 'Look into the cache'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and not __fish_seen_subcommand_from status stats reload flush cache top-queries log-level help" -f -a "top-queries" -d 'The names and types asked most, from a sample of one query in 64 on every core (estimates; a name must be asked often to show)'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and not __fish_seen_subcommand_from status stats reload flush cache top-queries log-level help" -f -a "log-level" -d 'Change the log level of the running server (off, error, warn, info, debug, trace) until it restarts'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and not __fish_seen_subcommand_from status stats reload flush cache top-queries log-level help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from status" -s c -l config -d 'The YAML configuration file. Without it, heimdall reads /etc/heimdall/heimdall.yaml when that exists, else runs on its embedded default: 127.0.0.1:5353, all cores, upstreams from /etc/resolv.conf' -r -F
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from status" -l json -d 'Print the server\'s JSON reply as it is (for scripts)'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from stats" -s c -l config -d 'The YAML configuration file. Without it, heimdall reads /etc/heimdall/heimdall.yaml when that exists, else runs on its embedded default: 127.0.0.1:5353, all cores, upstreams from /etc/resolv.conf' -r -F
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from stats" -l json -d 'Print the server\'s JSON reply as it is (for scripts)'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from stats" -s h -l help -d 'Print help'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from reload" -s c -l config -d 'The YAML configuration file. Without it, heimdall reads /etc/heimdall/heimdall.yaml when that exists, else runs on its embedded default: 127.0.0.1:5353, all cores, upstreams from /etc/resolv.conf' -r -F
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from reload" -l json -d 'Print the server\'s JSON reply as it is (for scripts)'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from reload" -s h -l help -d 'Print help'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from flush" -l type -d 'Only this record type, at exactly NAME' -r
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from flush" -s c -l config -d 'The YAML configuration file. Without it, heimdall reads /etc/heimdall/heimdall.yaml when that exists, else runs on its embedded default: 127.0.0.1:5353, all cores, upstreams from /etc/resolv.conf' -r -F
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from flush" -l json -d 'Print the server\'s JSON reply as it is (for scripts)'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from flush" -s h -l help -d 'Print help'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from cache" -s c -l config -d 'The YAML configuration file. Without it, heimdall reads /etc/heimdall/heimdall.yaml when that exists, else runs on its embedded default: 127.0.0.1:5353, all cores, upstreams from /etc/resolv.conf' -r -F
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from cache" -l json -d 'Print the server\'s JSON reply as it is (for scripts)'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from cache" -s h -l help -d 'Print help'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from cache" -f -a "lookup" -d 'The cached entries for NAME and TYPE, on every core'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from cache" -f -a "dump" -d 'Every core\'s fresh entries as text on stdout, one line each (name, type, rcode, kind, seconds left, flags, the entry in base64)'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from cache" -f -a "load" -d 'Insert the fresh entries of a dump (FILE, or `-` for stdin) into every core\'s cache; ages are applied as for the cache file'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from cache" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from top-queries" -l limit -d 'Rows to show (1 to 1000)' -r
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from top-queries" -s c -l config -d 'The YAML configuration file. Without it, heimdall reads /etc/heimdall/heimdall.yaml when that exists, else runs on its embedded default: 127.0.0.1:5353, all cores, upstreams from /etc/resolv.conf' -r -F
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from top-queries" -l json -d 'Print the server\'s JSON reply as it is (for scripts)'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from top-queries" -s h -l help -d 'Print help'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from log-level" -s c -l config -d 'The YAML configuration file. Without it, heimdall reads /etc/heimdall/heimdall.yaml when that exists, else runs on its embedded default: 127.0.0.1:5353, all cores, upstreams from /etc/resolv.conf' -r -F
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from log-level" -l json -d 'Print the server\'s JSON reply as it is (for scripts)'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from log-level" -s h -l help -d 'Print help'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "status" -d 'Version, uptime, cores, and each upstream\'s smoothed RTT and failures in a row'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "stats" -d 'The counters, summed over the cores (`--json`: per core as well)'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "reload" -d 'Reload the configuration file; exits 1 when the reload failed (the running configuration then stays)'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "flush" -d 'Drop cached answers: all of them, those at and below NAME, or with --type only NAME\'s answer of that type'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "cache" -d 'Look into the cache'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "top-queries" -d 'The names and types asked most, from a sample of one query in 64 on every core (estimates; a name must be asked often to show)'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "log-level" -d 'Change the log level of the running server (off, error, warn, info, debug, trace) until it restarts'
complete -c heimdall -n "__fish_heimdall_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c heimdall -n "__fish_heimdall_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -s c -l config -d 'The YAML configuration file. Without it, heimdall reads /etc/heimdall/heimdall.yaml when that exists, else runs on its embedded default: 127.0.0.1:5353, all cores, upstreams from /etc/resolv.conf' -r -F
complete -c heimdall -n "__fish_heimdall_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -s h -l help -d 'Print help'
complete -c heimdall -n "__fish_heimdall_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -f -a "man" -d 'Man pages: heimdall(1) on stdout, or with --out-dir heimdall.1 and one page per subcommand (heimdall-ctl.1, ...)'
complete -c heimdall -n "__fish_heimdall_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -f -a "completions" -d 'The completion script for SHELL, on stdout'
complete -c heimdall -n "__fish_heimdall_using_subcommand generate; and not __fish_seen_subcommand_from man completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c heimdall -n "__fish_heimdall_using_subcommand generate; and __fish_seen_subcommand_from man" -l out-dir -d 'Write every page into this directory instead' -r -F
complete -c heimdall -n "__fish_heimdall_using_subcommand generate; and __fish_seen_subcommand_from man" -s c -l config -d 'The YAML configuration file. Without it, heimdall reads /etc/heimdall/heimdall.yaml when that exists, else runs on its embedded default: 127.0.0.1:5353, all cores, upstreams from /etc/resolv.conf' -r -F
complete -c heimdall -n "__fish_heimdall_using_subcommand generate; and __fish_seen_subcommand_from man" -s h -l help -d 'Print help'
complete -c heimdall -n "__fish_heimdall_using_subcommand generate; and __fish_seen_subcommand_from completions" -s c -l config -d 'The YAML configuration file. Without it, heimdall reads /etc/heimdall/heimdall.yaml when that exists, else runs on its embedded default: 127.0.0.1:5353, all cores, upstreams from /etc/resolv.conf' -r -F
complete -c heimdall -n "__fish_heimdall_using_subcommand generate; and __fish_seen_subcommand_from completions" -s h -l help -d 'Print help'
complete -c heimdall -n "__fish_heimdall_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "man" -d 'Man pages: heimdall(1) on stdout, or with --out-dir heimdall.1 and one page per subcommand (heimdall-ctl.1, ...)'
complete -c heimdall -n "__fish_heimdall_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "completions" -d 'The completion script for SHELL, on stdout'
complete -c heimdall -n "__fish_heimdall_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c heimdall -n "__fish_heimdall_using_subcommand help; and not __fish_seen_subcommand_from check-config default-config ctl generate help" -f -a "check-config" -d 'Check a configuration as a start would (zone files, block lists, CPUs, cookie secret) and print the effective configuration'
complete -c heimdall -n "__fish_heimdall_using_subcommand help; and not __fish_seen_subcommand_from check-config default-config ctl generate help" -f -a "default-config" -d 'Print the default configuration, with comments'
complete -c heimdall -n "__fish_heimdall_using_subcommand help; and not __fish_seen_subcommand_from check-config default-config ctl generate help" -f -a "ctl" -d 'Talk to a running heimdall over its control socket'
complete -c heimdall -n "__fish_heimdall_using_subcommand help; and not __fish_seen_subcommand_from check-config default-config ctl generate help" -f -a "generate" -d 'Print the man pages or shell completions (for packagers)'
complete -c heimdall -n "__fish_heimdall_using_subcommand help; and not __fish_seen_subcommand_from check-config default-config ctl generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c heimdall -n "__fish_heimdall_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "status" -d 'Version, uptime, cores, and each upstream\'s smoothed RTT and failures in a row'
complete -c heimdall -n "__fish_heimdall_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "stats" -d 'The counters, summed over the cores (`--json`: per core as well)'
complete -c heimdall -n "__fish_heimdall_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "reload" -d 'Reload the configuration file; exits 1 when the reload failed (the running configuration then stays)'
complete -c heimdall -n "__fish_heimdall_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "flush" -d 'Drop cached answers: all of them, those at and below NAME, or with --type only NAME\'s answer of that type'
complete -c heimdall -n "__fish_heimdall_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "cache" -d 'Look into the cache'
complete -c heimdall -n "__fish_heimdall_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "top-queries" -d 'The names and types asked most, from a sample of one query in 64 on every core (estimates; a name must be asked often to show)'
complete -c heimdall -n "__fish_heimdall_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "log-level" -d 'Change the log level of the running server (off, error, warn, info, debug, trace) until it restarts'
complete -c heimdall -n "__fish_heimdall_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "man" -d 'Man pages: heimdall(1) on stdout, or with --out-dir heimdall.1 and one page per subcommand (heimdall-ctl.1, ...)'
complete -c heimdall -n "__fish_heimdall_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "completions" -d 'The completion script for SHELL, on stdout'
