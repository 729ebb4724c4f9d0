# bash completion for linjail: jail, jls, jexec, jailctl, rctl, linjail-oci.
# Installed once per command (bash-completion loads completions/NAME for
# command NAME); sourcing it by hand works too, without bash-completion.
#
# Running jails (JIDs, names, roots) come from `jls jid name path`, which every user may
# run; rc.conf jail names from /etc/rc.conf, /etc/rc.conf.local,
# /etc/rc.conf.d/jail and the -f files on the line.  The word lists below are
# checked against the Python tables by tests/e2e/test_completion.py.

_linjail_knobs="set_hostname_allowed socket_unixiproute_only sysvipc_allowed enforce_statfs
allow_raw_sockets chflags_allowed allow_listen_override vfs_mount_nullfs vfs_mount_tmpfs
unprivileged_root"
_linjail_rc_actions="start stop restart status"
_linjail_rc_prefixes="one force fast quiet"
_linjail_resources="cputime datasize stacksize coredumpsize memoryuse memorylocked maxproc
openfiles vmemoryuse pseudoterminals swapuse nthr msgqqueued msgqsize nmsgq nsem nsemop nshm
shmsize wallclock pcpu readbps writebps readiops writeiops"
_linjail_rctl_actions="deny log devctl throttle sighup sigint sigquit sigill sigtrap sigabrt
sigemt sigfpe sigkill sigbus sigsegv sigsys sigpipe sigalrm sigterm sigurg sigstop sigtstp
sigchld sigttin sigttou sigio sigxcpu sigxfsz sigvtalrm sigprof sigwinch siginfo sigusr1 sigusr2
sigthr"
_linjail_suites="bookworm trixie bullseye sid"

# the word being completed, whole: bash splits words at : and = (COMP_WORDBREAKS)
_linjail_cur() {
    local line=${COMP_LINE:0:COMP_POINT}
    printf '%s' "${line##*[[:space:]]}"
}

# COMPREPLY from the words of $1 that start with $2, as bash will insert them
# (the part of $2 up to its last : or = is already on the line)
_linjail_reply() {
    local word pre
    COMPREPLY=()
    for word in $1; do
        [[ $word == "$2"* ]] && COMPREPLY+=("$word")
    done
    pre=${2%"${2##*[:=]}"}
    if [[ -n $pre && $COMP_WORDBREAKS == *[:=]* ]]; then
        COMPREPLY=("${COMPREPLY[@]#"$pre"}")
    fi
}

# JIDs and names of the running jails, one a line
_linjail_jails() {
    local jid name
    jls jid name 2>/dev/null | while read -r jid name; do
        printf '%s\n' "$jid"
        [[ -n $name && $name != "$jid" ]] && printf '%s\n' "$name"
    done
}

# the root directory of running jail $1 (a JID or a name)
_linjail_root() {
    local jid name path
    jls jid name path 2>/dev/null | while read -r jid name path; do
        if [[ $jid == "$1" || $name == "$1" ]]; then printf '%s\n' "$path"; break; fi
    done
}

# jail names of rc.conf: jail_list and every jail_NAME_rootdir|hostname|ip, in
# the files jailctl reads: those of -f, else $LINJAIL_RC_CONF, else rc.conf(5)'s
_linjail_rc_names() {
    local f files=("$@")
    if ((${#files[@]} == 0)); then
        if [[ -n $LINJAIL_RC_CONF ]]; then
            IFS=: read -r -a files <<< "$LINJAIL_RC_CONF"
        else
            files=(/etc/rc.conf /etc/rc.conf.local /etc/rc.conf.d/jail)
        fi
    fi
    for f in "${files[@]}"; do
        [[ -r $f ]] || continue
        sed -n -e 's/^[[:space:]]*jail_list=["'\'']\{0,1\}\([^"'\''#]*\).*/\1/p' \
            -e 's/^[[:space:]]*jail_\([A-Za-z0-9_]*\)_\(rootdir\|hostname\|ip\)=.*/\1/p' "$f"
    done | tr -s ' \t' '\n\n' | sort -u
}

# paths inside the directory $1 (a jail's root), as the jail sees them
_linjail_in_root() {
    local root=${1%/} cur=$2 p IFS=$'\n'
    COMPREPLY=()
    [[ -n $root && -d $root ]] || return 0
    [[ $cur == /* ]] || cur=/$cur
    for p in $(compgen -f -- "$root$cur"); do
        if [[ -d $p ]]; then COMPREPLY+=("${p#"$root"}/"); else COMPREPLY+=("${p#"$root"}"); fi
    done
    if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == */ ]]; then
        compopt -o nospace 2>/dev/null
    fi
}

# commands found in the jail's PATH directories (jexec searches PATH)
_linjail_in_root_commands() {
    local root=${1%/} d p
    for d in /sbin /bin /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
        for p in "$root$d/$2"*; do
            [[ -f $p && -x $p ]] && printf '%s\n' "${p##*/}"
        done
    done | sort -u
}

_linjail_files() {
    local IFS=$'\n'
    COMPREPLY=($(compgen -f -- "$1"))
    compopt -o filenames 2>/dev/null
}

_linjail_dirs() {
    local IFS=$'\n'
    COMPREPLY=($(compgen -d -- "$1"))
    compopt -o filenames 2>/dev/null
}

# jail [-i] [-l -u user | -U user] path hostname ip-list command ...
_linjail_jail() {
    local cur=${COMP_WORDS[COMP_CWORD]} i word n=-1 root=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if ((n >= 0)); then
            ((n == 0)) && root=$word
            ((n += 1)); continue
        fi
        case $word in
        --) n=0 ;;
        -u|-U|-[il]u|-[il]U|-[il][il]u|-[il][il]U) ((i += 1)) ;;
        -*) ;;
        *) root=$word; n=1 ;;
        esac
    done
    case ${COMP_WORDS[COMP_CWORD-1]} in
    -u|-[il]u|-[il][il]u) ((n < 0)) && { COMPREPLY=($(compgen -u -- "$cur")); return 0; } ;;
    -U|-[il]U|-[il][il]U) ((n < 0)) && { COMPREPLY=(); return 0; } ;;
    esac
    if ((n < 0)) && [[ $cur == -* ]]; then
        local opts="-i -l -u -U"
        ((COMP_CWORD == 1)) && opts+=" --version"
        _linjail_reply "$opts" "$cur"
    elif ((n <= 0)); then
        _linjail_dirs "$cur"                    # path
    elif ((n == 1 || n == 2)); then
        COMPREPLY=()                            # hostname, ip-list
    else
        _linjail_in_root "$root" "$cur"         # the command, inside the new jail's root
    fi
}

# jls [-cdhNnqsv] [-j jail] [--json | --libxo json] [param ...]
_linjail_jls() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    case $prev in
        -j) COMPREPLY=($(compgen -W "$(_linjail_jails)" -- "$cur")); return ;;
        --libxo) COMPREPLY=($(compgen -W "json text" -- "$cur")); return ;;
    esac
    if [[ $cur == -* ]]; then
        _linjail_reply "-c -d -h -j -N -n -q -s -v --json --libxo --version" "$cur"
    else
        # the parameter names: the header line of `jls -h` (printed with no jail too)
        COMPREPLY=($(compgen -W "all $(jls -h 2>/dev/null | head -1)" -- "$cur"))
    fi
}

# jexec [-u user | -U user] jid|name command ...
_linjail_jexec() {
    local cur=${COMP_WORDS[COMP_CWORD]} i word n=-1 jid=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if ((n >= 0)); then
            ((n == 0)) && jid=$word
            ((n += 1)); continue
        fi
        case $word in
        --) n=0 ;;
        -u|-U) ((i += 1)) ;;
        -*) ;;
        *) jid=$word; n=1 ;;
        esac
    done
    if ((n <= 0)); then
        ((n < 0)) && case ${COMP_WORDS[COMP_CWORD-1]} in
        -u) COMPREPLY=($(compgen -u -- "$cur")); return 0 ;;
        -U) COMPREPLY=(); return 0 ;;
        esac
        if ((n < 0)) && [[ $cur == -* ]]; then
            local opts="-u -U"
            ((COMP_CWORD == 1)) && opts+=" --version"
            _linjail_reply "$opts" "$cur"
        else
            _linjail_reply "$(_linjail_jails)" "$cur"
        fi
    elif ((n == 1)) && [[ $cur != */* ]]; then
        _linjail_reply "$(_linjail_in_root_commands "$(_linjail_root "$jid")" "$cur")" "$cur"
    else
        _linjail_in_root "$(_linjail_root "$jid")" "$cur"
    fi
}

# the knob names jailctl sysctl knows, and those of each running jail
_linjail_sysctl_names() {
    local k jid
    for k in $_linjail_knobs; do
        printf 'jail.%s\njail.defaults.%s\n' "$k" "$k"
    done
    printf 'jail.jailed\njail.list\n'
    for jid in $(_linjail_jails); do
        [[ $jid == *[!0-9]* ]] && continue
        for k in $_linjail_knobs; do printf 'jail.%s.%s\n' "$jid" "$k"; done
    done
}

_linjail_jailctl() {
    local cur verb prev=${COMP_WORDS[COMP_CWORD-1]} i files=() a p
    cur=$(_linjail_cur)
    if ((COMP_CWORD == 1)); then
        local verbs="build destroy remove sysctl doctor $_linjail_rc_actions --version"
        if [[ -n $cur && $cur != -* ]]; then
            for p in $_linjail_rc_prefixes; do
                for a in $_linjail_rc_actions; do verbs+=" $p$a"; done
            done
        fi
        _linjail_reply "$verbs" "$cur"
        return 0
    fi
    verb=${COMP_WORDS[1]}
    case $verb in
    build)
        case $prev in
        --thin) _linjail_dirs "$cur"; return 0 ;;
        --from-tar) _linjail_files "$cur"; return 0 ;;
        --suite) _linjail_reply "$_linjail_suites" "$cur"; return 0 ;;
        --include|--mirror|--hostname) COMPREPLY=(); return 0 ;;
        esac
        if ((COMP_CWORD == 2)); then
            _linjail_dirs "$cur"
        elif [[ $cur == -* ]]; then
            _linjail_reply "--service --complete --thin --from-tar --suite --include --mirror
--hostname" "$cur"
        else
            for ((i = 3; i < COMP_CWORD; i++)); do
                if [[ ${COMP_WORDS[i]} == --service ]]; then
                    _linjail_files "$cur"       # host programs
                    return 0
                fi
            done
            COMPREPLY=()
        fi
        ;;
    destroy) [[ $cur == -* ]] && COMPREPLY=() || _linjail_dirs "$cur" ;;
    remove)
        if [[ $prev == -t ]]; then COMPREPLY=()
        elif [[ $cur == -* ]]; then _linjail_reply "-t" "$cur"
        else _linjail_reply "$(_linjail_jails)" "$cur"
        fi
        ;;
    sysctl) _linjail_reply "$(_linjail_sysctl_names)" "$cur" ;;
    doctor) COMPREPLY=() ;;
    *start|*stop|*restart|*status)
        if [[ $prev == -f ]]; then _linjail_files "$cur"; return 0; fi
        if [[ $cur == -* ]]; then _linjail_reply "-f --force" "$cur"; return 0; fi
        for ((i = 2; i < COMP_CWORD; i++)); do
            [[ ${COMP_WORDS[i]} == -f ]] && files+=("${COMP_WORDS[i+1]}")
        done
        _linjail_reply "$(_linjail_rc_names "${files[@]}")" "$cur"
        ;;
    esac
}

# rctl [-h] [-a rule | -l filter | -r filter | -u filter | filter]
# a rule is jail:JID-or-name:resource:action=amount
_linjail_rctl() {
    local cur words="" j r a
    cur=$(_linjail_cur)
    if [[ $cur == -* ]]; then
        _linjail_reply "-h -a -l -r -u $( ((COMP_CWORD == 1)) && echo --version)" "$cur"
        return 0
    fi
    case $cur in
    jail:*:*:*) for a in $_linjail_rctl_actions; do words+=" ${cur%:*}:$a="; done ;;
    jail:*:*) for r in $_linjail_resources; do words+=" ${cur%:*}:$r:"; done ;;
    jail:*) for j in $(_linjail_jails); do words+=" jail:$j:"; done ;;
    *) words="jail:" ;;
    esac
    _linjail_reply "$words" "$cur"
    compopt -o nospace 2>/dev/null
}

# linjail-oci [global options] COMMAND [options] ID ...: the option lists are
# the CLI's table (cli/linjail_oci.py), container ids `linjail-oci list -q`
_linjail_oci_commands="create run start state kill delete list features exec pause resume ps
update spec events checkpoint restore"
_linjail_oci_global="--root --log --log-format --debug --systemd-cgroup --criu --rootless
--help --version"
_linjail_oci_create="--bundle --pid-file --console-socket --preserve-fds --no-pivot
--no-new-keyring"
_linjail_oci_run="$_linjail_oci_create --detach --keep --no-subreaper"
_linjail_oci_kill="--all"
_linjail_oci_delete="--force"
_linjail_oci_list="--format --quiet"
_linjail_oci_exec="--process --tty --console-socket --detach --pid-file --cwd --env --user
--additional-gids --cap --no-new-privs --process-label --apparmor --cgroup --preserve-fds
--ignore-paused"
_linjail_oci_pause=""
_linjail_oci_resume=""
_linjail_oci_ps="--format"
_linjail_oci_update="--resources --memory --memory-swap --memory-reservation --kernel-memory-tcp
--pids-limit --cpu-shares --cpu-share --cpu-quota --cpu-period --cpu-rt-period --cpu-rt-runtime
--cpuset-cpus --cpuset-mems --blkio-weight --l3-cache-schema --mem-bw-schema"
_linjail_oci_spec="--bundle --rootless"
_linjail_oci_events="--interval --stats"
# checkpoint and restore: runc's options, accepted; the commands are refused (CRIU)
_linjail_oci_checkpoint="--image-path --work-path --parent-path --leave-running --tcp-established
--ext-unix-sk --shell-job --lazy-pages --status-fd --page-server --file-locks --pre-dump
--manage-cgroups-mode --empty-ns --auto-dedup"
_linjail_oci_restore="--console-socket --image-path --work-path --tcp-established --ext-unix-sk
--shell-job --file-locks --manage-cgroups-mode --bundle --detach --pid-file --no-subreaper
--no-pivot --empty-ns --auto-dedup --lazy-pages --lsm-profile --lsm-mount-context"
_linjail_oci_signals="TERM KILL HUP INT QUIT USR1 USR2 STOP CONT WINCH"

_linjail_oci() {
    local cur prev i w cmd="" root=() args=0 opts
    cur=$(_linjail_cur)
    prev=${COMP_WORDS[COMP_CWORD-1]}
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ -z $cmd ]]; then
            case $w in
            --root) root=(--root "${COMP_WORDS[i+1]}"); ((i++)) ;;
            --log|--log-format|--criu|--rootless) ((i++)) ;;
            -*) ;;
            *) cmd=$w ;;
            esac
        else
            case $w in
            --bundle|-b|--pid-file|--console-socket|--preserve-fds|--format|-f|--process|-p|\
            --cwd|--env|-e|--user|-u|--additional-gids|-g|--cap|-c|--resources|-r|--memory*|\
            --kernel-memory-tcp|--pids-limit|--cpu*|--interval|--*-path|--status-fd|\
            --page-server|--manage-cgroups-mode|--empty-ns|--lsm-*|--process-label|--apparmor|\
            --cgroup|--blkio-weight|--l3-cache-schema|--mem-bw-schema) ((i++)) ;;
            -*) ;;
            *) ((args++)) ;;
            esac
        fi
    done
    case $prev in
    --root|--bundle|-b) _linjail_dirs "$cur"; return 0 ;;
    --log|--pid-file|--console-socket|--criu|--process|-p|--resources|-r)
        _linjail_files "$cur"; return 0 ;;
    --image-path|--work-path|--parent-path) _linjail_dirs "$cur"; return 0 ;;
    --interval|--status-fd|--page-server|--manage-cgroups-mode|--empty-ns|--lsm-*|\
    --process-label|--apparmor|--cgroup|--blkio-weight|--l3-cache-schema|--mem-bw-schema)
        COMPREPLY=(); return 0 ;;
    --cwd|--env|-e|--user|-u|--additional-gids|-g|--cap|-c|--memory*|--kernel-memory-tcp|\
    --pids-limit|--cpu*|--preserve-fds) COMPREPLY=(); return 0 ;;
    --log-format) _linjail_reply "text json" "$cur"; return 0 ;;
    --format|-f) [[ -n $cmd ]] && { _linjail_reply "table json" "$cur"; return 0; } ;;
    esac
    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then _linjail_reply "$_linjail_oci_global" "$cur"
        else _linjail_reply "$_linjail_oci_commands" "$cur"; fi
        return 0
    fi
    if [[ $cur == -* ]]; then
        opts=_linjail_oci_${cmd}
        _linjail_reply "${!opts} --help" "$cur"
        return 0
    fi
    case $cmd in
    list|features|spec) COMPREPLY=() ;;
    exec|ps) ((args == 0)) && _linjail_reply "$(linjail-oci "${root[@]}" list -q 2>/dev/null)" \
                 "$cur" ;;
    kill) if ((args == 0)); then
              _linjail_reply "$(linjail-oci "${root[@]}" list -q 2>/dev/null)" "$cur"
          else _linjail_reply "$_linjail_oci_signals" "$cur"; fi ;;
    create|run) ((args == 0)) && COMPREPLY=() ;;
    *) ((args == 0)) && _linjail_reply "$(linjail-oci "${root[@]}" list -q 2>/dev/null)" "$cur" ;;
    esac
}

complete -F _linjail_jail jail
complete -F _linjail_jls jls
complete -F _linjail_jexec jexec
complete -F _linjail_jailctl jailctl
complete -F _linjail_rctl rctl
complete -F _linjail_oci linjail-oci
