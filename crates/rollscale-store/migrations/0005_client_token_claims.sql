-- A ClientToken claim names its holder and says when the holder was last seen alive:
-- `claim` is a random id the holding request chose, so that only that request records the
-- answer or gives the token back; `alive_at` is refreshed while its operation runs, so that
-- only a claim whose request died is taken over. Claims from before hold '' and their
-- `created_at`: their requests died with the process that ran them.
ALTER TABLE client_tokens ADD COLUMN claim TEXT NOT NULL DEFAULT '';
ALTER TABLE client_tokens ADD COLUMN alive_at BIGINT NOT NULL DEFAULT 0;
UPDATE client_tokens SET alive_at = created_at;
