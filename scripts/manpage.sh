#!/usr/bin/env bash
# Writes the cachewarp(1) manual page (roff) on standard output, generated from
# the binary's own --help texts, so the page says what the binary does.
#   scripts/manpage.sh build/cachewarp > cachewarp.1
set -euo pipefail
bin=${1:?usage: manpage.sh PATH-TO-CACHEWARP}

# roff-escapes a text block: backslashes, and lines starting with . or '.
escape() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }

version=$("$bin" --version | awk '{print $2}')
commands=$("$bin" --help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}')

cat <<ROFF
.TH CACHEWARP 1 "" "cachewarp $version" "User Commands"
.SH NAME
cachewarp \\- change-data-capture and replication daemon
.SH SYNOPSIS
.nf
ROFF
"$bin" --help | sed -n '/^usage:/,/^$/p' | sed '/^$/d' | escape
cat <<ROFF
.fi
.SH DESCRIPTION
cachewarp captures every change from PostgreSQL (logical replication) and
MongoDB (change streams) sources, writes each change once into a PostgreSQL
oplog hub, and applies the hub to its targets: one SQLite cache database per
entity. One YAML file configures it; a REST API and Prometheus metrics report
on it. The documentation is in the source tree's docs/ directory.
.SH COMMANDS
ROFF
for command in $commands; do
	printf '.SS %s\n.nf\n' "$command"
	"$bin" "$command" --help | escape
	printf '.fi\n'
done
cat <<ROFF
.SH FILES
.TP
.I cachewarp.yaml
The configuration (\\fB-c FILE\\fR); every key is listed by \\fBcachewarp config reference\\fR.
.TP
.I /etc/cachewarp/NAME.yaml
The configuration of the systemd unit \\fBcachewarp@NAME.service\\fR.
.SH EXIT STATUS
0 on success or a clean shutdown, 1 when the daemon failed or gave up, 2 for a
usage or configuration error.
.SH SEE ALSO
.BR systemd.service (5)
ROFF
