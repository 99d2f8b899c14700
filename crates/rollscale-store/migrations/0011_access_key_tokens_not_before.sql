-- Bearer tokens made before an AccessKey's last disable stay refused for good (issue 14): the
-- time of that disable, in Unix milliseconds; 0 for a key never disabled. Enabling the key
-- again leaves it as it is.
ALTER TABLE access_keys ADD COLUMN tokens_not_before BIGINT NOT NULL DEFAULT 0;
