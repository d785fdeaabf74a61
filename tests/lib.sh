# tests/lib.sh: sourced by the shell tests.  check NAME CMD... passes when CMD succeeds;
# check_fails NAME STATUS CMD... passes when CMD exits with STATUS; finish prints the count.
set -u
export LC_ALL=C
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
BIN=$PWD/bin
DATA=$PWD/tests/data
TINY=$DATA/models/tiny
UNTIED=$DATA/models/untied
export QVL_MODEL=$TINY
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qvl-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
_passed=0 _failed=0

check() {
	local name=$1; shift
	if "$@" >"$TMP/.out" 2>&1; then _passed=$((_passed + 1))
	else _failed=$((_failed + 1)); echo "FAIL $name"; tail -n 20 "$TMP/.out"; fi
}

check_fails() {
	local name=$1 want=$2; shift 2
	"$@" >"$TMP/.out" 2>&1
	local rc=$?
	if [[ $rc -eq $want ]]; then _passed=$((_passed + 1))
	else _failed=$((_failed + 1)); echo "FAIL $name: exit $rc, want $want"; tail -n 20 "$TMP/.out"; fi
}

# check_grep NAME PATTERN CMD...: CMD's output (stdout and stderr) matches PATTERN.
check_grep() {
	local name=$1 pat=$2; shift 2
	"$@" >"$TMP/.out" 2>&1
	if grep -qE -- "$pat" "$TMP/.out"; then _passed=$((_passed + 1))
	else _failed=$((_failed + 1)); echo "FAIL $name: no /$pat/ in:"; tail -n 20 "$TMP/.out"; fi
}

# check_stderr NAME STATUS REGEX CMD...: CMD exits with STATUS and its stderr matches REGEX
# (an empty REGEX: stderr is empty).
check_stderr() {
	local name=$1 want=$2 pat=$3; shift 3
	"$@" >"$TMP/.stdout" 2>"$TMP/.stderr"
	local rc=$?
	if [[ $rc -ne $want ]]; then
		_failed=$((_failed + 1)); echo "FAIL $name: exit $rc, want $want"; tail -n 5 "$TMP/.stderr"
	elif [[ -z $pat && -s $TMP/.stderr ]]; then
		_failed=$((_failed + 1)); echo "FAIL $name: stderr not empty:"; tail -n 5 "$TMP/.stderr"
	elif [[ -n $pat ]] && ! grep -qE -- "$pat" "$TMP/.stderr"; then
		_failed=$((_failed + 1)); echo "FAIL $name: no /$pat/ in stderr:"; tail -n 5 "$TMP/.stderr"
	else
		_passed=$((_passed + 1))
	fi
}

finish() {
	echo "$_passed passed, $_failed failed"
	[[ $_failed -eq 0 ]]
}
