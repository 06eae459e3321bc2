#!/usr/bin/env bash
# Builds kube-apiserver and etcd for test/kube at the versions pinned in
# scripts/kube/*/go.mod, with the Go toolchain on this machine, into
# .cache/kube/ (or $KFP_KUBE_CACHE), and prints where they are:
#
#   KUBE_APISERVER=/abs/path/kube-apiserver
#   ETCD=/abs/path/etcd
#
# A binary already built from the same inputs (go.mod, go.sum, main.go, this
# script, the Go version) is reused. KUBE_APISERVER or ETCD set in the
# environment wins over building that one. Progress goes to stderr.
#
# Usage: scripts/kube/build.sh            build what is missing, print paths
#        scripts/kube/build.sh --check    exit 0 if nothing needs building
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${KFP_KUBE_CACHE:-$root/.cache/kube}
check_only=false
[[ ${1:-} == --check ]] && check_only=true

# The version of a module as pinned in the go.mod of one of our builds.
pinned() { awk -v m="$2" '$1 == "require" && $2 == m { print $3 } $1 == m && $2 ~ /^v/ { print $2 }' "$here/$1/go.mod" | head -n 1; }

kube_version=$(pinned kube-apiserver k8s.io/kubernetes)
etcd_version=$(pinned etcd go.etcd.io/etcd/server/v3)

# Inputs that decide what a build produces; a change to any of them rebuilds.
fingerprint() {
  { go env GOVERSION; cat "$here/$1/go.mod" "$here/$1/go.sum" "$here/$1/main.go" "$here/build.sh"; } | sha256sum | cut -c1-16
}

# build NAME OUTDIR LDFLAGS: go build ./scripts/kube/NAME into OUTDIR/NAME.
build() {
  local name=$1 dir=$2 ldflags=$3
  local stamp="$dir/.inputs" want
  want=$(fingerprint "$name")
  if [[ -x $dir/$name && -f $stamp && $(cat "$stamp") == "$want" ]]; then
    return 0
  fi
  if $check_only; then
    echo "build.sh: $dir/$name needs building" >&2
    return 1
  fi
  mkdir -p "$dir"
  # Several test files may start at once: one builds, the others wait for it
  # (util-linux flock; without it, e.g. on macOS, run this script once before the tests).
  exec {lock}>"$dir/.lock"
  if command -v flock >/dev/null 2>&1; then flock "$lock"; fi
  if [[ -x $dir/$name && -f $stamp && $(cat "$stamp") == "$want" ]]; then
    exec {lock}>&-
    return 0
  fi
  echo "build.sh: building $name into $dir (the first build takes several minutes)" >&2
  local started=$SECONDS
  (
    cd "$here/$name"
    # -mod=readonly: go.sum is the pin; nothing is resolved anew.
    CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly \
      go build -trimpath -buildvcs=false -ldflags "-s -w $ldflags" -o "$dir/$name.tmp" .
  )
  mv "$dir/$name.tmp" "$dir/$name"
  echo "$want" >"$stamp"
  echo "build.sh: built $name in $((SECONDS - started)) s" >&2
  exec {lock}>&-
}

if ! command -v go >/dev/null 2>&1 && { [[ -z ${KUBE_APISERVER:-} ]] || [[ -z ${ETCD:-} ]]; }; then
  echo "build.sh: go is not on PATH, and KUBE_APISERVER/ETCD do not name binaries" >&2
  exit 127
fi

status=0
if [[ -n ${KUBE_APISERVER:-} ]]; then
  apiserver=$KUBE_APISERVER
else
  major_minor=${kube_version#v}
  # What kube-apiserver --version and /version report, as the release build sets it.
  v=k8s.io/component-base/version
  cv=k8s.io/client-go/pkg/version
  flags=""
  for pkg in $v $cv; do
    flags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=${major_minor%%.*}"
    flags+=" -X $pkg.gitMinor=$(cut -d. -f2 <<<"$major_minor") -X $pkg.gitTreeState=clean"
  done
  dir="$cache/kube-apiserver-$kube_version"
  build kube-apiserver "$dir" "$flags" || status=1
  apiserver="$dir/kube-apiserver"
fi

if [[ -n ${ETCD:-} ]]; then
  etcd=$ETCD
else
  dir="$cache/etcd-$etcd_version"
  build etcd "$dir" "" || status=1
  etcd="$dir/etcd"
fi

$check_only && exit $status
echo "KUBE_APISERVER=$apiserver"
echo "ETCD=$etcd"
