//! The semantic tier in the service: embedding conversations off the request path, keeping the
//! vectors in the store so a restart does not embed again, and saying which mode runs.
//!
//! Embedding is thousands of times slower than indexing words, so it never happens inside a
//! write. A background worker calls [`Trellis::embed_pending`] in a loop: it takes a batch of
//! conversations whose text has no vector yet, embeds them with no lock held, stores the vectors,
//! and hands them to the engine, which takes only those whose text has not changed meanwhile.

use super::{Trellis, poisoned};
use crate::domain::WorkspaceId;
use crate::engine::semantic::{
    Embedded, Embedding, asset_embedding_text, embedding_text, text_hash,
};
use crate::error::{CoreError, CoreResult};

/// Which mode the engine runs in, and how far embedding has come per workspace.
#[derive(Debug, Clone, PartialEq)]
pub struct SemanticStatus {
    /// The embedding model while the semantic tier is on; `None` means lexical-only.
    pub model_id: Option<String>,
    /// Why the tier is off, with the fix; empty while it is on.
    pub lexical_only_reason: String,
    /// The languages whose meaning the model reads (ISO 639-1); empty while the tier is off.
    pub meaning_languages: Vec<&'static str>,
    pub workspaces: Vec<WorkspaceEmbeddings>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceEmbeddings {
    pub workspace: WorkspaceId,
    pub conversations: usize,
    /// Conversations whose current text has a vector.
    pub embedded: usize,
    /// Conversations still waiting for one.
    pub pending: usize,
    /// Assets whose current text has a vector.
    pub assets_embedded: usize,
    /// Assets still waiting for one.
    pub assets_pending: usize,
    /// The languages of its conversations and posts, most used first.
    pub languages: Vec<crate::engine::LanguageCount>,
}

/// The text of a facet that is embedded: its name, description, keywords and examples.
pub(super) fn facet_text(facet: &crate::strategy::Facet) -> String {
    let mut text = format!("{}. {}", facet.name.trim(), facet.description.trim());
    for extra in facet.keywords.iter().chain(&facet.examples) {
        text.push(' ');
        text.push_str(extra.trim());
    }
    text
}

impl Trellis {
    /// The sentence embeddings of a strategy's facets, in its order; `None` while the semantic
    /// tier is off or when the model fails (said in the log: scoring then stays lexical).
    pub(super) fn facet_vectors(
        &self,
        strategy: &crate::strategy::Strategy,
    ) -> Option<Vec<Vec<f32>>> {
        let embedder = self.embedder.as_ref()?;
        let texts: Vec<String> = strategy.facets.iter().map(facet_text).collect();
        let borrowed: Vec<&str> = texts.iter().map(String::as_str).collect();
        match embedder.embed(&borrowed) {
            Ok(vectors) if vectors.len() == texts.len() => Some(vectors),
            Ok(_) => {
                tracing::warn!(
                    "the embedder returned a wrong number of facet vectors; facets are matched by words only"
                );
                None
            }
            Err(error) => {
                tracing::warn!(%error, "facets could not be embedded; they are matched by words only");
                None
            }
        }
    }

    /// The semantic tier's mode and progress.
    pub fn semantic_status(&self) -> CoreResult<SemanticStatus> {
        let engines = self.engines.read().map_err(poisoned)?;
        let mut workspaces = Vec::with_capacity(engines.len());
        for (workspace, engine) in engines.iter() {
            let engine = Self::read(engine)?;
            workspaces.push(WorkspaceEmbeddings {
                workspace: workspace.clone(),
                conversations: engine.conversation_count(),
                embedded: engine.semantic().embedded_count(),
                pending: engine.semantic().pending_count(),
                assets_embedded: engine.asset_semantic().embedded_count(),
                assets_pending: engine.asset_semantic().pending_count(),
                languages: engine.languages(),
            });
        }
        workspaces.sort_by(|a, b| a.workspace.cmp(&b.workspace));
        Ok(SemanticStatus {
            model_id: self
                .embedder
                .as_ref()
                .map(|embedder| embedder.model_id().to_owned()),
            lexical_only_reason: self.lexical_only_reason.clone(),
            meaning_languages: self
                .embedder
                .as_ref()
                .map(|embedder| embedder.languages().to_vec())
                .unwrap_or_default(),
            workspaces,
        })
    }

    /// Embeds up to `batch` pending conversations of each workspace, then, when none is
    /// pending, up to `batch` pending assets; returns how many vectors the engines took. 0 when
    /// the tier is off or nothing is pending, so a worker can rest.
    pub fn embed_pending(&self, batch: usize) -> CoreResult<usize> {
        let Some(embedder) = &self.embedder else {
            return Ok(0);
        };
        let mut taken = 0;
        for (workspace, engine) in self.loaded_engines()? {
            // Conversations first: scoring and suggestions read their vectors; assets wait.
            let (of, pending) = {
                let engine = Self::read(&engine)?;
                let conversations = engine.semantic().pending(batch);
                if conversations.is_empty() {
                    (Embedded::Asset, engine.asset_semantic().pending(batch))
                } else {
                    (Embedded::Conversation, conversations)
                }
            };
            if pending.is_empty() {
                continue;
            }
            let mut keys = Vec::with_capacity(pending.len());
            let mut texts = Vec::with_capacity(pending.len());
            for key in pending {
                let text = match of {
                    Embedded::Conversation => self
                        .store
                        .conversation(&workspace, &key)?
                        .map(|conversation| embedding_text(&conversation)),
                    Embedded::Asset => self
                        .store
                        .asset(&workspace, &key)?
                        .map(|asset| asset_embedding_text(&asset)),
                };
                if let Some(text) = text {
                    texts.push(text);
                    keys.push(key);
                }
            }
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let vectors = embedder.embed(&refs).map_err(|error| {
                CoreError::Internal(format!(
                    "the semantic tier could not embed {}s of workspace {workspace:?}: {error}",
                    of.as_str()
                ))
            })?;
            let embeddings: Vec<Embedding> = keys
                .into_iter()
                .zip(&texts)
                .zip(vectors)
                .map(|((key, text), vector)| Embedding {
                    key,
                    text_hash: text_hash(text),
                    vector,
                })
                .collect();
            self.store
                .put_embeddings(&workspace, embedder.model_id(), of, &embeddings)?;
            let mut engine = engine.write().map_err(poisoned)?;
            taken += match of {
                Embedded::Conversation => engine.insert_embeddings(embeddings),
                Embedded::Asset => engine.insert_asset_embeddings(embeddings),
            };
        }
        Ok(taken)
    }

    /// The embedding of a free text, while the semantic tier is on; `None` when it is off. A
    /// failing model is logged by the caller's error and the request goes on lexically.
    pub(crate) fn embed_text(&self, title: &str, body: &str) -> Option<Vec<f32>> {
        let embedder = self.embedder.as_ref()?;
        let text = embedding_text(&crate::domain::Conversation {
            title: title.to_owned(),
            body: body.to_owned(),
            ..crate::domain::Conversation::default()
        });
        embedder.embed(&[&text]).ok()?.pop()
    }
}
