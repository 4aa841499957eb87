/**
 * What the examples share: a client from the command line (--addr, --workspace, --token, --tls)
 * or the environment (TRELLIS_ADDR, TRELLIS_WORKSPACE, TRELLIS_TOKEN), and one way to end on an
 * error: a clear sentence for an RPC the server does not implement yet, the field violations for
 * bad input.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { TrellisClient, TrellisError, isUnimplemented } from "@trellis/client";

const connectionOptions = {
  addr: { type: "string" },
  workspace: { type: "string" },
  token: { type: "string" },
  tls: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export function parseCommandLine(usage: string, options: NonNullable<ParseArgsConfig["options"]>) {
  const parsed = parseArgs({ options: { ...connectionOptions, ...options }, allowPositionals: true });
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values["help"]) {
    console.log(`${usage}\n\nconnection: --addr HOST:PORT (TRELLIS_ADDR, default 127.0.0.1:50151), --workspace NAME (TRELLIS_WORKSPACE), --token KEY (TRELLIS_TOKEN), --tls`);
    process.exit(0);
  }
  const client = new TrellisClient({
    address: (values["addr"] as string | undefined) ?? process.env["TRELLIS_ADDR"] ?? "127.0.0.1:50151",
    workspace: (values["workspace"] as string | undefined) ?? process.env["TRELLIS_WORKSPACE"] ?? "",
    token: (values["token"] as string | undefined) ?? process.env["TRELLIS_TOKEN"],
    tls: values["tls"] === true,
    timeoutMs: 30_000,
  });
  return { client, values, positionals: parsed.positionals };
}

/** Prints why the example stopped; an RPC not built yet is a clean stop, not a crash. */
export function reportError(error: unknown, what: string): number {
  if (isUnimplemented(error)) {
    console.log(`the server does not implement ${what} yet; this example will work once it does.`);
    return 0;
  }
  if (error instanceof TrellisError) {
    console.error(`${what} failed: ${error.message}`);
    for (const violation of error.violations) console.error(`  ${violation.field}: ${violation.description}`);
    return 1;
  }
  throw error;
}
