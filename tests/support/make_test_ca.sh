#!/usr/bin/env bash
# Creates a throwaway certificate authority and certificates signed by it, for tests that
# talk TLS to local servers (tests/support/https_server.py).
#
#   make_test_ca.sh DIR
#
# DIR/ca.pem, ca.key                  the test CA (trust it with ca_file)
# DIR/server.pem, server.key          for 127.0.0.1 and localhost (IP and DNS subjectAltNames)
# DIR/wrong-host.pem, wrong-host.key  signed by the same CA, but for wrong-host.invalid only
# DIR/other-ca.pem, other-ca.key      an unrelated CA that signed nothing the servers use
#
# Certificates live two days: long enough for any test run, useless if they leak.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
if ! command -v openssl >/dev/null 2>&1; then
    echo "$0: openssl is not installed (apt-get install openssl)" >&2
    exit 3
fi

dir=$1
mkdir -p "$dir"
cd "$dir"

# Our own config, so the system openssl.cnf's default extensions (which mark every
# req -x509 certificate as a CA) cannot leak into the server certificates.
cat >openssl.cnf <<'CNF'
[req]
distinguished_name = subject
prompt = no

[subject]
CN = tattle test

[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1, DNS:localhost

[wrong_host_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:wrong-host.invalid
CNF

key_options=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

make_ca() {
    local name=$1 subject=$2
    openssl req -config openssl.cnf -x509 "${key_options[@]}" -days 2 \
        -subj "$subject" -extensions ca_ext -keyout "$name.key" -out "$name.pem" 2>/dev/null
}

make_leaf() {
    local name=$1 subject=$2 extensions=$3
    openssl req -config openssl.cnf -x509 "${key_options[@]}" -days 2 \
        -CA ca.pem -CAkey ca.key -subj "$subject" -extensions "$extensions" \
        -keyout "$name.key" -out "$name.pem" 2>/dev/null
}

make_ca ca "/CN=tattle test CA"
make_ca other-ca "/CN=tattle unrelated test CA"
make_leaf server "/CN=localhost" server_ext
make_leaf wrong-host "/CN=wrong-host.invalid" wrong_host_ext
chmod 600 ./*.key

openssl verify -CAfile ca.pem server.pem wrong-host.pem >/dev/null
