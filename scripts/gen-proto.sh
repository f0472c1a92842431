#!/usr/bin/env bash
# Generates typed TypeScript for proto/ with Debian's protoc and the pinned
# ts-proto plugin (no downloads). Output: proto/gen (committed; CI checks it is fresh).
set -euo pipefail
cd "$(dirname "$0")/.."
out=proto/gen
rm -rf "$out" && mkdir -p "$out"
protoc \
  --plugin=protoc-gen-ts_proto=node_modules/.bin/protoc-gen-ts_proto \
  --ts_proto_out="$out" \
  --ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,importSuffix=.js,forceLong=number,useOptionals=none,env=both,outputJsonMethods=false,outputPartialMethods=true,useExactTypes=false \
  -I proto \
  proto/meshplane/v1/*.proto
