/**
 * A CRM sync: pushes contacts through MatchPeople (one bidirectional stream for all of them) and
 * prints, per contact, whether Trellis knows the person and where their interests converge with
 * the strategy.
 *
 *   node build/examples/crm-sync.js [contacts.csv]
 *
 * The CSV has a header and the columns contact_id,kind,value where kind is one of crm_id, handle,
 * email or profile_url (an e-mail is hashed here; it never leaves the machine). Without a file,
 * a few contacts of the example community are used.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import type { MatchContact } from "@trellis/client";
import { parseCommandLine, reportError } from "./connect.js";

const sampleContacts: MatchContact[] = [
  { contactId: "crm-1001", lookup: { key: { case: "crmId", value: "crm-1001" } } },
  { contactId: "crm-2001", lookup: { key: { case: "handle", value: "ben" } } },
  { contactId: "crm-2002", lookup: { key: { case: "emailSha256", value: sha256("Dora@Example.com") } } },
  { contactId: "crm-2003", lookup: { key: { case: "handle", value: "nobody-we-know" } } },
];

function sha256(email: string): string {
  return createHash("sha256").update(email.trim().toLowerCase()).digest("hex");
}

function contactFromCsv(line: string, lineNumber: number): MatchContact {
  const [contactId, kind, value] = line.split(",").map((cell) => cell.trim());
  if (!contactId || !kind || !value) throw new Error(`line ${lineNumber}: expected contact_id,kind,value`);
  switch (kind) {
    case "crm_id":
      return { contactId, lookup: { key: { case: "crmId", value } } };
    case "handle":
      return { contactId, lookup: { key: { case: "handle", value } } };
    case "email":
      return { contactId, lookup: { key: { case: "emailSha256", value: sha256(value) } } };
    case "profile_url":
      return { contactId, lookup: { key: { case: "profileUrl", value } } };
    default:
      throw new Error(`line ${lineNumber}: kind "${kind}" is not one of crm_id, handle, email, profile_url`);
  }
}

/** Reads contacts lazily, so a large export streams to the server as it is read. */
async function* contactsFrom(path: string): AsyncGenerator<MatchContact> {
  let lineNumber = 0;
  for await (const line of createInterface({ input: createReadStream(path) })) {
    lineNumber++;
    if (lineNumber === 1 || line.trim() === "") continue;
    yield contactFromCsv(line, lineNumber);
  }
}

const { client, positionals } = parseCommandLine("usage: crm-sync [contacts.csv]", {});
const contacts = positionals[0] ? contactsFrom(positionals[0]) : sampleContacts;
let exitCode = 0;
try {
  let matched = 0;
  let total = 0;
  for await (const answer of client.people.matchContacts(contacts)) {
    total++;
    if (answer.error) {
      console.log(`${answer.contactId}: not matched: ${answer.error}`);
      continue;
    }
    if (!answer.found || !answer.profile?.person) {
      console.log(`${answer.contactId}: not known to Trellis`);
      continue;
    }
    matched++;
    const person = answer.profile.person;
    const convergence = [...answer.profile.convergence]
      .sort((left, right) => right.convergence - left.convergence)
      .map((facet) => `${facet.facetId} ${facet.convergence.toFixed(2)}`)
      .join(", ");
    console.log(`${answer.contactId}: ${person.displayName} (${person.ref?.source}:${person.ref?.externalId}) converges on ${convergence || "no facet yet"}`);
  }
  console.log(`matched ${matched} of ${total} contacts`);
} catch (error) {
  exitCode = reportError(error, "MatchPeople");
} finally {
  client.close();
}
process.exitCode = exitCode;
