#!/bin/bash
# One row per op and per verb (issue 13): an op's wire name is written once in C (its row in
# include/purged/proto.h), and purgectl's --help (generated from its verbs table) agrees with the
# bash completion (run for real) and with purgectl(8). No daemon needed.
. "$(dirname "$0")/lib.sh"
S=${PURGED_SOURCE_DIR:?set PURGED_SOURCE_DIR to the source tree}

# ---------------------------------------------------------------- ops
OPS=$(sed -n 's/^[[:space:]]*X([A-Z_]*, *[a-z_]*, *"\([a-z.]*\)".*/\1/p' "$S/include/purged/proto.h")
check "the op rows are found ($(echo $OPS | wc -w) ops)" test "$(echo "$OPS" | wc -l)" -ge 15
for op in $OPS; do
	# Quoted as a string anywhere else in the C sources (tests aside): a second place to keep in step.
	# One-word ops (status, plan, purge, reload, metrics) share their word with purgectl's verbs, task
	# operations and JSON keys, which are other vocabularies: the rule is checked on the namespaced ones.
	if [[ $op == *.* ]]; then
		n=$(cd "$S" && grep -rF --include='*.c' --include='*.h' "\"$op\"" common ctl daemon include proto | wc -l)
		check "op $op: its name is written once in C (found $n)" test "$n" = 1
	fi
	check "op $op: HACKING.md's op list names it" grep -qF "\`$op\`" "$S/HACKING.md"
done
# ... and HACKING.md lists no op that is not a row.
for op in $(sed -n '/^<!-- ops -->/,/^<!-- \/ops -->/p' "$S/HACKING.md" | grep -o '^| `[a-z.]*`' | tr -d '|` '); do
	check "HACKING.md's op $op is a row" grep -qx "$op" <<<"$OPS"
done

# ---------------------------------------------------------------- verbs
HELP=$("$T/bin/purgectl" --help)
# Command lines: two spaces, then a lowercase word, between "Commands:" and "Options:".
# A verb is the lowercase words its line starts with (the help column starts at 35 when the head is short).
VERBS=$(printf '%s\n' "$HELP" | awk '/^Commands:/ { f = 1; next } /^Options:/ { f = 0 }
	f && /^  [a-z]/ {
		h = substr($0, 3)
		if (length($0) > 34 && substr($0, 3, 32) ~ /  $/) h = substr($0, 3, 32)
		n = split(h, w, " "); v = ""
		for (i = 1; i <= n && w[i] ~ /^[a-z]+$/; i++) v = v (v == "" ? "" : " ") w[i]
		print v
	}' | sort -u)
check "purgectl --help lists its verbs ($(echo "$VERBS" | wc -l))" test "$(echo "$VERBS" | wc -l)" -ge 15
FIRST=$(echo "$VERBS" | cut -d' ' -f1 | sort -u)

# The completion, run for real: a minimal _init_completion (bash-completion's is not needed).
complete_words() {
	bash -c '
		_init_completion() { cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }
		_filedir() { :; }
		complete() { :; }
		purgectl() { return 1; }  # no daemon: dynamic lists stay empty
		. "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		_purgectl
		printf "%s\n" "${COMPREPLY[@]}"' _ "$S/packaging/completion/purgectl.bash" "$@" | sort -u
}
got=$(complete_words purgectl "")
check "completion offers exactly --help's first words (offers: $(echo $got))" test "$got" = "$FIRST"
for w in $(echo "$VERBS" | grep ' ' | cut -d' ' -f1 | sort -u); do
	want=$(echo "$VERBS" | awk -v w="$w" '$1 == w { print $2 }' | sort -u)
	got=$(complete_words purgectl "$w" "")
	check "completion of '$w' offers exactly --help's ($(echo $want))" test "$got" = "$want"
done
want=$(printf '%s\n' "$HELP" | grep -o -- '--[a-z][a-z-]*' | sort -u)
got=$(complete_words purgectl "--")
check "completion's options are exactly those --help names" test "$got" = "$want"

# purgectl(8): every verb has its entry (*name* at the start of a line), and no entry is not a verb.
MAN=$S/packaging/man/purgectl.8.scd
while read -r v; do
	check "purgectl(8) documents '$v'" grep -q "^\*$v\*" "$MAN"
done <<<"$VERBS"
for v in $(sed -n '/^# COMMANDS/,/^# OPTIONS/p' "$MAN" | sed -n 's/^\*\([a-z][a-z ]*\)\*.*/\1/p' | tr ' ' '_'); do
	check "purgectl(8)'s '${v//_/ }' is a verb" grep -qx "${v//_/ }" <<<"$VERBS"
done

# The table's checks, for one verb of each kind.
expect_code 2 "a verb's stray option is refused" "$T/bin/purgectl" -s "$T/none.sock" status --replace
expect_contains "... saying which" "$ERR" "--replace does not go with 'status'"
expect_code 2 "a missing argument is refused with the verb's usage" "$T/bin/purgectl" -s "$T/none.sock" plan
expect_contains "... naming it" "$ERR" "usage: purgectl plan TARGET"
expect_code 2 "crdb purge without --instances" "$T/bin/purgectl" -s "$T/none.sock" crdb purge db1 --yes
expect_contains "... says --instances is required" "$ERR" "--instances is required"
expect_code 2 "an unknown second word" "$T/bin/purgectl" -s "$T/none.sock" crdb frob
expect_contains "... gives the family's usage" "$ERR" "usage: purgectl crdb"
finish
