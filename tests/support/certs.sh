# This file contains the TLS certificates the tests make with openssl
# (sourced, never run): EC P-256 keys, valid two days.
#
#   certs_ca DIR NAME                  a self-signed CA "cachewarp test NAME": DIR/NAME.crt, .key
#   certs_issue DIR NAME CN CA [SAN]   a certificate for CN signed by CA (DIR/CA.crt, .key),
#                                      with subjectAltName SAN (e.g. "IP:127.0.0.1"):
#                                      DIR/NAME.crt and DIR/NAME.key (mode 0600)

certs_ca() {
	openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 2 \
		-subj "/CN=cachewarp test $2" -keyout "$1/$2.key" -out "$1/$2.crt" 2>/dev/null
}

certs_issue() {
	local dir=$1 name=$2 cn=$3 ca=$4 san=${5:-}
	openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -subj "/CN=$cn" \
		-keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null &&
		openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$ca.crt" -CAkey "$dir/$ca.key" \
			-CAcreateserial -days 2 -out "$dir/$name.crt" \
			${san:+-extfile <(printf 'subjectAltName=%s\n' "$san")} 2>/dev/null &&
		chmod 600 "$dir/$name.key"
}
