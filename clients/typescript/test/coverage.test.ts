/**
 * The client covers the whole API: every file of proto/trellis/v1 is exported by the package, and
 * every RPC of every service in it is a method of one of the TrellisClient's service clients. A
 * new proto file or RPC fails this test until the client has it.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { DescFile, DescService } from "@bufbuild/protobuf";
import * as api from "@trellis/client";
import { repoRoot } from "./server.js";

const exported: unknown[] = Object.values(api);

function isFile(value: unknown): value is DescFile {
  return typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "file";
}

function isService(value: unknown): value is DescService {
  return typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "service";
}

test("every proto file of trellis.v1 is exported by the package", () => {
  const protos = readdirSync(join(repoRoot, "proto", "trellis", "v1"))
    .filter((name) => name.endsWith(".proto"))
    .map((name) => `trellis/v1/${name.replace(/\.proto$/, "")}`)
    .sort();
  const files = exported
    .filter(isFile)
    .map((file) => file.name)
    .filter((name) => name.startsWith("trellis/v1/"))
    .sort();
  assert.deepEqual(files, protos);
});

test("every RPC of trellis.v1 is a method of the client", () => {
  const services = exported.filter(isService).filter((service) => service.typeName.startsWith("trellis.v1."));
  const client = new api.TrellisClient({ address: "127.0.0.1:1" });
  try {
    const parts = Object.values(client).filter((part): part is Record<string, unknown> => typeof part === "object" && part !== null && "rpc" in part);
    const missing: string[] = [];
    let rpcs = 0;
    for (const service of services) {
      for (const method of service.methods) {
        rpcs++;
        if (!parts.some((part) => typeof part[method.localName] === "function")) missing.push(`${service.name}.${method.name}`);
      }
    }
    assert.ok(rpcs >= 30, `only ${rpcs} RPCs found; are the services exported?`);
    assert.deepEqual(missing, []);
  } finally {
    client.close();
  }
});
