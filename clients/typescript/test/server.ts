/**
 * Starts the real `trellis serve` for the suite: a loopback port chosen by the OS, a database in
 * a fresh temporary folder, the address read from the line the server prints once ready, and
 * SIGTERM at the end. The binary comes from TRELLIS_BIN, else the workspace's debug build, which
 * is built first when missing.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** The repository root: this file runs from clients/typescript/build/test. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");

export interface RunningServer {
  /** `host:port` */
  readonly address: string;
  stop(): Promise<void>;
}

export function trellisBinary(): string {
  const configured = process.env["TRELLIS_BIN"];
  if (configured) return configured;
  const built = join(repoRoot, "target", "debug", "trellis");
  if (!existsSync(built)) {
    const build = spawnSync("cargo", ["build", "--bin", "trellis"], { cwd: repoRoot, stdio: "inherit" });
    if (build.status !== 0) throw new Error("cargo build --bin trellis failed; set TRELLIS_BIN to a built binary");
  }
  return built;
}

export async function startServer(): Promise<RunningServer> {
  const folder = mkdtempSync(join(tmpdir(), "trellis-ts-client-"));
  const child = spawn(
    trellisBinary(),
    ["serve", "--listen", "127.0.0.1:0", "--db", join(folder, "trellis.db"), "--log-format", "json"],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        RUST_LOG: process.env["RUST_LOG"] ?? "warn",
        // No sentence-embedding model: the suite's server runs lexical-only, whatever
        // scripts/fetch-model.sh put in the repository.
        TRELLIS__SEMANTIC__MODEL_DIR: join(folder, "no-model"),
      },
    },
  );
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const address = await new Promise<string>((resolveAddress, reject) => {
    const timer = setTimeout(() => reject(new Error(`trellis did not start within 30 s:\n${stderr}`)), 30_000);
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      const match = /^trellis listening on (\S+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolveAddress(match[1]!);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`trellis exited with ${code} before listening:\n${stderr}`));
    });
  });
  return {
    address,
    stop: async () => {
      await stopChild(child);
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveStop) => {
    const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    child.once("exit", () => {
      clearTimeout(killer);
      resolveStop();
    });
    child.kill("SIGTERM");
  });
}
