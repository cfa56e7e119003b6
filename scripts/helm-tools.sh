#!/usr/bin/env bash
# Builds the chart's check tools once, at pinned versions, into a git-ignored cache:
# helm and kubeconform from their Go modules (`go install`), nothing downloaded by hand.
# Go's module and build caches live in .cache/go, the binaries in .stack/tools/bin: a second
# run finds them and returns at once. Prints the bin folder on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v4.3.2
KUBECONFORM_VERSION=v0.7.0

ROOT=$PWD
BIN=$ROOT/.stack/tools/bin
mkdir -p "$BIN"
export GOPATH=$ROOT/.cache/go GOMODCACHE=$ROOT/.cache/go/mod GOCACHE=$ROOT/.cache/go/build
export GOFLAGS=-modcacherw GOTOOLCHAIN=local CGO_ENABLED=0

# build NAME MODULE VERSION LDFLAGS: one binary per tool and version (helm-v4.3.2), so that a
# version bump rebuilds; the plain name is a symlink to it.
build() {
    local name=$1 module=$2 version=$3 ldflags=$4
    local target=$BIN/$name-$version
    if [[ ! -x $target ]]; then
        command -v go >/dev/null || { echo "error: Go is required to build $name" >&2; exit 1; }
        echo "building $name $version (go install, once)" >&2
        local tmp
        tmp=$(mktemp -d)
        GOBIN=$tmp go install -trimpath -ldflags "-s -w $ldflags" "$module@$version"
        mv "$tmp/$name" "$target"
        rmdir "$tmp"
    fi
    ln -sfn "$name-$version" "$BIN/$name"
}

# The version flags only make `helm version` and `kubeconform -v` tell the truth.
build helm helm.sh/helm/v4/cmd/helm "$HELM_VERSION" \
    "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
build kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION" \
    "-X main.version=$KUBECONFORM_VERSION"
echo "$BIN"
