-- Launch templates (`lt-…`) and their numbered versions. A scaling group may make its instances
-- from a template version instead of a scaling configuration; a rolling image update never
-- changes a template (the seeds' rule).
CREATE TABLE launch_templates (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    generation BIGINT NOT NULL
);

CREATE TABLE launch_template_versions (
    template_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (template_id, version)
);
