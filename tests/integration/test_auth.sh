#!/usr/bin/env bash
# Credentials from `authentication` entries, end to end, against a real
# PostgreSQL 15 with ssl=on and pg_hba `hostssl ... cert clientcert=verify-full`
# (a CA, the server's and the clients' certificates made here with openssl):
# a PostgreSQL source -> hub -> SQLite target replicates with `certificate`
# auth; a client certificate from another CA fails with a clear message;
# `username_password` with `password_file` (for the hub as well); `command`
# auth whose command prints the password, and after the password changed and
# the connection dropped, the refused login runs the command again and
# replication goes on. No password appears in any output.
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"

E2E_STOP=e2e_stop_daemon
stop_daemon() { e2e_stop_daemon; }
e2e_init auth
e2e_start_pg
hostport=${base#*://}
hostport=${hostport#*@}
sql() { e2e_sql postgres "$1"; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# ---- certificates ---------------------------------------------------------
# shellcheck source=../support/certs.sh
. "$support/certs.sh"
certs=$work/certs
mkdir -p "$certs"
certs_ca "$certs" ca && certs_ca "$certs" other_ca &&
	certs_issue "$certs" server 127.0.0.1 ca "IP:127.0.0.1,DNS:localhost" &&
	certs_issue "$certs" client certuser ca && certs_issue "$certs" stranger certuser other_ca ||
	{ fail "openssl could not make the certificates"; exit 1; }

# The server's files in its data directory, owned by the postgres user.
data=$work/pg/data
for f in server.crt server.key ca.crt; do
	cp "$certs/$f" "$data/$f" && chmod 600 "$data/$f"
	[ "$(id -u)" -eq 0 ] && chown postgres: "$data/$f"
done
for setting in "ssl_cert_file = 'server.crt'" "ssl_key_file = 'server.key'" \
	"ssl_ca_file = 'ca.crt'" "ssl = on"; do
	sql "ALTER SYSTEM SET $setting" || fail "ALTER SYSTEM SET $setting"
done
sql "CREATE ROLE certuser LOGIN SUPERUSER REPLICATION" &&
	sql "CREATE ROLE pwuser LOGIN SUPERUSER REPLICATION PASSWORD 'pw-From-File-77'" &&
	sql "CREATE ROLE cmduser LOGIN SUPERUSER REPLICATION PASSWORD 'first-Cmd-Pass-41'" ||
	fail "create roles"
hba=$(sql "SHOW hba_file")
sql "COPY (VALUES ('local all all trust'),
       ('hostssl all certuser 127.0.0.1/32 cert clientcert=verify-full'),
       ('host all certuser 127.0.0.1/32 reject'),
       ('host all pwuser 127.0.0.1/32 scram-sha-256'),
       ('host all cmduser 127.0.0.1/32 scram-sha-256'),
       ('host all all 127.0.0.1/32 trust'), ('host replication all 127.0.0.1/32 trust'))
     TO '$hba'" && sql "SELECT pg_reload_conf()" >/dev/null || fail "could not write pg_hba.conf"
ssl_on() { same "$(sql "SHOW ssl")" on; }
wait_for "ssl on after reload" ssl_on
e2e_sql app "CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items VALUES (1, 'one')" ||
	fail "create table"
for hub in hub_cert hub_pw hub_cmd hub_wrong; do
	sql "CREATE DATABASE $hub" >/dev/null || fail "create database $hub"
done

# The certificate is really required: without one, and with the stranger's, the server refuses.
"$psql" -X -Atq "postgresql://certuser@$hostport/app?sslmode=require" -c "SELECT 1" \
	>/dev/null 2>&1 && fail "certuser connected without a client certificate"

echo "pw-From-File-77" >"$work/pw.txt"
echo "first-Cmd-Pass-41" >"$work/cmd_password"
secrets="pw-From-File-77 first-Cmd-Pass-41 second-Cmd-Pass-42"

# write_config NAME AUTH_ID [HUB_AUTH_ID]: source app_pg as the user of AUTH_ID, its own hub,
# slot, publication and cache directory.
write_config() {
	local name=$1 auth_id=$2
	E2E_HUB_URL=$base/hub_$name E2E_SOURCE_URL="postgresql://$hostport/app" \
		e2e_config "$work/$name.yaml" items public.items
	sed -i "s|^    url: postgresql://$hostport/app|&\n    auth_id: $auth_id\n    slot: slot_$name\n    publication: pub_$name|; s|dir: $work/dbs|dir: $work/dbs_$name|" \
		"$work/$name.yaml"
	cat >>"$work/$name.yaml" <<YAML
retry: {initial: 50ms, max: 500ms, give_up_after: 10m}
authentication:
  - id: cert
    type: certificate
    config: {username: certuser, cert_file: certs/client.crt, key_file: certs/client.key,
             ca_file: certs/ca.crt}
  - id: stranger
    type: certificate
    config: {username: certuser, cert_file: certs/stranger.crt, key_file: certs/stranger.key,
             ca_file: certs/ca.crt}
  - id: pw
    type: username_password
    config: {username: pwuser, password_file: pw.txt}
  - id: token
    type: command
    config: {username: cmduser, command: "cat '$work/cmd_password'", refresh: 15m}
YAML
	if [ -n "${3:-}" ]; then
		sed -i "s|^  url: $base/hub_$name|  url: postgresql://$hostport/hub_$name\n  auth_id: $3|" \
			"$work/$name.yaml"
	fi
}

start_daemon() { # start_daemon NAME
	"$bin" run -c "$work/$1.yaml" >"$work/$1.out" 2>"$work/$1.err" &
	daemon=$!
}

cached() { # cached NAME ID: the value of row ID in NAME's cache
	sqlite3 "$work/dbs_$1/items/db.sqlite" "SELECT v FROM items WHERE id = '$2'" 2>/dev/null
}
has_row() { same "$(cached "$1" "$2")" "$3"; }

# Saves /v1/status and /metrics of the running daemon NAME as NAME.status and NAME.metrics.
save_api() { # save_api NAME
	local port
	port=$(grep -o '"component":"api","msg":"listening".*"port":"[0-9]*"' "$work/$1.err" |
		grep -o '[0-9]*"$' | tr -d '"')
	curl -s "http://127.0.0.1:$port/v1/status" >"$work/$1.status" &&
		curl -s "http://127.0.0.1:$port/metrics" >"$work/$1.metrics" ||
		fail "could not read the API of $1 (port \"$port\")"
}

# ---- certificate: replicates through verify-full and a client certificate --
write_config cert cert
"$bin" config check -c "$work/cert.yaml" >"$work/cert.check" 2>&1 ||
	fail "config check of the certificate configuration: $(cat "$work/cert.check")"
start_daemon cert
wait_for "the first row through certificate auth" has_row cert 1 one
e2e_sql app "INSERT INTO items VALUES (2, 'two')"
wait_for "a live change through certificate auth" has_row cert 2 two
ssl_used() {
	same "$(sql "SELECT count(*) > 0 FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
	             WHERE a.usename = 'certuser' AND s.ssl AND s.client_dn = '/CN=certuser'")" t
}
wait_for "the source's connections use TLS with the client certificate" ssl_used
stop_daemon

# ---- a client certificate from another CA: refused, and the log says why ---
write_config wrong stranger
start_daemon wrong
refused() {
	grep -q 'could not connect to source \\"app_pg\\".*SSL error.*TLS with the client certificate of authentication \\"stranger\\" failed: check its cert_file, key_file and ca_file' \
		"$work/wrong.err" && echo ok
}
wait_for "a clear message for the stranger's certificate" refused
[ -e "$work/dbs_wrong/items/db.sqlite" ] && [ -n "$(cached wrong 1)" ] &&
	fail "a row replicated with a certificate from another CA"
save_api wrong
stop_daemon

# ---- username_password with password_file, for the source and the hub ------
write_config pw pw pw
start_daemon pw
wait_for "the first row through username_password" has_row pw 1 one
hub_user() { same "$(sql "SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = 'hub_pw' AND usename = 'pwuser'")" t; }
wait_for "the hub connected as the password file's user" hub_user
stop_daemon

# ---- command: prints the password; run again after a refused login ---------
write_config cmd token
start_daemon cmd
wait_for "the first row through command auth" has_row cmd 1 one
sql "ALTER ROLE cmduser PASSWORD 'second-Cmd-Pass-42'" || fail "alter role"
echo "second-Cmd-Pass-42" >"$work/cmd_password"
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'cmduser'" >/dev/null
e2e_sql app "INSERT INTO items VALUES (3, 'three')"
wait_for "a change after the password changed" has_row cmd 3 three
grep -q 'refused the credentials of authentication \\"token\\": running its command again' \
	"$work/cmd.err" || fail "no line saying the command ran again after a refused login"
runs=$(grep -c 'obtained a new password or token from its command' "$work/cmd.err")
[ "$runs" -ge 2 ] || fail "the command ran $runs times, want at least 2"
save_api cmd
stop_daemon

# ---- no secret anywhere in what cachewarp printed ---------------------------
for secret in $secrets; do
	if grep -l -- "$secret" "$work"/*.out "$work"/*.err "$work"/*.check "$work"/*.status \
		"$work"/*.metrics 2>/dev/null; then
		fail "the password $secret appears in the output above"
	fi
done
key_line=$(sed -n 2p "$certs/client.key")
grep -l -- "$key_line" "$work"/*.out "$work"/*.err 2>/dev/null && fail "the private key appears in the output"
grep -q 'client certificate of authentication \\"stranger\\"' "$work/wrong.status" ||
	fail "/v1/status does not say which certificate failed: $(head -c 600 "$work/wrong.status")"
show=$("$bin" config show -c "$work/cmd.yaml" 2>&1)
echo "$show" | grep -q "password_file: \"$work/pw.txt\"" || fail "config show: $show"

[ "$failures" -eq 0 ] && echo "auth: all checks passed"
exit $((failures > 0))
