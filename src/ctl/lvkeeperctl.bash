# bash completion for lvkeeperctl(1). Volumes, volume groups and finding ids come from the running
# lvkeeperd (its JSON output), so they are what it watches and finds now.

__lvkeeperctl_json_field() { # FIELD COMMAND...: every "FIELD":"value" of a command's --json=short output
    local field=$1
    shift
    lvkeeperctl --json=short --timeout=5s "$@" 2>/dev/null |
        grep -o "\"$field\":\"[^\"]*\"" | sed -e "s/^\"$field\":\"//" -e 's/"$//'
}

__lvkeeperctl_volumes() {
    __lvkeeperctl_json_field MountPoint status
    paste -d/ <(__lvkeeperctl_json_field VolumeGroup status) <(__lvkeeperctl_json_field LogicalVolume status) |
        grep -v '^/\|/$'
}

_lvkeeperctl() {
    local commands="status grow add-disk remount diagnose repair monitor help"
    local options="--help --version --json= --no-legend --no-ask-password --timeout="
    # The words as typed: bash's COMP_WORDS are split at '=' and ':' too, which ids and options contain.
    local line=${COMP_LINE:0:COMP_POINT}
    local -a words
    read -ra words <<<"$line"
    [[ -z $line || $line == *[[:space:]] ]] && words+=("")
    local cur=${words[${#words[@]} - 1]}
    local verb="" nargs=0 i candidates
    for ((i = 1; i < ${#words[@]} - 1; i++)); do
        case ${words[i]} in
            -*) ;;
            *) if [[ -z $verb ]]; then verb=${words[i]}; else nargs=$((nargs + 1)); fi ;;
        esac
    done

    local IFS=$'\n'
    case $cur in
        --json=*) candidates=$(printf -- '--json=%s\n' pretty short off) ;;
        --timeout=*) candidates=$(printf -- '--timeout=%s\n' 10s 30s 5min 30min 1h infinity) ;;
        -*) candidates=${options// /$'\n'} ;;
        *)
            case ${verb:-none}:$nargs in
                none:*) candidates=${commands// /$'\n'} ;;
                status:0 | grow:0 | remount:0) candidates=$(__lvkeeperctl_volumes) ;;
                add-disk:0) candidates=$(__lvkeeperctl_json_field VolumeGroup status | sort -u) ;;
                repair:*) candidates=$(__lvkeeperctl_json_field id diagnose) ;;
                help:0) candidates=${commands// /$'\n'} ;;
                *) candidates="" ;;
            esac
            ;;
    esac
    COMPREPLY=($(compgen -W "$candidates" -- "$cur"))
    # bash replaces only what follows the last '=' or ':' of the word: hand it just that part.
    local typed=${cur%"${cur##*[=:]}"}
    for i in "${!COMPREPLY[@]}"; do
        COMPREPLY[i]=${COMPREPLY[i]#"$typed"}
    done
    if [[ ${#COMPREPLY[@]} == 1 && ${COMPREPLY[0]} == *= ]]; then
        compopt -o nospace 2>/dev/null
    fi
}

complete -F _lvkeeperctl lvkeeperctl
