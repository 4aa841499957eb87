/**
 * Starts the real `trellis serve` for the suite: a loopback port chosen by the OS, a database in
 * a fresh temporary folder, the address read from the line the server prints once ready, and
 * SIGTERM at the end. The binary comes from TRELLIS_BIN, else the workspace's debug build, which
 * is built first when missing. A server may get a config file (e.g. one requiring API keys, see
 * `authConfig`); its keys are made and revoked with the real `trellis keys` on its database. A
 * server may load the template connector (plugins/template, connector `jsonl`) as a real shared
 * library from a plugin folder (see `pluginDir`).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** The repository root: this file runs from clients/typescript/build/test. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");

export interface RunningServer {
  /** `host:port` */
  readonly address: string;
  /** The SQLite database the server runs on. */
  readonly db: string;
  stop(): Promise<void>;
}

/** A key made by `trellis keys create`. */
export interface ApiKey {
  readonly id: string;
  /** The whole key, `trk_<id>_<secret>`, as a client sends it. */
  readonly key: string;
  readonly workspace: string;
  readonly role: string;
}

/** A config file that makes every call need an API key; 0 calls per second for no limit. */
export function authConfig(requestsPerSecond = 0, burst = 0): string {
  return `[auth]\nrequired = true\nrequests_per_second = ${requestsPerSecond}\nburst = ${burst}\n`;
}

/** Creates a key on the server's database; the running server accepts it from its next call. */
export function createKey(server: RunningServer, workspace: string, role: "read" | "write" | "admin"): ApiKey {
  const output = runKeys(server, ["create", "--workspace", workspace, "--role", role, "--name", "ts-client-tests", "--json"]);
  return JSON.parse(output) as ApiKey;
}

/** Revokes a key; the running server refuses it from its next call. */
export function revokeKey(server: RunningServer, key: ApiKey): void {
  const revoked = JSON.parse(runKeys(server, ["revoke", key.id, "--json"])) as { id: string; revoked: boolean };
  if (revoked.id !== key.id || !revoked.revoked) throw new Error(`trellis keys revoke printed ${JSON.stringify(revoked)}`);
}

function runKeys(server: RunningServer, args: string[]): string {
  const done = spawnSync(trellisBinary(), ["keys", ...args, "--db", server.db], {
    encoding: "utf8",
    env: { ...process.env, RUST_LOG: "warn" },
  });
  if (done.status !== 0) throw new Error(`trellis keys ${args.join(" ")} failed: ${done.stderr}`);
  return done.stdout;
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

/** The template connector's library as cargo builds it. */
export const templateLibrary = "libtrellis_connector_template.so";

/**
 * A plugin folder holding the template connector: TRELLIS_PLUGIN_DIR when set, else `folder`/plugins
 * with a copy of the library found next to the server binary or in target/debug (or its deps/,
 * where a build of dependents leaves it), which is built with cargo when missing.
 */
export function pluginDir(folder: string): string {
  const configured = process.env["TRELLIS_PLUGIN_DIR"];
  if (configured) {
    if (!existsSync(join(configured, templateLibrary))) {
      throw new Error(`TRELLIS_PLUGIN_DIR=${configured} holds no ${templateLibrary}; build it with \`cargo build -p trellis-connector-template\` or unset it`);
    }
    return configured;
  }
  const built = join(repoRoot, "target", "debug", templateLibrary);
  const candidates = [join(dirname(trellisBinary()), templateLibrary), built, join(repoRoot, "target", "debug", "deps", templateLibrary)];
  let library = candidates.find((path) => existsSync(path));
  if (library === undefined) {
    const build = spawnSync("cargo", ["build", "-p", "trellis-connector-template"], { cwd: repoRoot, stdio: "inherit" });
    if (build.status !== 0) throw new Error("cargo build -p trellis-connector-template failed; set TRELLIS_PLUGIN_DIR to a folder holding the built library");
    library = built;
  }
  const plugins = join(folder, "plugins");
  mkdirSync(plugins, { recursive: true });
  copyFileSync(library, join(plugins, templateLibrary));
  return plugins;
}

export interface ServerOptions {
  /** A config file's text. */
  config?: string;
  /** Load the template connector from a plugin folder (see `pluginDir`). */
  plugins?: boolean;
}

/** Starts `trellis serve`, with `config` as its config file when given, and plugins when asked. */
export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const folder = mkdtempSync(join(tmpdir(), "trellis-ts-client-"));
  const db = join(folder, "trellis.db");
  const plugins = options.plugins === true ? { TRELLIS__PLUGINS__DIRS: JSON.stringify([pluginDir(folder)]) } : {};
  const args = ["serve", "--listen", "127.0.0.1:0", "--db", db, "--log-format", "json"];
  if (options.config !== undefined) {
    const configPath = join(folder, "trellis.toml");
    writeFileSync(configPath, options.config);
    args.push("--config", configPath);
  }
  const child = spawn(
    trellisBinary(),
    args,
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        RUST_LOG: process.env["RUST_LOG"] ?? "warn",
        // No sentence-embedding model: the suite's server runs lexical-only, whatever
        // scripts/fetch-model.sh put in the repository.
        TRELLIS__SEMANTIC__MODEL_DIR: join(folder, "no-model"),
        ...plugins,
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
    db,
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
