//! How each record kind maps to its table: the SQL, the parameters, and the row decoders.
//!
//! Scalars are columns so that they can be indexed and read by operators with the `sqlite3`
//! shell; lists (tags, identities, CRM ids) are JSON text because nothing queries inside them
//! and a side table per list would multiply the writes of every ingest. Enums are stored as
//! their serde names, the same words the API and the strategy files use.
//!
//! Every decoder reads columns by position: the `*_COLUMNS` constant beside it is the one
//! place that order is written down, and every SELECT here is built from it.

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use trellis_core::domain::{
    Asset, Conversation, Forgotten, Merge, Millis, Person, Post, Record, RecordKey, WorkspaceId,
};
use trellis_core::engine::semantic::{Embedded, Embedding};
use trellis_core::store::TextBudget;

/// How many rows the start-up scan reads per query; see `SqliteStore::scan_corpus`.
pub(crate) const SCAN_PAGE: usize = 512;

const PERSON_COLUMNS: &str =
    "source, external_id, display_name, bio, member, identities, crm_ids, created_at";
const CONVERSATION_COLUMNS: &str = "source, external_id, platform, url, title, body, tags, author, open, created_at, last_activity_at";
const POST_COLUMNS: &str =
    "source, external_id, conversation, author, parent, created_at, text, reactions";
const ASSET_COLUMNS: &str = "source, external_id, url, title, text, kind, own, bookmark_count, share_count, tags, created_at";

/// The kinds of record the start-up scan visits, in the order it visits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScannedKind {
    Person,
    Conversation,
    Post,
    Asset,
}

fn json_text<T: Serialize + ?Sized>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value)
        .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))
}

fn json_column<T: DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text = row.get_ref(index)?.as_str()?;
    serde_json::from_str(text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(error))
    })
}

/// An enum as its serde name (`qa_forum`, `bookmark`), without quotes.
fn enum_text<T: Serialize>(value: &T) -> rusqlite::Result<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        Ok(other) => Err(rusqlite::Error::ToSqlConversionFailure(
            format!("expected an enum to serialize as a name, got {other}").into(),
        )),
        Err(error) => Err(rusqlite::Error::ToSqlConversionFailure(Box::new(error))),
    }
}

fn enum_column<T: DeserializeOwned>(name: &str, index: usize) -> rusqlite::Result<T> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(error))
    })
}

fn key_columns(row: &Row<'_>) -> rusqlite::Result<RecordKey> {
    Ok(RecordKey::new(
        row.get::<_, String>(0)?,
        row.get::<_, String>(1)?,
    ))
}

fn person_from_row(row: &Row<'_>) -> rusqlite::Result<Person> {
    Ok(Person {
        key: key_columns(row)?,
        display_name: row.get(2)?,
        bio: row.get(3)?,
        member: row.get(4)?,
        identities: json_column(row, 5)?,
        crm_ids: json_column(row, 6)?,
        created_at: row.get(7)?,
    })
}

fn conversation_from_row(row: &Row<'_>) -> rusqlite::Result<Conversation> {
    let platform = match row.get_ref(2)?.as_str_or_null()? {
        Some(name) => Some(enum_column(name, 2)?),
        None => None,
    };
    Ok(Conversation {
        key: key_columns(row)?,
        platform,
        url: row.get(3)?,
        title: row.get(4)?,
        body: row.get(5)?,
        tags: json_column(row, 6)?,
        author: row.get(7)?,
        open: row.get(8)?,
        created_at: row.get(9)?,
        last_activity_at: row.get(10)?,
    })
}

fn post_from_row(row: &Row<'_>) -> rusqlite::Result<Post> {
    Ok(Post {
        key: key_columns(row)?,
        conversation: row.get(2)?,
        author: row.get(3)?,
        parent: row.get(4)?,
        created_at: row.get(5)?,
        text: row.get(6)?,
        reactions: row.get(7)?,
    })
}

fn asset_from_row(row: &Row<'_>) -> rusqlite::Result<Asset> {
    Ok(Asset {
        key: key_columns(row)?,
        url: row.get(2)?,
        title: row.get(3)?,
        text: row.get(4)?,
        kind: enum_column(row.get_ref(5)?.as_str()?, 5)?,
        own: row.get(6)?,
        bookmark_count: row.get(7)?,
        share_count: row.get(8)?,
        tags: json_column(row, 9)?,
        created_at: row.get(10)?,
    })
}

/// One row of a table, found by its key.
fn by_key<T>(
    connection: &Connection,
    table: &str,
    columns: &str,
    workspace: &WorkspaceId,
    key: &RecordKey,
    decode: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    let sql = format!(
        "SELECT {columns} FROM {table} WHERE workspace = ?1 AND source = ?2 AND external_id = ?3"
    );
    connection
        .prepare_cached(&sql)?
        .query_row(
            params![workspace.as_str(), key.source, key.external_id],
            decode,
        )
        .optional()
}

pub(crate) fn person(
    connection: &Connection,
    workspace: &WorkspaceId,
    key: &RecordKey,
) -> rusqlite::Result<Option<Person>> {
    by_key(
        connection,
        "people",
        PERSON_COLUMNS,
        workspace,
        key,
        person_from_row,
    )
}

pub(crate) fn conversation(
    connection: &Connection,
    workspace: &WorkspaceId,
    key: &RecordKey,
) -> rusqlite::Result<Option<Conversation>> {
    by_key(
        connection,
        "conversations",
        CONVERSATION_COLUMNS,
        workspace,
        key,
        conversation_from_row,
    )
}

pub(crate) fn post(
    connection: &Connection,
    workspace: &WorkspaceId,
    key: &RecordKey,
) -> rusqlite::Result<Option<Post>> {
    by_key(
        connection,
        "posts",
        POST_COLUMNS,
        workspace,
        key,
        post_from_row,
    )
}

pub(crate) fn asset(
    connection: &Connection,
    workspace: &WorkspaceId,
    key: &RecordKey,
) -> rusqlite::Result<Option<Asset>> {
    by_key(
        connection,
        "assets",
        ASSET_COLUMNS,
        workspace,
        key,
        asset_from_row,
    )
}

/// The stored record with the same kind and key as `record`, if any.
pub(crate) fn stored_like(
    connection: &Connection,
    workspace: &WorkspaceId,
    record: &Record,
) -> rusqlite::Result<Option<Record>> {
    Ok(match record {
        Record::Person(incoming) => {
            person(connection, workspace, &incoming.key)?.map(Record::Person)
        }
        Record::Conversation(incoming) => {
            conversation(connection, workspace, &incoming.key)?.map(Record::Conversation)
        }
        Record::Post(incoming) => post(connection, workspace, &incoming.key)?.map(Record::Post),
        Record::Asset(incoming) => asset(connection, workspace, &incoming.key)?.map(Record::Asset),
    })
}

/// Inserts `record`, or overwrites the row with its key. An overwrite keeps the row's `seq`, so
/// a record keeps its place in the start-up scan however often it changes.
pub(crate) fn write(
    connection: &Connection,
    workspace: &WorkspaceId,
    record: &Record,
) -> rusqlite::Result<()> {
    let workspace = workspace.as_str();
    match record {
        Record::Person(person) => connection
            .prepare_cached(
                "INSERT INTO people (workspace, source, external_id, display_name, bio, member, identities, crm_ids, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (workspace, source, external_id) DO UPDATE SET
                     display_name = excluded.display_name,
                     bio = excluded.bio,
                     member = excluded.member,
                     identities = excluded.identities,
                     crm_ids = excluded.crm_ids,
                     created_at = excluded.created_at",
            )?
            .execute(params![
                workspace,
                person.key.source,
                person.key.external_id,
                person.display_name,
                person.bio,
                person.member,
                json_text(&person.identities)?,
                json_text(&person.crm_ids)?,
                person.created_at,
            ]),
        Record::Conversation(conversation) => connection
            .prepare_cached(
                "INSERT INTO conversations (workspace, source, external_id, platform, url, title, body, tags, author, open, created_at, last_activity_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
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
            )?
            .execute(params![
                workspace,
                conversation.key.source,
                conversation.key.external_id,
                conversation.platform.as_ref().map(enum_text).transpose()?,
                conversation.url,
                conversation.title,
                conversation.body,
                json_text(&conversation.tags)?,
                conversation.author,
                conversation.open,
                conversation.created_at,
                conversation.last_activity_at,
            ]),
        Record::Post(post) => connection
            .prepare_cached(
                "INSERT INTO posts (workspace, source, external_id, conversation, author, parent, created_at, text, reactions)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (workspace, source, external_id) DO UPDATE SET
                     conversation = excluded.conversation,
                     author = excluded.author,
                     parent = excluded.parent,
                     created_at = excluded.created_at,
                     text = excluded.text,
                     reactions = excluded.reactions",
            )?
            .execute(params![
                workspace,
                post.key.source,
                post.key.external_id,
                post.conversation,
                post.author,
                post.parent,
                post.created_at,
                post.text,
                post.reactions,
            ]),
        Record::Asset(asset) => connection
            .prepare_cached(
                "INSERT INTO assets (workspace, source, external_id, url, title, text, kind, own, bookmark_count, share_count, tags, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
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
            )?
            .execute(params![
                workspace,
                asset.key.source,
                asset.key.external_id,
                asset.url,
                asset.title,
                asset.text,
                enum_text(&asset.kind)?,
                asset.own,
                asset.bookmark_count,
                asset.share_count,
                json_text(&asset.tags)?,
                asset.created_at,
            ]),
    }
    .map(|changed| debug_assert_eq!(changed, 1, "an upsert writes exactly one row"))
}

/// The posts of one conversation, oldest first; equal (or unknown) times keep insertion order.
/// Unknown times sort first, as `None` does before `Some` in Rust.
pub(crate) fn posts_of(
    connection: &Connection,
    workspace: &WorkspaceId,
    conversation: &RecordKey,
) -> rusqlite::Result<Vec<Post>> {
    posts_while(connection, workspace, conversation, |_| true)
}

/// The first posts of a conversation that `budget` admits. The index on the conversation's
/// posts yields them in order, so SQLite stops reading at the first post turned down.
pub(crate) fn opening_posts(
    connection: &Connection,
    workspace: &WorkspaceId,
    conversation: &RecordKey,
    mut budget: TextBudget,
) -> rusqlite::Result<Vec<Post>> {
    posts_while(connection, workspace, conversation, |post| {
        budget.admits(post.text.len())
    })
}

/// A conversation's posts in order, up to the first that `keep` turns down.
fn posts_while(
    connection: &Connection,
    workspace: &WorkspaceId,
    conversation: &RecordKey,
    mut keep: impl FnMut(&Post) -> bool,
) -> rusqlite::Result<Vec<Post>> {
    let sql = format!(
        "SELECT {POST_COLUMNS} FROM posts
         WHERE workspace = ?1 AND source = ?2 AND conversation = ?3
         ORDER BY created_at, seq"
    );
    let mut statement = connection.prepare_cached(&sql)?;
    let rows = statement.query_map(
        params![
            workspace.as_str(),
            conversation.source,
            conversation.external_id
        ],
        post_from_row,
    )?;
    let mut posts = Vec::new();
    for post in rows {
        let post = post?;
        if !keep(&post) {
            break;
        }
        posts.push(post);
    }
    Ok(posts)
}

fn merge_from_row(row: &Row<'_>) -> rusqlite::Result<Merge> {
    Ok(Merge {
        id: row.get(0)?,
        target: RecordKey::new(row.get::<_, String>(1)?, row.get::<_, String>(2)?),
        others: json_column(row, 3)?,
        confidence: row.get::<_, f64>(4)? as f32,
        reasons: json_column(row, 5)?,
        automatic: row.get(6)?,
        created_at: row.get(7)?,
        undone_at: row.get(8)?,
    })
}

const MERGE_COLUMNS: &str = "id, target_source, target_external_id, others, confidence, reasons, automatic, created_at, undone_at";

pub(crate) fn put_merge(
    connection: &Connection,
    workspace: &WorkspaceId,
    merge: &Merge,
) -> rusqlite::Result<()> {
    connection
        .prepare_cached(&format!(
            "INSERT INTO merges (workspace, {MERGE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ))?
        .execute(params![
            workspace.as_str(),
            merge.id,
            merge.target.source,
            merge.target.external_id,
            json_text(&merge.others)?,
            f64::from(merge.confidence.clamp(0.0, 1.0)),
            json_text(&merge.reasons)?,
            merge.automatic,
            merge.created_at,
            merge.undone_at,
        ])?;
    Ok(())
}

pub(crate) fn merges(
    connection: &Connection,
    workspace: &WorkspaceId,
) -> rusqlite::Result<Vec<Merge>> {
    connection
        .prepare_cached(&format!(
            "SELECT {MERGE_COLUMNS} FROM merges WHERE workspace = ?1 ORDER BY created_at, id"
        ))?
        .query_map(params![workspace.as_str()], merge_from_row)?
        .collect()
}

pub(crate) fn undo_merge(
    connection: &Connection,
    workspace: &WorkspaceId,
    id: &str,
    now: Millis,
) -> rusqlite::Result<Option<Merge>> {
    let changed = connection
        .prepare_cached(
            "UPDATE merges SET undone_at = ?3 WHERE workspace = ?1 AND id = ?2 AND undone_at IS NULL",
        )?
        .execute(params![workspace.as_str(), id, now])?;
    if changed == 0 {
        return Ok(None);
    }
    connection
        .prepare_cached(&format!(
            "SELECT {MERGE_COLUMNS} FROM merges WHERE workspace = ?1 AND id = ?2"
        ))?
        .query_row(params![workspace.as_str(), id], merge_from_row)
        .optional()
}

/// Deletes people and blanks what they wrote; remembers them as forgotten.
pub(crate) fn forget_people(
    connection: &Connection,
    workspace: &WorkspaceId,
    people: &[RecordKey],
    now: Millis,
) -> rusqlite::Result<Forgotten> {
    let mut forgotten = Forgotten::default();
    for person in people {
        let keys = params![workspace.as_str(), person.source, person.external_id];
        let identities: i64 = connection
            .prepare_cached(
                "SELECT COALESCE(SUM(1 + json_array_length(identities)), 0) FROM people
                 WHERE workspace = ?1 AND source = ?2 AND external_id = ?3",
            )?
            .query_row(keys, |row| row.get(0))?;
        forgotten.identities_removed += identities as u64;
        connection
            .prepare_cached(
                "DELETE FROM people WHERE workspace = ?1 AND source = ?2 AND external_id = ?3",
            )?
            .execute(keys)?;
        forgotten.posts_removed += connection
            .prepare_cached(
                "UPDATE posts SET text = '', author = NULL
                 WHERE workspace = ?1 AND source = ?2 AND author = ?3",
            )?
            .execute(keys)? as u64;
        // Vectors of their conversations embed their words: they go before the text does.
        connection
            .prepare_cached(
                "DELETE FROM embeddings WHERE workspace = ?1 AND source = ?2 AND external_id IN
                     (SELECT external_id FROM conversations
                      WHERE workspace = ?1 AND source = ?2 AND author = ?3)",
            )?
            .execute(keys)?;
        forgotten.posts_removed += connection
            .prepare_cached(
                "UPDATE conversations SET title = '', body = '', author = NULL
                 WHERE workspace = ?1 AND source = ?2 AND author = ?3",
            )?
            .execute(keys)? as u64;
        // Their merges go too: the reasons given for them are personal data.
        connection
            .prepare_cached(
                "DELETE FROM merges WHERE workspace = ?1 AND (
                     (target_source = ?2 AND target_external_id = ?3)
                     OR EXISTS (SELECT 1 FROM json_each(merges.others)
                                WHERE json_extract(value, '$.source') = ?2
                                  AND json_extract(value, '$.external_id') = ?3))",
            )?
            .execute(keys)?;
        connection
            .prepare_cached(
                "INSERT INTO forgotten (workspace, source, external_id, forgotten_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                workspace.as_str(),
                person.source,
                person.external_id,
                now
            ])?;
    }
    Ok(forgotten)
}

pub(crate) fn forgotten(
    connection: &Connection,
    workspace: &WorkspaceId,
) -> rusqlite::Result<Vec<RecordKey>> {
    connection
        .prepare_cached(
            "SELECT source, external_id FROM forgotten WHERE workspace = ?1 ORDER BY source, external_id",
        )?
        .query_map(params![workspace.as_str()], |row| {
            Ok(RecordKey::new(row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?
        .collect()
}

/// People after `after` in insertion order, optionally only (non-)members.
pub(crate) fn list_people(
    connection: &Connection,
    workspace: &WorkspaceId,
    member: Option<bool>,
    after: i64,
    limit: usize,
) -> rusqlite::Result<Vec<(i64, Person)>> {
    let member_filter: Option<i64> = member.map(i64::from);
    connection
        .prepare_cached(&format!(
            "SELECT {PERSON_COLUMNS}, seq FROM people
             WHERE workspace = ?1 AND seq > ?2 AND (?3 IS NULL OR member = ?3)
             ORDER BY seq LIMIT ?4"
        ))?
        .query_map(
            params![workspace.as_str(), after, member_filter, limit as i64],
            |row| Ok((row.get(8)?, person_from_row(row)?)),
        )?
        .collect()
}

/// A person's conversations and posts in their source, newest first, up to `limit` of each.
pub(crate) fn writing_of(
    connection: &Connection,
    workspace: &WorkspaceId,
    person: &RecordKey,
    limit: usize,
) -> rusqlite::Result<(Vec<Conversation>, Vec<Post>)> {
    let keys = params![
        workspace.as_str(),
        person.source,
        person.external_id,
        limit as i64
    ];
    let conversations = connection
        .prepare_cached(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations
             WHERE workspace = ?1 AND source = ?2 AND author = ?3
             ORDER BY created_at DESC, seq DESC LIMIT ?4"
        ))?
        .query_map(keys, conversation_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let posts = connection
        .prepare_cached(&format!(
            "SELECT {POST_COLUMNS} FROM posts
             WHERE workspace = ?1 AND source = ?2 AND author = ?3
             ORDER BY created_at DESC, seq DESC LIMIT ?4"
        ))?
        .query_map(keys, post_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((conversations, posts))
}

/// Up to `SCAN_PAGE` records of one kind with `seq` above `after`, in `seq` order, each with
/// its `seq` so the caller can ask for the next page.
pub(crate) fn scan_page(
    connection: &Connection,
    workspace: &WorkspaceId,
    kind: ScannedKind,
    after: i64,
) -> rusqlite::Result<Vec<(i64, Record)>> {
    let (table, columns, seq_index) = match kind {
        ScannedKind::Person => ("people", PERSON_COLUMNS, 8),
        ScannedKind::Conversation => ("conversations", CONVERSATION_COLUMNS, 11),
        ScannedKind::Post => ("posts", POST_COLUMNS, 8),
        ScannedKind::Asset => ("assets", ASSET_COLUMNS, 11),
    };
    let sql = format!(
        "SELECT {columns}, seq FROM {table} WHERE workspace = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
    );
    let mut statement = connection.prepare_cached(&sql)?;
    debug_assert_eq!(statement.column_count(), seq_index + 1);
    statement
        .query_map(
            params![workspace.as_str(), after, SCAN_PAGE as i64],
            |row| {
                let record = match kind {
                    ScannedKind::Person => Record::Person(person_from_row(row)?),
                    ScannedKind::Conversation => Record::Conversation(conversation_from_row(row)?),
                    ScannedKind::Post => Record::Post(post_from_row(row)?),
                    ScannedKind::Asset => Record::Asset(asset_from_row(row)?),
                };
                Ok((row.get(seq_index)?, record))
            },
        )?
        .collect()
}

/// The table of one kind's vectors, and the table of the records they embed (both fixed names:
/// nothing from a caller reaches the SQL).
pub(crate) fn embedding_tables(of: Embedded) -> (&'static str, &'static str) {
    match of {
        Embedded::Conversation => ("embeddings", "conversations"),
        Embedded::Asset => ("asset_embeddings", "assets"),
    }
}

pub(crate) fn put_embeddings(
    connection: &Connection,
    workspace: &WorkspaceId,
    model: &str,
    of: Embedded,
    embeddings: &[Embedding],
) -> rusqlite::Result<()> {
    let (table, records) = embedding_tables(of);
    let mut statement = connection.prepare_cached(&format!(
        "INSERT INTO {table} (workspace, model, source, external_id, text_hash, vector)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6
         WHERE EXISTS (SELECT 1 FROM {records}
                       WHERE workspace = ?1 AND source = ?3 AND external_id = ?4)
         ON CONFLICT (workspace, model, source, external_id)
         DO UPDATE SET text_hash = excluded.text_hash, vector = excluded.vector"
    ))?;
    for embedding in embeddings {
        let vector: Vec<u8> = embedding
            .vector
            .iter()
            .flat_map(|value| value.to_le_bytes())
            .collect();
        statement.execute(params![
            workspace.as_str(),
            model,
            embedding.key.source,
            embedding.key.external_id,
            // Stored as the same 64 bits, signed: SQLite integers are.
            embedding.text_hash as i64,
            vector,
        ])?;
    }
    Ok(())
}

/// One page of a model's embeddings after the rowid `after`, in rowid order, with the rowid.
pub(crate) fn embeddings_page(
    connection: &Connection,
    workspace: &WorkspaceId,
    model: &str,
    of: Embedded,
    after: i64,
    limit: usize,
) -> rusqlite::Result<Vec<(i64, Embedding)>> {
    let (table, _) = embedding_tables(of);
    let mut statement = connection.prepare_cached(&format!(
        "SELECT rowid, source, external_id, text_hash, vector FROM {table}
         WHERE workspace = ?1 AND model = ?2 AND rowid > ?3 ORDER BY rowid LIMIT ?4"
    ))?;
    let rows = statement.query_map(
        params![workspace.as_str(), model, after, limit as i64],
        |row| {
            let bytes: Vec<u8> = row.get(4)?;
            let vector = bytes
                .chunks_exact(4)
                .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
                .collect();
            let text_hash: i64 = row.get(3)?;
            Ok((
                row.get(0)?,
                Embedding {
                    key: RecordKey::new(row.get::<_, String>(1)?, row.get::<_, String>(2)?),
                    text_hash: text_hash as u64,
                    vector,
                },
            ))
        },
    )?;
    rows.collect()
}
