/**
 * An internal app's view of one member: the discussions Trellis suggests they join, and topics
 * they could start, each with its reasons.
 *
 *   node build/examples/suggested-discussions.js [--person source:external_id] [--limit N]
 *
 * Defaults to forum:u-ana of the example community.
 */
import { parseCommandLine, reportError } from "./connect.js";

const { client, values } = parseCommandLine("usage: suggested-discussions [--person source:external_id] [--limit N]", {
  person: { type: "string", default: "forum:u-ana" },
  limit: { type: "string", default: "5" },
});
const [source, externalId] = String(values.person).split(":");
if (!source || !externalId) {
  console.error(`--person must be source:external_id, e.g. forum:u-ana (got "${values.person}")`);
  process.exit(2);
}

let exitCode = 0;
try {
  const suggestions = await client.insight.suggestDiscussions({ person: { source, externalId }, limit: Number(values.limit) });
  console.log(`discussions for ${source}:${externalId} to join:`);
  if (suggestions.join.length === 0) console.log("  none right now");
  for (const discussion of suggestions.join) {
    console.log(`  ${discussion.score.toFixed(2)}  ${discussion.title}  ${discussion.url}`);
    for (const reason of discussion.reasons) console.log(`        - ${reason}`);
  }
  console.log("topics they could start:");
  if (suggestions.start.length === 0) console.log("  none right now");
  for (const topic of suggestions.start) {
    console.log(`  ${topic.suggestedTitle} (facet ${topic.facetId}, interest ${topic.interest.toFixed(2)})`);
    for (const reason of topic.reasons) console.log(`        - ${reason}`);
  }
} catch (error) {
  exitCode = reportError(error, "SuggestDiscussions");
  if (exitCode === 0) {
    // Until then, the conversations the whole team should nourish are the next best thing.
    try {
      const top = await client.insight.listStrategicConversations({ limit: 3 });
      console.log("meanwhile, the conversations to nourish now:");
      for (const conversation of top.conversations) {
        console.log(`  ${conversation.priority.toFixed(2)}  ${conversation.title}  ${conversation.url}`);
      }
    } catch (fallbackError) {
      exitCode = reportError(fallbackError, "ListStrategicConversations");
    }
  }
} finally {
  client.close();
}
process.exitCode = exitCode;
