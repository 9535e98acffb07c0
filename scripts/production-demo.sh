#!/usr/bin/env bash
# The README's "Stamping in production", run as written on a bundled photo: a chain from
# "your own CA" (made here with keygen --alg es256), checked; stamping with its key file,
# then through an external signer (openssl, as a KMS or PKCS#11 script would); a time stamp
# from a real RFC 3161 authority on loopback (scripts/local_tsa.py: openssl ts); verifying
# with the CA, an allowed list and a trust settings file; c2pa's own report.
# Needs openssl and python3 with `cryptography` (for the local authority).
set -euo pipefail
cd "$(dirname "$0")/.."
hm="${HALLMARK:-}"
if [ -z "$hm" ]; then
  cargo build --release --locked -q -p hallmark-cli
  hm="${CARGO_TARGET_DIR:-target}/release/hallmark"
fi
# The script changes folder below: a relative path to the binary must not break it.
case "$hm" in /*) ;; *) hm="$PWD/$hm" ;; esac
work=$(mktemp -d "${TMPDIR:-/tmp}/hallmark-production.XXXXXX")
photo=testdata/photos/p02_coffee_600x400.png
"$hm" keygen --out "$work/keys" -q                      # the watermark key (and a local signer)
"$hm" keygen --out "$work/ca" --alg es256 -q            # stands in for your CA's issued chain
cp "$work/ca/c2pa-chain.pem" "$work/issued-chain.pem"
cp "$work/ca/c2pa-signing.key" "$work/signer.key"; chmod 600 "$work/signer.key"
cd "$work"
echo "== hallmark cert check issued-chain.pem"
"$hm" cert check issued-chain.pem
echo
echo "== stamp with your own chain and its key file"
"$hm" stamp "$OLDPWD/$photo" -o out.png --keys keys --cert issued-chain.pem --private-key signer.key
echo
echo "== stamp through an external signer (the key stays with the command)"
"$hm" stamp "$OLDPWD/$photo" -o out-external.png --keys keys --cert issued-chain.pem \
    --signer-command "openssl dgst -sha256 -sign $work/signer.key" --signer-timeout 10
echo
echo "== a time-stamped manifest (a local RFC 3161 authority: openssl ts)"
python3 "$OLDPWD/scripts/local_tsa.py" "$work" > tsa.out &
tsa_pid=$!
trap 'kill $tsa_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s tsa.out ] && [ "$(wc -l < tsa.out)" -ge 2 ] && break; sleep 0.1; done
tsa_url=$(sed -n 1p tsa.out); tsa_root=$(sed -n 2p tsa.out)
"$hm" sign "$OLDPWD/$photo" -o photo.signed.png --cert issued-chain.pem --private-key signer.key \
    --tsa-url "$tsa_url"
echo
echo "== verify: trusting the CA, then the signer alone (allowed list), then a settings file"
cat ca/c2pa-ca.pem "$tsa_root" > anchors.pem
"$hm" verify out.png out-external.png --keys keys --trust ca/c2pa-ca.pem
openssl x509 -in issued-chain.pem -out signer-cert.pem
"$hm" verify out-external.png --allowed-list signer-cert.pem
printf '[trust]\nuser_anchors = "anchors.pem"\n' > trust.toml
"$hm" verify photo.signed.png --trust-settings trust.toml -v | grep -E 'trusted|timeStamp' || true
echo
echo "== c2pa's own report, as c2patool prints it (first lines)"
"$hm" verify --c2pa-report out.png | head -12
echo
echo "production demo done in $work"
