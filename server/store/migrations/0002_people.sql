-- People: what a person wrote is looked up by author, newest first, for evidence and profiles.
CREATE INDEX posts_by_author ON posts (workspace, source, author, created_at);
CREATE INDEX conversations_by_author ON conversations (workspace, source, author, created_at);
