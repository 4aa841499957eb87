#!/usr/bin/env bash
# Installs the Go protoc plugins into clients/go/bin at pinned versions, from the Go module proxy.
# Idempotent: a plugin already at its pinned version is left alone.
# protoc-gen-go follows the google.golang.org/protobuf version in go.mod, so the generated code and
# the runtime it needs never drift apart.
set -euo pipefail
cd "$(dirname "$0")"

PROTOC_GEN_GO_GRPC_VERSION=v1.6.1
PROTOC_GEN_GO_VERSION=$(go list -m -f '{{.Version}}' google.golang.org/protobuf)

bin="$PWD/bin"
mkdir -p "$bin"

install() {
  local name=$1 package=$2 version=$3 expected=$4
  if [ -x "$bin/$name" ] && [ "$("$bin/$name" --version 2>/dev/null)" = "$expected" ]; then
    return
  fi
  echo "installing $name $version into clients/go/bin"
  GOBIN="$bin" go install "$package@$version"
}

install protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go \
  "$PROTOC_GEN_GO_VERSION" "protoc-gen-go $PROTOC_GEN_GO_VERSION"
install protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc \
  "$PROTOC_GEN_GO_GRPC_VERSION" "protoc-gen-go-grpc ${PROTOC_GEN_GO_GRPC_VERSION#v}"
