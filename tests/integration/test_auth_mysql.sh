#!/usr/bin/env bash
# Credentials from `authentication` entries for a MySQL/MariaDB source
# (tests/support/mariadb.sh, here with TLS), into a SQLite cache through a
# PostgreSQL hub: `username_password` with `password_file`; `command` whose
# command prints the password, and after the password changed and the
# connections were killed, the refused login runs the command again and
# replication goes on; `certificate` for a user that REQUIREs its X.509
# subject, while a certificate from another CA fails with a clear message.
# No password appears in any output.
# shellcheck source=../support/e2e.sh
. "${CW_SUPPORT_DIR:-$(cd "$(dirname "$0")/../support" && pwd)}/e2e.sh"

E2E_STOP=e2e_stop_daemon
e2e_init auth-mysql
e2e_start_pg
# shellcheck source=../support/certs.sh
. "$support/certs.sh"
certs=$work/certs
mkdir -p "$certs"
certs_ca "$certs" ca && certs_ca "$certs" other_ca &&
	certs_issue "$certs" server 127.0.0.1 ca "IP:127.0.0.1,DNS:localhost" &&
	certs_issue "$certs" client cwcert ca && certs_issue "$certs" stranger cwcert other_ca ||
	{ fail "openssl could not make the certificates"; exit 1; }
MARIADB_EXTRA="--ssl-ca=$certs/ca.crt --ssl-cert=$certs/server.crt --ssl-key=$certs/server.key" \
	e2e_start_mariadb
my_host=${my_url#*@}
my_host=${my_host%%/*}

my "CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(20));
INSERT INTO items VALUES (1, 'one');
CREATE USER 'cwpw'@'127.0.0.1' IDENTIFIED BY 'my-File-Pass-55';
CREATE USER 'cwcmd'@'127.0.0.1' IDENTIFIED BY 'my-Cmd-Pass-66';
CREATE USER 'cwcert'@'127.0.0.1' REQUIRE SUBJECT '/CN=cwcert' AND ISSUER '/CN=cachewarp test ca';
GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'cwpw'@'127.0.0.1', 'cwcmd'@'127.0.0.1',
	'cwcert'@'127.0.0.1';
GRANT SELECT ON app.* TO 'cwpw'@'127.0.0.1', 'cwcmd'@'127.0.0.1', 'cwcert'@'127.0.0.1';" ||
	fail "set up mariadb"
for hub in hub_pw hub_cmd hub_cert hub_stranger; do
	e2e_sql postgres "CREATE DATABASE $hub" >/dev/null || fail "create database $hub"
done
echo "my-File-Pass-55" >"$work/pw.txt"
echo "my-Cmd-Pass-66" >"$work/cmd_password"
secrets="my-File-Pass-55 my-Cmd-Pass-66 my-Cmd-Pass-77"

write_config() { # write_config NAME AUTH_ID
	cat >"$work/$1.yaml" <<YAML
hub:
  url: $base/hub_$1
sources:
  - name: app_my
    type: mysql
    url: mysql://$my_host/app
    auth_id: $2
entities:
  - {name: items, source: app_my, table: items}
targets:
  - name: node1
    type: sqlite
    dir: $work/dbs_$1
api: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
capture: {flush_interval: 20ms}
apply: {poll_interval: 100ms}
retry: {initial: 50ms, max: 500ms, give_up_after: 10m}
authentication:
  - id: pw
    type: username_password
    config: {username: cwpw, password_file: pw.txt}
  - id: token
    type: command
    config: {username: cwcmd, command: "cat '$work/cmd_password'"}
  - id: cert
    type: certificate
    config: {username: cwcert, cert_file: certs/client.crt, key_file: certs/client.key,
             ca_file: certs/ca.crt}
  - id: stranger
    type: certificate
    config: {username: cwcert, cert_file: certs/stranger.crt, key_file: certs/stranger.key,
             ca_file: certs/ca.crt}
YAML
}
start_daemon() {
	"$bin" run -c "$work/$1.yaml" >"$work/$1.out" 2>"$work/$1.err" &
	daemon=$!
}
has_row() { # has_row NAME ID VALUE
	same "$(sqlite3 "$work/dbs_$1/items/db.sqlite" "SELECT v FROM items WHERE id = '$2'" 2>/dev/null)" "$3"
}

# ---- username_password with password_file ------------------------------------
write_config pw pw
start_daemon pw
wait_for "the first row through username_password" has_row pw 1 one
my "INSERT INTO items VALUES (2, 'two')"
wait_for "a streamed row through username_password" has_row pw 2 two
e2e_stop_daemon

# ---- command, and again after the password changed ---------------------------
write_config cmd token
start_daemon cmd
wait_for "the first row through command auth" has_row cmd 2 two
my "ALTER USER 'cwcmd'@'127.0.0.1' IDENTIFIED BY 'my-Cmd-Pass-77'" || fail "alter user"
echo "my-Cmd-Pass-77" >"$work/cmd_password"
for id in $(my "SELECT id FROM information_schema.processlist WHERE user = 'cwcmd'"); do
	my "KILL $id" 2>/dev/null
done
my "INSERT INTO items VALUES (3, 'three')"
wait_for "a row after the password changed" has_row cmd 3 three
grep -q 'refused the credentials of authentication \\"token\\": running its command again' \
	"$work/cmd.err" || fail "no line saying the command ran again after a refused login"
e2e_stop_daemon

# ---- certificate: TLS with a client certificate the user REQUIREs ------------
# (cwcert has no password: only a connection with that certificate logs in)
write_config cert cert
start_daemon cert
wait_for "the rows through certificate auth" has_row cert 3 three
my "INSERT INTO items VALUES (4, 'four')"
wait_for "a streamed row through certificate auth" has_row cert 4 four
e2e_stop_daemon

# ---- a certificate from another CA: refused, and the log says which entry ----
write_config stranger stranger
start_daemon stranger
stranger_refused() {
	grep -q 'could not connect to mysql.*TLS with the client certificate of authentication \\"stranger\\" failed' \
		"$work/stranger.err" && echo ok
}
wait_for "a clear message for the stranger's certificate" stranger_refused
e2e_stop_daemon

for secret in $secrets; do
	grep -l -- "$secret" "$work"/*.out "$work"/*.err 2>/dev/null &&
		fail "the password $secret appears in the output above"
done

[ "$failures" -eq 0 ] && echo "auth (mysql): all checks passed"
exit $((failures > 0))
