/**
 * Adds a source and follows its first sync: creates the source from a connector plugin, checks
 * its config, then prints the progress the server streams until the sync ends.
 *
 *   node build/examples/follow-source-sync.js --id blog --connector blog --config '{"url": "..."}'
 *
 * Without --connector, the first connector the server has loaded is used.
 */
import { SyncStatus } from "@trellis/client";
import { parseCommandLine, reportError } from "./connect.js";

const { client, values } = parseCommandLine("usage: follow-source-sync --id ID [--connector NAME] [--config JSON] [--full-refresh]", {
  id: { type: "string", default: "example-source" },
  connector: { type: "string" },
  config: { type: "string", default: "{}" },
  "full-refresh": { type: "boolean", default: false },
});

let exitCode = 0;
let step = "ListConnectors";
try {
  let connector = values.connector as string | undefined;
  if (!connector) {
    const { connectors } = await client.sources.listConnectors();
    if (connectors.length === 0) {
      // Not an error of this script: the server runs, it just has nothing to sync from yet.
      console.log("the server has no connector plugins loaded yet; put plugins in a folder of its plugins.dirs to add a source");
      process.exit(0);
    }
    connector = connectors[0]!.name;
    console.log(`using connector ${connector} ${connectors[0]!.version}`);
  }
  step = "CreateSource";
  const { source } = await client.sources.createSource({ source: { id: String(values.id), connector, configJson: String(values.config) } });
  console.log(`created source ${source?.id} (${source?.connector})`);
  step = "CheckSource";
  const check = await client.sources.checkSource({ id: String(values.id) });
  console.log(`check: ${check.ok ? "ok" : "failed"}${check.message ? `: ${check.message}` : ""}`);
  step = "SyncSource";
  for await (const progress of client.sources.syncSource({ id: String(values.id), fullRefresh: values["full-refresh"] === true }, { timeoutMs: 0 })) {
    const stream = progress.stream ? ` [${progress.stream}]` : "";
    console.log(
      `${SyncStatus[progress.status].toLowerCase()}${stream}: read ${progress.recordsRead}, stored ${progress.recordsStored}, ` +
        `checkpoints ${progress.checkpointsCommitted}${progress.message ? ` (${progress.message})` : ""}`,
    );
  }
  step = "GetSource";
  const done = await client.sources.getSource({ id: String(values.id) });
  console.log(`source ${done.source?.id}: ${SyncStatus[done.source?.status ?? SyncStatus.UNSPECIFIED].toLowerCase()}, ${done.source?.recordsSynced} records synced`);
} catch (error) {
  if (error instanceof Error && !("code" in error)) {
    console.error(error.message);
    exitCode = 1;
  } else {
    exitCode = reportError(error, step);
  }
} finally {
  client.close();
}
process.exitCode = exitCode;
