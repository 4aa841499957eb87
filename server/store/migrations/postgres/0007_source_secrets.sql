-- Connector secrets leave the stored config: the plugin host seals the fields a connector's
-- schema marks as secrets with the operator's key, and keeps the names of those that are set so
-- that answers can say which are set without opening them. A store that held secrets in clear
-- has them moved here, sealed, at the first start with a key (the host does it: SQL cannot seal).

ALTER TABLE sources ADD COLUMN sealed_secrets text NOT NULL DEFAULT '';
ALTER TABLE sources ADD COLUMN secret_names text NOT NULL DEFAULT '';
