#!/usr/bin/env bash
# Builds oauth2-proxy for the benchmark (bench/servers/oauth2-proxy.ts) from its
# Go module with `go install`, at the version pinned here, into
# $HOME/.cache/kube-front-proxy/oauth2-proxy/<version>/ (or $KFP_OAUTH2_PROXY_CACHE),
# and prints where it is:
#
#   OAUTH2_PROXY=/abs/path/oauth2-proxy
#
# A binary already built with the same Go version is reused; OAUTH2_PROXY set
# in the environment wins over building. Progress goes to stderr. `npm run bench`
# runs this before scenario 1 (not with --smoke); the harness and the smoke test
# only look (--check), and without a binary leave the oauth2-proxy row out.
#
# Usage: scripts/oauth2-proxy/build.sh            build if missing, print the path
#        scripts/oauth2-proxy/build.sh --check    never build: print the path if built, else exit 1
set -euo pipefail

module=github.com/oauth2-proxy/oauth2-proxy/v7
version=v7.15.6
cache=${KFP_OAUTH2_PROXY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-front-proxy/oauth2-proxy}
dir="$cache/$version"
check_only=false
[[ ${1:-} == --check ]] && check_only=true

if [[ -n ${OAUTH2_PROXY:-} ]]; then
  echo "OAUTH2_PROXY=$OAUTH2_PROXY"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: go is not on PATH, and OAUTH2_PROXY does not name a binary" >&2
  exit 127
fi

# The Go version decides what the build produces (the module is pinned above).
want=$(go env GOVERSION)
stamp="$dir/.inputs"
fresh() { [[ -x $dir/oauth2-proxy && -f $stamp && $(cat "$stamp") == "$want" ]]; }

if ! fresh; then
  if $check_only; then
    echo "build.sh: $dir/oauth2-proxy needs building" >&2
    exit 1
  fi
  mkdir -p "$dir"
  exec {lock}>"$dir/.lock"
  if command -v flock >/dev/null 2>&1; then flock "$lock"; fi
  if ! fresh; then
    echo "build.sh: go install $module@$version into $dir (the first build takes minutes)" >&2
    started=$SECONDS
    # The release build's version string, which `oauth2-proxy --version` prints.
    GOBIN="$dir" CGO_ENABLED=0 GOTOOLCHAIN=local \
      go install -trimpath -ldflags "-s -w -X $module/pkg/version.VERSION=$version" "$module@$version"
    echo "$want" >"$stamp"
    echo "build.sh: built oauth2-proxy in $((SECONDS - started)) s" >&2
  fi
  exec {lock}>&-
fi

echo "OAUTH2_PROXY=$dir/oauth2-proxy"
