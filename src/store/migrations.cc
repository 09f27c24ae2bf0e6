#include "store/migrations.h"

namespace brig::store {
namespace {

// Both schemas say the same thing; only the types differ. 20971520 = kMaxFileBytes and
// 255 = kMaxThreadIdBytes, repeated so that a client writing SQL directly is held to them too.
// Timestamps are int64 microseconds since the Unix epoch.
constexpr Migration kSqlite[] = {
    {1, R"sql(
CREATE TABLE brig_sessions (
  thread_id     TEXT PRIMARY KEY NOT NULL
                CHECK (length(CAST(thread_id AS BLOB)) BETWEEN 1 AND 255),
  created_at    INTEGER NOT NULL,
  last_accessed INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL,
  metadata      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata))
);
CREATE INDEX brig_sessions_expires_at ON brig_sessions (expires_at);

CREATE TABLE brig_files (
  thread_id    TEXT NOT NULL REFERENCES brig_sessions (thread_id) ON DELETE CASCADE,
  path         TEXT NOT NULL CHECK (length(CAST(path AS BLOB)) BETWEEN 1 AND 4096),
  content      BLOB NOT NULL
               CHECK (typeof(content) = 'blob' AND length(content) <= 20971520),
  content_type TEXT NOT NULL,
  size         INTEGER NOT NULL CHECK (size = length(content)),
  created_at   INTEGER NOT NULL,
  modified_at  INTEGER NOT NULL,
  PRIMARY KEY (thread_id, path)
);

CREATE TABLE brig_session_state (
  thread_id      TEXT PRIMARY KEY NOT NULL
                 REFERENCES brig_sessions (thread_id) ON DELETE CASCADE,
  snapshot       BLOB NOT NULL CHECK (typeof(snapshot) = 'blob'),
  format         TEXT NOT NULL,
  guest_build_id TEXT NOT NULL,
  version        INTEGER NOT NULL CHECK (version >= 1),
  updated_at     INTEGER NOT NULL
);
)sql"},
    // The content moves to the last column. SQLite stores a row's columns in order and a large
    // blob in a chain of overflow pages, so reading a column after it (content_type, size)
    // walked the whole chain: listing a session holding 200 MiB read 200 MiB. Columns before
    // the blob are read without touching its pages.
    {2, R"sql(
CREATE TABLE brig_files_v2 (
  thread_id    TEXT NOT NULL REFERENCES brig_sessions (thread_id) ON DELETE CASCADE,
  path         TEXT NOT NULL CHECK (length(CAST(path AS BLOB)) BETWEEN 1 AND 4096),
  content_type TEXT NOT NULL,
  size         INTEGER NOT NULL,
  created_at   INTEGER NOT NULL,
  modified_at  INTEGER NOT NULL,
  content      BLOB NOT NULL
               CHECK (typeof(content) = 'blob' AND length(content) <= 20971520 AND size = length(content)),
  PRIMARY KEY (thread_id, path)
);
INSERT INTO brig_files_v2 (thread_id, path, content_type, size, created_at, modified_at, content)
  SELECT thread_id, path, content_type, size, created_at, modified_at, content FROM brig_files;
DROP TABLE brig_files;
ALTER TABLE brig_files_v2 RENAME TO brig_files;
)sql"},
    // The fallback (brig's portable snapshot) in a table of its own: it is written after
    // the save, and SQLite rewrites a whole row for any update (the snapshot with it).
    {3, R"sql(
CREATE TABLE brig_session_fallback (
  thread_id TEXT PRIMARY KEY NOT NULL REFERENCES brig_sessions (thread_id) ON DELETE CASCADE,
  version   INTEGER NOT NULL CHECK (version >= 1),
  fallback  BLOB NOT NULL CHECK (typeof(fallback) = 'blob')
);
)sql"},
    // Per-session quotas (brig/session_info.h SessionQuotas), a JSON object of those set.
    {4, R"sql(
ALTER TABLE brig_sessions ADD COLUMN quotas TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(quotas));
)sql"},
    // State deltas (store.h): a save stores what changed since the state before it, not the
    // whole state again, until the deltas outgrow it. A delta's save leaves the state's row
    // alone (SQLite would write the whole row, its snapshot with it, to move its version):
    // the state's version is the greater of the row's and its newest delta's.
    {5, R"sql(
ALTER TABLE brig_session_state ADD COLUMN snapshot_version INTEGER NOT NULL DEFAULT 0;
UPDATE brig_session_state SET snapshot_version = version;
CREATE TABLE brig_state_deltas (
  thread_id  TEXT NOT NULL REFERENCES brig_sessions (thread_id) ON DELETE CASCADE,
  version    INTEGER NOT NULL CHECK (version >= 2),
  updated_at INTEGER NOT NULL,
  delta      BLOB NOT NULL CHECK (typeof(delta) = 'blob'),
  PRIMARY KEY (thread_id, version)
);
)sql"},
    // The snapshot moves to the last column, as the files' content did in migration 2: the
    // version read before each execution and checked by each save sat after it, so both
    // walked its chain of overflow pages (a fifth of a durable save's SQLite time).
    {6, R"sql(
CREATE TABLE brig_session_state_v6 (
  thread_id        TEXT PRIMARY KEY NOT NULL
                   REFERENCES brig_sessions (thread_id) ON DELETE CASCADE,
  format           TEXT NOT NULL,
  guest_build_id   TEXT NOT NULL,
  version          INTEGER NOT NULL CHECK (version >= 1),
  updated_at       INTEGER NOT NULL,
  snapshot_version INTEGER NOT NULL DEFAULT 0,
  snapshot         BLOB NOT NULL CHECK (typeof(snapshot) = 'blob')
);
INSERT INTO brig_session_state_v6 (thread_id, format, guest_build_id, version, updated_at, snapshot_version, snapshot)
  SELECT thread_id, format, guest_build_id, version, updated_at, snapshot_version, snapshot FROM brig_session_state;
DROP TABLE brig_session_state;
ALTER TABLE brig_session_state_v6 RENAME TO brig_session_state;
)sql"},
};

constexpr Migration kPostgres[] = {
    {1, R"sql(
CREATE TABLE brig_sessions (
  thread_id     TEXT PRIMARY KEY CHECK (octet_length(thread_id) BETWEEN 1 AND 255),
  created_at    BIGINT NOT NULL,
  last_accessed BIGINT NOT NULL,
  expires_at    BIGINT NOT NULL,
  metadata      JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX brig_sessions_expires_at ON brig_sessions (expires_at);

CREATE TABLE brig_files (
  thread_id    TEXT NOT NULL REFERENCES brig_sessions (thread_id) ON DELETE CASCADE,
  path         TEXT NOT NULL CHECK (octet_length(path) BETWEEN 1 AND 4096),
  content      BYTEA NOT NULL CHECK (octet_length(content) <= 20971520),
  content_type TEXT NOT NULL,
  size         BIGINT NOT NULL CHECK (size = octet_length(content)),
  created_at   BIGINT NOT NULL,
  modified_at  BIGINT NOT NULL,
  PRIMARY KEY (thread_id, path)
);

CREATE TABLE brig_session_state (
  thread_id      TEXT PRIMARY KEY REFERENCES brig_sessions (thread_id) ON DELETE CASCADE,
  snapshot       BYTEA NOT NULL,
  format         TEXT NOT NULL,
  guest_build_id TEXT NOT NULL,
  version        BIGINT NOT NULL CHECK (version >= 1),
  updated_at     BIGINT NOT NULL
);
)sql"},
    // As SQLite's migration 3.
    {2, R"sql(
CREATE TABLE brig_session_fallback (
  thread_id TEXT PRIMARY KEY REFERENCES brig_sessions (thread_id) ON DELETE CASCADE,
  version   BIGINT NOT NULL CHECK (version >= 1),
  fallback  BYTEA NOT NULL
);
)sql"},
    // Per-session quotas (brig/session_info.h SessionQuotas), a JSON object of those set.
    {3, R"sql(
ALTER TABLE brig_sessions ADD COLUMN IF NOT EXISTS quotas JSONB NOT NULL DEFAULT '{}'::jsonb;
)sql"},
    // The seed every node's image is made with (Store::SharedImageSeed): one row, the first
    // node's choice.
    {4, R"sql(
CREATE TABLE brig_image_seed (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  seed BIGINT NOT NULL
);
)sql"},
    // Snapshots are zstd-compressed already: stored out of line without pglz trying again
    // (EXTERNAL), which cost PostgreSQL's backend CPU on every save for nothing.
    {5, R"sql(
ALTER TABLE brig_session_state ALTER COLUMN snapshot SET STORAGE EXTERNAL;
ALTER TABLE brig_session_fallback ALTER COLUMN fallback SET STORAGE EXTERNAL;
)sql"},
    // As SQLite's migration 5, except that a delta's save moves the state row's version too
    // (an UPDATE leaves its out-of-line snapshot where it is). A delta (a few KB) stays in its
    // heap row up to a page's size (toast_tuple_target) instead of going out of line in chunks.
    {6, R"sql(
ALTER TABLE brig_session_state ADD COLUMN snapshot_version BIGINT NOT NULL DEFAULT 0;
UPDATE brig_session_state SET snapshot_version = version;
CREATE TABLE brig_state_deltas (
  thread_id  TEXT NOT NULL REFERENCES brig_sessions (thread_id) ON DELETE CASCADE,
  version    BIGINT NOT NULL CHECK (version >= 2),
  updated_at BIGINT NOT NULL,
  delta      BYTEA NOT NULL,
  PRIMARY KEY (thread_id, version)
) WITH (toast_tuple_target = 8160);
ALTER TABLE brig_state_deltas ALTER COLUMN delta SET STORAGE EXTERNAL;
)sql"},
};

}  // namespace

std::span<const Migration> SqliteMigrations() { return kSqlite; }
std::span<const Migration> PostgresMigrations() { return kPostgres; }

}  // namespace brig::store
