#!/usr/bin/env bash
# Makes kube-front-proxy trusted by a kind cluster's kube-apiserver, for local testing.
#
#   deploy/kind/setup.sh [CLUSTER]      (default: kfp, as deploy/kind/cluster.yaml names it)
#
# 1. reads kind's front-proxy CA (the CA of kube-apiserver's --requestheader-client-ca-file)
#    and cluster CA out of the control-plane container;
# 2. signs a client certificate CN=front-proxy-client (the name in
#    --requestheader-allowed-names) for the proxy; the CA key is used in a temporary
#    folder and deleted;
# 3. writes config/kind.yaml: the proxy on 127.0.0.1:9443 in front of the kind
#    apiserver, trusting the quick start's OIDC issuer (npm start);
# 4. applies deploy/kind/rbac.yaml (the demo user's group may read pods in "demo").
#
# Needs: docker, kind's kubeconfig context (kind-CLUSTER), kubectl, openssl, node.
# Environment (for tests): KFP_KIND_OUT (certificate folder, default .dev/kind),
# KFP_KIND_CONFIG (config file, default config/kind.yaml).
set -euo pipefail

cluster=${1:-kfp}
node_container="$cluster-control-plane"
context="kind-$cluster"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${KFP_KIND_OUT:-$root/.dev/kind}
config=${KFP_KIND_CONFIG:-$root/config/kind.yaml}

say() { printf 'setup.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

for tool in docker kubectl openssl node; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not on PATH"
done
kubectl config get-contexts "$context" >/dev/null 2>&1 ||
  die "no kubeconfig context $context: create the cluster first (kind create cluster --config deploy/kind/cluster.yaml)"
docker exec "$node_container" true 2>/dev/null ||
  die "container $node_container is not running (kind get clusters lists the clusters)"

# kubeadm writes these flags; say what this cluster has, and stop if the proxy cannot work with it.
flags=$(docker exec "$node_container" cat /etc/kubernetes/manifests/kube-apiserver.yaml | grep -e '--requestheader-' || true)
say "kube-apiserver's request-header flags:"
printf '%s\n' "$flags" | sed 's/^ *- */    /' >&2
grep -q -e '--requestheader-allowed-names=.*front-proxy-client' <<<"$flags" ||
  die "kube-apiserver does not allow CN front-proxy-client (--requestheader-allowed-names); is this a kubeadm cluster?"
uid_flag=false
grep -q -e '--requestheader-uid-headers=' <<<"$flags" && uid_flag=true

mkdir -p "$out"
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

say "copying the front-proxy CA and the cluster CA out of $node_container"
docker exec "$node_container" cat /etc/kubernetes/pki/front-proxy-ca.crt >"$out/front-proxy-ca.crt"
docker exec "$node_container" cat /etc/kubernetes/pki/front-proxy-ca.key >"$work/front-proxy-ca.key"
docker exec "$node_container" cat /etc/kubernetes/pki/ca.crt >"$out/ca.crt"

say "signing $out/front-proxy-client.crt (CN=front-proxy-client, clientAuth, 30 days)"
openssl ecparam -name prime256v1 -genkey -noout -out "$work/client.key" 2>/dev/null
openssl req -new -key "$work/client.key" -subj /CN=front-proxy-client -out "$work/client.csr"
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$work/ext.cnf"
openssl x509 -req -in "$work/client.csr" -CA "$out/front-proxy-ca.crt" -CAkey "$work/front-proxy-ca.key" \
  -set_serial "0x$(openssl rand -hex 16)" -days 30 -sha256 -extfile "$work/ext.cnf" -out "$work/client.crt" 2>/dev/null
openssl verify -CAfile "$out/front-proxy-ca.crt" "$work/client.crt" >/dev/null
mv "$work/client.key" "$out/front-proxy-client.key"
mv "$work/client.crt" "$out/front-proxy-client.crt"
chmod 644 "$out/front-proxy-ca.crt" "$out/ca.crt" "$out/front-proxy-client.crt"

server=$(kubectl config view --raw --minify --context "$context" -o jsonpath='{.clusters[0].cluster.server}')
[[ $server == https://* ]] || die "unexpected API server URL in context $context: $server"

# Paths in the config are relative to its folder, so the file works from any clone.
rel() { node -e 'process.stdout.write(require("node:path").relative(process.argv[1], process.argv[2]))' "$(dirname "$config")" "$1"; }
mkdir -p "$(dirname "$config")"
cat >"$config" <<EOF
# kube-front-proxy in front of the kind cluster "$cluster" ($server).
# Written by deploy/kind/setup.sh; run it again after re-creating the cluster.
# Tokens come from the quick start's OIDC issuer: run \`npm start\` first.
# Every key: docs/configuration.md.
listen:
  # Beside the quick start's proxy (8443/8081).
  address: 127.0.0.1:9443
  tls:
    certFile: $(rel "$root/certs/dev/serving.crt")
    keyFile: $(rel "$root/certs/dev/serving.key")
  healthAddress: 127.0.0.1:9081

upstream:
  url: $server
  # kind's cluster CA, which signs kube-apiserver's serving certificate.
  caFile: $(rel "$out/ca.crt")
  # CN=front-proxy-client, signed by kind's front-proxy CA.
  clientCertFile: $(rel "$out/front-proxy-client.crt")
  clientKeyFile: $(rel "$out/front-proxy-client.key")
  identityHeaders:
    user: X-Remote-User
    group: X-Remote-Group
    extraPrefix: X-Remote-Extra-
    # Sent, but read only when kube-apiserver has --requestheader-uid-headers
    # (this cluster: $uid_flag; kubeadm does not set it).
    uid: X-Remote-Uid

authentication:
  allowImpersonationHeaders: false
  jwt:
    - issuer:
        url: https://127.0.0.1:5556
        audiences: [kubernetes]
        certificateAuthorityFile: $(rel "$root/certs/dev/serving-ca.crt")
      claimMappings:
        username: { claim: email, prefix: "" }
        groups: { claim: groups, prefix: "oidc:" }
        uid: { claim: sub }

audit:
  path: "-"
  format: combined
EOF
say "wrote $config"

say "applying deploy/kind/rbac.yaml (oidc:infrastructure may read pods in namespace demo)"
kubectl --context "$context" apply -f "$here/rbac.yaml" >&2

cat >&2 <<EOF

Next (the quick start gives the OIDC issuer and the demo user's token):
  npm start                                      # terminal 1: issuer on :5556, writes .dev/kubeconfig
  node dist/cli.js --config $(node -e 'process.stdout.write(require("node:path").relative(process.cwd(), process.argv[1]))' "$config")    # terminal 2: the proxy on :9443
  kubectl --kubeconfig .dev/kubeconfig --server https://127.0.0.1:9443 auth whoami
  kubectl --kubeconfig .dev/kubeconfig --server https://127.0.0.1:9443 get pods -n demo
EOF
