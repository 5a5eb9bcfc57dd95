-- Every published prompt version (`llmwatch prompts publish`, read from the compacted
-- llm.prompts topic): what it says, who committed it, and which labels pointed at it when it
-- was last published. A re-publish replaces the row (newest published_at wins; read with FINAL).
CREATE TABLE IF NOT EXISTS prompt_versions
(
    name                    LowCardinality(String),
    version                 String,
    model                   String,
    template                String,
    config                  String,
    front_matter            String,
    author                  String,
    commit                  String,
    committed_at            DateTime64(3, 'UTC'),
    labels                  Array(String),
    published_at            DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(published_at)
ORDER BY (name, version);
