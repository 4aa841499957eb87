//! How each record kind maps to its PostgreSQL table: the same columns as in SQLite, with
//! booleans as `boolean`, lists as `json` (read back as text, so exactly as written), and unsigned
//! counts as `bigint`. Decoders read columns by position, in the order of the `*_COLUMNS`
//! constant beside them.

use postgres::GenericClient;
use postgres::Row;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use serde::Serialize;
use serde::de::DeserializeOwned;
use trellis_core::CoreError;
use trellis_core::Violation;
use trellis_core::domain::{
    Asset, Conversation, Forgotten, Merge, Millis, Person, Post, Record, RecordKey, WorkspaceId,
};
use trellis_core::engine::semantic::{Embedded, Embedding};
use trellis_core::error::CoreResult;
use trellis_core::store::TextBudget;

use super::{Doing, check_text, has_nul, refuse};
use crate::records::{SCAN_PAGE, ScannedKind};

const PERSON_COLUMNS: &str =
    "source, external_id, display_name, bio, member, identities::text, crm_ids::text, created_at";
const CONVERSATION_COLUMNS: &str = "source, external_id, platform, url, title, body, tags::text, author, open, created_at, last_activity_at";
const POST_COLUMNS: &str =
    "source, external_id, conversation, author, parent, created_at, text, reactions";
const ASSET_COLUMNS: &str = "source, external_id, url, title, text, kind, own, bookmark_count, share_count, tags::text, created_at";
const MERGE_COLUMNS: &str = "id, target_source, target_external_id, others::text, confidence, reasons::text, automatic, created_at, undone_at";

fn json_text<T: Serialize + ?Sized>(value: &T) -> CoreResult<String> {
    serde_json::to_string(value)
        .map_err(|error| CoreError::Internal(format!("serializing a list: {error}")))
}

fn json_column<T: DeserializeOwned>(row: &Row, index: usize) -> CoreResult<T> {
    let text: &str = row.get(index);
    serde_json::from_str(text).map_err(|error| {
        CoreError::Storage(format!(
            "column {} holds unreadable JSON: {error}",
            row.columns()[index].name()
        ))
    })
}

fn enum_text<T: Serialize>(value: &T) -> CoreResult<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        Ok(other) => Err(CoreError::Internal(format!(
            "expected an enum to serialize as a name, got {other}"
        ))),
        Err(error) => Err(CoreError::Internal(format!("serializing an enum: {error}"))),
    }
}

fn enum_column<T: DeserializeOwned>(name: &str) -> CoreResult<T> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).map_err(|error| {
        CoreError::Storage(format!("the stored name {name:?} is not known: {error}"))
    })
}

fn unsigned(row: &Row, index: usize) -> CoreResult<u32> {
    let value: i64 = row.get(index);
    u32::try_from(value).map_err(|_| {
        CoreError::Storage(format!(
            "column {} holds {value}, out of range",
            row.columns()[index].name()
        ))
    })
}

fn key_columns(row: &Row) -> RecordKey {
    RecordKey::new(row.get::<_, String>(0), row.get::<_, String>(1))
}

fn person_from_row(row: &Row) -> CoreResult<Person> {
    Ok(Person {
        key: key_columns(row),
        display_name: row.get(2),
        bio: row.get(3),
        member: row.get(4),
        identities: json_column(row, 5)?,
        crm_ids: json_column(row, 6)?,
        created_at: row.get(7),
    })
}

fn conversation_from_row(row: &Row) -> CoreResult<Conversation> {
    let platform: Option<&str> = row.get(2);
    Ok(Conversation {
        key: key_columns(row),
        platform: platform.map(enum_column).transpose()?,
        url: row.get(3),
        title: row.get(4),
        body: row.get(5),
        tags: json_column(row, 6)?,
        author: row.get(7),
        open: row.get(8),
        created_at: row.get(9),
        last_activity_at: row.get(10),
    })
}

fn post_from_row(row: &Row) -> CoreResult<Post> {
    Ok(Post {
        key: key_columns(row),
        conversation: row.get(2),
        author: row.get(3),
        parent: row.get(4),
        created_at: row.get(5),
        text: row.get(6),
        reactions: unsigned(row, 7)?,
    })
}

fn asset_from_row(row: &Row) -> CoreResult<Asset> {
    Ok(Asset {
        key: key_columns(row),
        url: row.get(2),
        title: row.get(3),
        text: row.get(4),
        kind: enum_column(row.get(5))?,
        own: row.get(6),
        bookmark_count: unsigned(row, 7)?,
        share_count: unsigned(row, 8)?,
        tags: json_column(row, 9)?,
        created_at: row.get(10),
    })
}

fn check_key(violations: &mut Vec<Violation>, at: &str, key: &RecordKey) {
    check_text(violations, format!("{at}.key.source"), &key.source);
    check_text(
        violations,
        format!("{at}.key.external_id"),
        &key.external_id,
    );
}

/// Refuses a batch any of whose text columns holds U+0000, naming every such field.
pub(super) fn check_records(records: &[Record]) -> CoreResult<()> {
    let mut violations = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let at = format!("records[{index}]");
        let mut text = |field: &str, value: &str| {
            check_text(&mut violations, format!("{at}.{field}"), value);
        };
        match record {
            Record::Person(person) => {
                text("display_name", &person.display_name);
                text("bio", &person.bio);
            }
            Record::Conversation(conversation) => {
                text("url", &conversation.url);
                text("title", &conversation.title);
                text("body", &conversation.body);
                text("author", conversation.author.as_deref().unwrap_or(""));
            }
            Record::Post(post) => {
                text("conversation", &post.conversation);
                text("author", post.author.as_deref().unwrap_or(""));
                text("parent", post.parent.as_deref().unwrap_or(""));
                text("text", &post.text);
            }
            Record::Asset(asset) => {
                text("url", &asset.url);
                text("title", &asset.title);
                text("text", &asset.text);
            }
        }
        check_key(&mut violations, &at, record.key());
    }
    refuse(violations)
}

pub(super) fn check_merge(merge: &Merge) -> CoreResult<()> {
    let mut violations = Vec::new();
    check_text(&mut violations, "merge.id".to_owned(), &merge.id);
    check_text(
        &mut violations,
        "merge.target.source".to_owned(),
        &merge.target.source,
    );
    check_text(
        &mut violations,
        "merge.target.external_id".to_owned(),
        &merge.target.external_id,
    );
    refuse(violations)
}

fn by_key<T>(
    client: &mut impl GenericClient,
    table: &str,
    columns: &str,
    workspace: &WorkspaceId,
    key: &RecordKey,
    decode: fn(&Row) -> CoreResult<T>,
) -> CoreResult<Option<T>> {
    if has_nul(&key.source) || has_nul(&key.external_id) {
        return Ok(None);
    }
    let sql = format!(
        "SELECT {columns} FROM {table} WHERE workspace = $1 AND source = $2 AND external_id = $3"
    );
    client
        .query_opt(&sql, &[&workspace.as_str(), &key.source, &key.external_id])
        .doing("reading a record")?
        .as_ref()
        .map(decode)
        .transpose()
}

pub(super) fn person(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
    key: &RecordKey,
) -> CoreResult<Option<Person>> {
    by_key(
        client,
        "people",
        PERSON_COLUMNS,
        workspace,
        key,
        person_from_row,
    )
}

pub(super) fn conversation(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
    key: &RecordKey,
) -> CoreResult<Option<Conversation>> {
    by_key(
        client,
        "conversations",
        CONVERSATION_COLUMNS,
        workspace,
        key,
        conversation_from_row,
    )
}

fn post(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
    key: &RecordKey,
) -> CoreResult<Option<Post>> {
    by_key(client, "posts", POST_COLUMNS, workspace, key, post_from_row)
}

pub(super) fn asset(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
    key: &RecordKey,
) -> CoreResult<Option<Asset>> {
    by_key(
        client,
        "assets",
        ASSET_COLUMNS,
        workspace,
        key,
        asset_from_row,
    )
}

pub(super) fn stored_like(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
    record: &Record,
) -> CoreResult<Option<Record>> {
    Ok(match record {
        Record::Person(incoming) => person(client, workspace, &incoming.key)?.map(Record::Person),
        Record::Conversation(incoming) => {
            conversation(client, workspace, &incoming.key)?.map(Record::Conversation)
        }
        Record::Post(incoming) => post(client, workspace, &incoming.key)?.map(Record::Post),
        Record::Asset(incoming) => asset(client, workspace, &incoming.key)?.map(Record::Asset),
    })
}

/// Inserts `record`, or overwrites the row with its key, keeping the row's `seq`.
pub(super) fn write(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
    record: &Record,
) -> CoreResult<()> {
    let workspace = workspace.as_str();
    let changed = match record {
        Record::Person(person) => client.execute(
            "INSERT INTO people (workspace, source, external_id, display_name, bio, member, identities, crm_ids, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7::text::json, $8::text::json, $9)
             ON CONFLICT (workspace, source, external_id) DO UPDATE SET
                 display_name = excluded.display_name,
                 bio = excluded.bio,
                 member = excluded.member,
                 identities = excluded.identities,
                 crm_ids = excluded.crm_ids,
                 created_at = excluded.created_at",
            &[
                &workspace,
                &person.key.source,
                &person.key.external_id,
                &person.display_name,
                &person.bio,
                &person.member,
                &json_text(&person.identities)?,
                &json_text(&person.crm_ids)?,
                &person.created_at,
            ],
        ),
        Record::Conversation(conversation) => client.execute(
            "INSERT INTO conversations (workspace, source, external_id, platform, url, title, body, tags, author, open, created_at, last_activity_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::json, $9, $10, $11, $12)
             ON CONFLICT (workspace, source, external_id) DO UPDATE SET
                 platform = excluded.platform,
                 url = excluded.url,
                 title = excluded.title,
                 body = excluded.body,
                 tags = excluded.tags,
                 author = excluded.author,
                 open = excluded.open,
                 created_at = excluded.created_at,
                 last_activity_at = excluded.last_activity_at",
            &[
                &workspace,
                &conversation.key.source,
                &conversation.key.external_id,
                &conversation.platform.as_ref().map(enum_text).transpose()?,
                &conversation.url,
                &conversation.title,
                &conversation.body,
                &json_text(&conversation.tags)?,
                &conversation.author,
                &conversation.open,
                &conversation.created_at,
                &conversation.last_activity_at,
            ],
        ),
        Record::Post(post) => client.execute(
            "INSERT INTO posts (workspace, source, external_id, conversation, author, parent, created_at, text, reactions)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (workspace, source, external_id) DO UPDATE SET
                 conversation = excluded.conversation,
                 author = excluded.author,
                 parent = excluded.parent,
                 created_at = excluded.created_at,
                 text = excluded.text,
                 reactions = excluded.reactions",
            &[
                &workspace,
                &post.key.source,
                &post.key.external_id,
                &post.conversation,
                &post.author,
                &post.parent,
                &post.created_at,
                &post.text,
                &i64::from(post.reactions),
            ],
        ),
        Record::Asset(asset) => client.execute(
            "INSERT INTO assets (workspace, source, external_id, url, title, text, kind, own, bookmark_count, share_count, tags, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::text::json, $12)
             ON CONFLICT (workspace, source, external_id) DO UPDATE SET
                 url = excluded.url,
                 title = excluded.title,
                 text = excluded.text,
                 kind = excluded.kind,
                 own = excluded.own,
                 bookmark_count = excluded.bookmark_count,
                 share_count = excluded.share_count,
                 tags = excluded.tags,
                 created_at = excluded.created_at",
            &[
                &workspace,
                &asset.key.source,
                &asset.key.external_id,
                &asset.url,
                &asset.title,
                &asset.text,
                &enum_text(&asset.kind)?,
                &asset.own,
                &i64::from(asset.bookmark_count),
                &i64::from(asset.share_count),
                &json_text(&asset.tags)?,
                &asset.created_at,
            ],
        ),
    }
    .doing("storing records")?;
    debug_assert_eq!(changed, 1, "an upsert writes exactly one row");
    Ok(())
}

/// A conversation's posts, oldest first, unknown times first (as SQLite sorts NULL), ties in
/// insertion order.
pub(super) fn posts_of(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
    conversation: &RecordKey,
) -> CoreResult<Vec<Post>> {
    posts_while(client, workspace, conversation, |_| true)
}

/// The first posts of a conversation that `budget` admits. Rows are taken as they arrive and
/// the rest of a long thread is left unread by the client (the connection discards it).
pub(super) fn opening_posts(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
    conversation: &RecordKey,
    mut budget: TextBudget,
) -> CoreResult<Vec<Post>> {
    posts_while(client, workspace, conversation, |post| {
        budget.admits(post.text.len())
    })
}

/// A conversation's posts in order, up to the first that `keep` turns down.
fn posts_while(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
    conversation: &RecordKey,
    mut keep: impl FnMut(&Post) -> bool,
) -> CoreResult<Vec<Post>> {
    if has_nul(&conversation.source) || has_nul(&conversation.external_id) {
        return Ok(Vec::new());
    }
    let params: [&(dyn ToSql + Sync); 3] = [
        &workspace.as_str(),
        &conversation.source,
        &conversation.external_id,
    ];
    let mut rows = client
        .query_raw(
            &format!(
                "SELECT {POST_COLUMNS} FROM posts
                 WHERE workspace = $1 AND source = $2 AND conversation = $3
                 ORDER BY created_at ASC NULLS FIRST, seq"
            ),
            params,
        )
        .doing("reading posts")?;
    let mut posts = Vec::new();
    while let Some(row) = rows.next().doing("reading posts")? {
        let post = post_from_row(&row)?;
        if !keep(&post) {
            break;
        }
        posts.push(post);
    }
    Ok(posts)
}

fn merge_from_row(row: &Row) -> CoreResult<Merge> {
    Ok(Merge {
        id: row.get(0),
        target: RecordKey::new(row.get::<_, String>(1), row.get::<_, String>(2)),
        others: json_column(row, 3)?,
        confidence: row.get::<_, f64>(4) as f32,
        reasons: json_column(row, 5)?,
        automatic: row.get(6),
        created_at: row.get(7),
        undone_at: row.get(8),
    })
}

pub(super) fn put_merge(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
    merge: &Merge,
) -> CoreResult<()> {
    client
        .execute(
            "INSERT INTO merges (workspace, id, target_source, target_external_id, others, confidence, reasons, automatic, created_at, undone_at)
             VALUES ($1, $2, $3, $4, $5::text::json, $6, $7::text::json, $8, $9, $10)",
            &[
                &workspace.as_str(),
                &merge.id,
                &merge.target.source,
                &merge.target.external_id,
                &json_text(&merge.others)?,
                &f64::from(merge.confidence.clamp(0.0, 1.0)),
                &json_text(&merge.reasons)?,
                &merge.automatic,
                &merge.created_at,
                &merge.undone_at,
            ],
        )
        .doing("recording a merge")?;
    Ok(())
}

pub(super) fn merges(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
) -> CoreResult<Vec<Merge>> {
    client
        .query(
            &format!(
                "SELECT {MERGE_COLUMNS} FROM merges WHERE workspace = $1 ORDER BY created_at, id"
            ),
            &[&workspace.as_str()],
        )
        .doing("reading merges")?
        .iter()
        .map(merge_from_row)
        .collect()
}

pub(super) fn undo_merge(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
    id: &str,
    now: Millis,
) -> CoreResult<Option<Merge>> {
    client
        .query_opt(
            &format!(
                "UPDATE merges SET undone_at = $3
                 WHERE workspace = $1 AND id = $2 AND undone_at IS NULL
                 RETURNING {MERGE_COLUMNS}"
            ),
            &[&workspace.as_str(), &id, &now],
        )
        .doing("undoing a merge")?
        .as_ref()
        .map(merge_from_row)
        .transpose()
}

/// Deletes people and blanks what they wrote; remembers them as forgotten.
pub(super) fn forget_people(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
    people: &[RecordKey],
    now: Millis,
) -> CoreResult<Forgotten> {
    const DOING: &str = "forgetting people";
    let mut forgotten = Forgotten::default();
    for person in people {
        let keys: [&(dyn ToSql + Sync); 3] =
            [&workspace.as_str(), &person.source, &person.external_id];
        let identities: i64 = client
            .query_one(
                "SELECT COALESCE(SUM(1 + json_array_length(identities)), 0)::bigint FROM people
                 WHERE workspace = $1 AND source = $2 AND external_id = $3",
                &keys,
            )
            .doing(DOING)?
            .get(0);
        forgotten.identities_removed += identities.unsigned_abs();
        client
            .execute(
                "DELETE FROM people WHERE workspace = $1 AND source = $2 AND external_id = $3",
                &keys,
            )
            .doing(DOING)?;
        forgotten.posts_removed += client
            .execute(
                "UPDATE posts SET text = '', author = NULL
                 WHERE workspace = $1 AND source = $2 AND author = $3",
                &keys,
            )
            .doing(DOING)?;
        // Vectors of their conversations embed their words: they go before the text does.
        client
            .execute(
                "DELETE FROM embeddings WHERE workspace = $1 AND source = $2 AND external_id IN
                     (SELECT external_id FROM conversations
                      WHERE workspace = $1 AND source = $2 AND author = $3)",
                &keys,
            )
            .doing(DOING)?;
        forgotten.posts_removed += client
            .execute(
                "UPDATE conversations SET title = '', body = '', author = NULL
                 WHERE workspace = $1 AND source = $2 AND author = $3",
                &keys,
            )
            .doing(DOING)?;
        // Their merges go too: the reasons given for them are personal data.
        client
            .execute(
                "DELETE FROM merges WHERE workspace = $1 AND (
                     (target_source = $2 AND target_external_id = $3)
                     OR EXISTS (SELECT 1 FROM json_array_elements(merges.others) AS other
                                WHERE other ->> 'source' = $2 AND other ->> 'external_id' = $3))",
                &keys,
            )
            .doing(DOING)?;
        client
            .execute(
                "INSERT INTO forgotten (workspace, source, external_id, forgotten_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[
                    &workspace.as_str(),
                    &person.source,
                    &person.external_id,
                    &now,
                ],
            )
            .doing(DOING)?;
    }
    Ok(forgotten)
}

pub(super) fn forgotten(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
) -> CoreResult<Vec<RecordKey>> {
    Ok(client
        .query(
            "SELECT source, external_id FROM forgotten WHERE workspace = $1 ORDER BY source, external_id",
            &[&workspace.as_str()],
        )
        .doing("reading who was forgotten")?
        .iter()
        .map(|row| RecordKey::new(row.get::<_, String>(0), row.get::<_, String>(1)))
        .collect())
}

pub(super) fn list_people(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
    member: Option<bool>,
    after: i64,
    limit: usize,
) -> CoreResult<Vec<(i64, Person)>> {
    client
        .query(
            &format!(
                "SELECT {PERSON_COLUMNS}, seq FROM people
                 WHERE workspace = $1 AND seq > $2 AND ($3::boolean IS NULL OR member = $3)
                 ORDER BY seq LIMIT $4"
            ),
            &[&workspace.as_str(), &after, &member, &super::limit(limit)],
        )
        .doing("listing people")?
        .iter()
        .map(|row| Ok((row.get(8), person_from_row(row)?)))
        .collect()
}

/// A person's conversations and posts in their source, newest first (unknown times last, as in
/// SQLite), up to `limit` of each.
pub(super) fn writing_of(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
    person: &RecordKey,
    limit: usize,
) -> CoreResult<(Vec<Conversation>, Vec<Post>)> {
    if has_nul(&person.source) || has_nul(&person.external_id) {
        return Ok((Vec::new(), Vec::new()));
    }
    const DOING: &str = "reading a person's posts";
    let limit = super::limit(limit);
    let keys: [&(dyn ToSql + Sync); 4] = [
        &workspace.as_str(),
        &person.source,
        &person.external_id,
        &limit,
    ];
    let conversations = client
        .query(
            &format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversations
                 WHERE workspace = $1 AND source = $2 AND author = $3
                 ORDER BY created_at DESC NULLS LAST, seq DESC LIMIT $4"
            ),
            &keys,
        )
        .doing(DOING)?
        .iter()
        .map(conversation_from_row)
        .collect::<CoreResult<Vec<_>>>()?;
    let posts = client
        .query(
            &format!(
                "SELECT {POST_COLUMNS} FROM posts
                 WHERE workspace = $1 AND source = $2 AND author = $3
                 ORDER BY created_at DESC NULLS LAST, seq DESC LIMIT $4"
            ),
            &keys,
        )
        .doing(DOING)?
        .iter()
        .map(post_from_row)
        .collect::<CoreResult<Vec<_>>>()?;
    Ok((conversations, posts))
}

/// Up to `SCAN_PAGE` records of one kind with `seq` above `after`, in `seq` order, with their
/// `seq`.
pub(super) fn scan_page(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
    kind: ScannedKind,
    after: i64,
) -> CoreResult<Vec<(i64, Record)>> {
    let (table, columns, seq_index) = match kind {
        ScannedKind::Person => ("people", PERSON_COLUMNS, 8),
        ScannedKind::Conversation => ("conversations", CONVERSATION_COLUMNS, 11),
        ScannedKind::Post => ("posts", POST_COLUMNS, 8),
        ScannedKind::Asset => ("assets", ASSET_COLUMNS, 11),
    };
    let sql = format!(
        "SELECT {columns}, seq FROM {table} WHERE workspace = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    );
    client
        .query(&sql, &[&workspace.as_str(), &after, &(SCAN_PAGE as i64)])
        .doing("scanning the corpus")?
        .iter()
        .map(|row| {
            let record = match kind {
                ScannedKind::Person => Record::Person(person_from_row(row)?),
                ScannedKind::Conversation => Record::Conversation(conversation_from_row(row)?),
                ScannedKind::Post => Record::Post(post_from_row(row)?),
                ScannedKind::Asset => Record::Asset(asset_from_row(row)?),
            };
            Ok((row.get(seq_index), record))
        })
        .collect()
}

pub(super) fn put_embeddings(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
    model: &str,
    of: Embedded,
    embeddings: &[Embedding],
) -> CoreResult<()> {
    const DOING: &str = "storing embeddings";
    let (table, records) = crate::records::embedding_tables(of);
    let statement = client
        .prepare(&format!(
            "INSERT INTO {table} (workspace, model, source, external_id, text_hash, vector)
             SELECT $1, $2, $3, $4, $5, $6
             WHERE EXISTS (SELECT 1 FROM {records}
                           WHERE workspace = $1 AND source = $3 AND external_id = $4)
             ON CONFLICT (workspace, model, source, external_id)
             DO UPDATE SET text_hash = excluded.text_hash, vector = excluded.vector"
        ))
        .doing(DOING)?;
    for embedding in embeddings {
        // A key PostgreSQL cannot hold names no stored conversation: nothing to keep.
        if has_nul(&embedding.key.source) || has_nul(&embedding.key.external_id) {
            continue;
        }
        let vector: Vec<u8> = embedding
            .vector
            .iter()
            .flat_map(|value| value.to_le_bytes())
            .collect();
        client
            .execute(
                &statement,
                &[
                    &workspace.as_str(),
                    &model,
                    &embedding.key.source,
                    &embedding.key.external_id,
                    // The same 64 bits, signed, as in SQLite.
                    &(embedding.text_hash as i64),
                    &vector,
                ],
            )
            .doing(DOING)?;
    }
    Ok(())
}

pub(super) fn embeddings_page(
    client: &mut impl GenericClient,
    workspace: &WorkspaceId,
    model: &str,
    of: Embedded,
    after: i64,
    limit: usize,
) -> CoreResult<Vec<(i64, Embedding)>> {
    let (table, _) = crate::records::embedding_tables(of);
    client
        .query(
            &format!(
                "SELECT seq, source, external_id, text_hash, vector FROM {table}
                 WHERE workspace = $1 AND model = $2 AND seq > $3 ORDER BY seq LIMIT $4"
            ),
            &[&workspace.as_str(), &model, &after, &super::limit(limit)],
        )
        .doing("reading embeddings")?
        .iter()
        .map(|row| {
            let bytes: &[u8] = row.get(4);
            let vector = bytes
                .chunks_exact(4)
                .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
                .collect();
            let text_hash: i64 = row.get(3);
            Ok((
                row.get(0),
                Embedding {
                    key: RecordKey::new(row.get::<_, String>(1), row.get::<_, String>(2)),
                    text_hash: text_hash as u64,
                    vector,
                },
            ))
        })
        .collect()
}
