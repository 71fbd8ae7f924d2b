# This file contains what the `cachewarp verify` end-to-end tests share
# (sourced after e2e.sh, never run): running verify on the test's
# configuration and reading its JSON report, the PostgreSQL target database
# "tgt" and the MongoDB target database "backup", and a verify while the
# source's rows keep changing.
#
#   verify [ARG...]              # cachewarp verify -c $work/cw.yaml ARG..., stderr to $work/verify.log
#   kinds JSON ENTITY TARGET     # the pair's sample as sorted KEY:KIND[/COLUMN+...], comma-separated
#   tsql SQL                     # psql -At on the target database "tgt" (the test creates it)
#   backup                       # cw-mongo-exec on the MongoDB database "backup", commands on stdin
#   pg_rows_in TABLE N           # "ok" when tgt's public.TABLE has N rows
#   backup_count COLLECTION N    # "ok" when the backup's COLLECTION has N documents
#   verify_under_churn ENTITY WANT CHANGE [PAUSE]
#                                # runs CHANGE 1, CHANGE 2, ... (PAUSE s apart, 0.02) while
#                                # `verify --entity ENTITY --json` runs; fails unless it exits 0
#                                # and compares WANT pairs
#   verify_stop                  # for E2E_STOP: stops the churn and SIGKILLs $daemon
#   verify_finish NAME           # exits 1 with the logs' tails when a check failed, else says so
verify() { "$bin" verify -c "$work/cw.yaml" "$@" 2>>"$work/verify.log"; }

kinds() {
	python3 -c 'import json,sys; r=[p for p in json.loads(sys.argv[1]) if p["entity"]==sys.argv[2] and p["target"]==sys.argv[3]][0]
print(",".join(sorted(s["key"] + ":" + s["kind"] + ("/" + "+".join(s["columns"]) if s.get("columns") else "") for s in r["sample"])))' "$1" "$2" "$3"
}

tsql() { e2e_sql tgt "$1"; }
backup() { "$root/build/cw-mongo-exec" "$mongo_url" backup; }
pg_rows_in() { [ "$(tsql "SELECT count(*) FROM public.$1")" = "$2" ] && echo ok; }
backup_count() { [ "$(echo "{\"count\": \"$1\"}" | backup)" = "$2" ] && echo ok; }

churn=
verify_under_churn() {
	local entity=$1 want=$2 change=$3 pause=${4:-0.02} out rc
	(
		i=0
		while :; do
			i=$((i + 1))
			"$change" "$i" >/dev/null 2>&1
			sleep "$pause"
		done
	) &
	churn=$!
	sleep 1
	out=$(verify --entity "$entity" --json); rc=$?
	kill "$churn" 2>/dev/null
	wait "$churn" 2>/dev/null
	churn=
	[ "$(python3 -c 'import json,sys; print(len(json.loads(sys.argv[1])))' "$out")" = "$want" ] ||
		fail "verify under churn compared $out, want $want pairs of $entity"
	[ $rc -eq 0 ] || fail "verify under churn exit $rc, want 0: $out"
	echo "verify under churn: $out" >>"$work/verify.log"
}

verify_stop() {
	[ -n "$churn" ] && kill "$churn" 2>/dev/null
	[ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null
}

verify_finish() {
	[ "$failures" -eq 0 ] || { tail -n 30 "$work/run.log" "$work/verify.log" >&2; exit 1; }
	echo "$1: all checks passed"
}
