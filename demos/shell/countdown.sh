#!/bin/sh
# Counts down from `from` to zero, speaking Athanor's protocol with nothing but printf: a command experiment needs
# no client library. POSIX sh, no jq, no Python.
#
# Configuration: {"from": 5} (a whole number, default 5). Inside Athanor it is in the JSON file named by
# ATHANOR_CONFIG; by hand, give the file as the first argument, or nothing for the default:
#
#     sh demos/shell/countdown.sh                 # from 5
#     echo '{"from": 3}' > /tmp/c.json && sh demos/shell/countdown.sh /tmp/c.json
#
# Each step sends a log line and progress on the protocol pipe (the descriptor number is in ATHANOR_FD; Athanor
# uses 3) and echoes a line to standard output, which Athanor keeps as an info log. At the end it records the result
# `counted`. Outside Athanor (no ATHANOR_FD) the messages are printed as readable lines instead, like the Python
# client does: `[info] countdown from 5`, `progress 1/5 T-minus 4`, `result counted = 5`.
#
# Every protocol line is one printf ending in \n: one write, so a line is never split. The texts here hold only
# digits and fixed words; text from elsewhere would need JSON escaping (at least " and \ and control characters).

set -eu

if [ -n "${ATHANOR_PROTOCOL:-}" ] && [ "$ATHANOR_PROTOCOL" != 1 ]; then
    echo "countdown.sh speaks protocol 1, Athanor asked for $ATHANOR_PROTOCOL" >&2
    exit 2
fi

config_file=${ATHANOR_CONFIG:-${1:-}}
from=5
if [ -n "$config_file" ]; then
    # The configuration is a flat JSON object such as {"from": 5}: take the digits after "from":. Inside Athanor
    # the key is always there (the schema fills defaults); a file given by hand may leave it out.
    config=$(tr -d '\n' < "$config_file")
    case $config in
        *'"from"'*)
            from=$(printf '%s' "$config" | sed -n 's/.*"from"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p')
            if [ -z "$from" ]; then
                echo "countdown.sh: \"from\" in $config_file is not a whole number" >&2
                exit 2
            fi
            ;;
    esac
fi

# log LEVEL MESSAGE [METADATA]: a log line; METADATA is a JSON object.
log() {
    if [ -n "${ATHANOR_FD:-}" ]; then
        printf '{"type":"log","level":"%s","message":"%s"%s}\n' "$1" "$2" "${3:+,\"metadata\":$3}" >&"$ATHANOR_FD"
    else
        printf '[%s] %s%s\n' "$1" "$2" "${3:+ $3}"
    fi
}

# progress CURRENT TOTAL MESSAGE
progress() {
    if [ -n "${ATHANOR_FD:-}" ]; then
        printf '{"type":"progress","current":%d,"total":%d,"message":"%s"}\n' "$1" "$2" "$3" >&"$ATHANOR_FD"
    else
        printf 'progress %d/%d %s\n' "$1" "$2" "$3"
    fi
}

# result KEY VALUE: VALUE is JSON.
result() {
    if [ -n "${ATHANOR_FD:-}" ]; then
        printf '{"type":"result","key":"%s","value":%s}\n' "$1" "$2" >&"$ATHANOR_FD"
    else
        printf 'result %s = %s\n' "$1" "$2"
    fi
}

log info "countdown from $from" "{\"from\":$from}"
i=$from
while [ "$i" -gt 0 ]; do
    progress $((from - i)) "$from" "T-minus $i"
    log debug "tick" "{\"remaining\":$i}"
    echo "T-minus $i"
    sleep 0.2
    i=$((i - 1))
done
progress "$from" "$from" "liftoff"
echo "liftoff"
result counted "$from"
