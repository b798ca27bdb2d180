import GRDB

/// The store's schema. One registered migration per change, never edited
/// after release (STYLE: GRDB).
enum Migrations {
    static func migrator() -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

                CREATE TABLE users (
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL UNIQUE,
                    role TEXT NOT NULL,
                    contact TEXT NOT NULL DEFAULT '',
                    disabled INTEGER NOT NULL DEFAULT 0,
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE admin_tokens (
                    token_hash BLOB PRIMARY KEY,
                    user_id INTEGER NOT NULL REFERENCES users(id),
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE enrollment_codes (
                    code_hash BLOB PRIMARY KEY,
                    user_id INTEGER NOT NULL REFERENCES users(id),
                    expires_at INTEGER NOT NULL,
                    used_at INTEGER
                );
                CREATE TABLE devices (
                    id TEXT PRIMARY KEY,
                    user_id INTEGER NOT NULL REFERENCES users(id),
                    replica INTEGER NOT NULL UNIQUE,
                    token_hash BLOB NOT NULL UNIQUE,
                    name TEXT NOT NULL,
                    enrolled_at INTEGER NOT NULL,
                    last_sync_at INTEGER,
                    last_cursor INTEGER NOT NULL DEFAULT 0,
                    revoked_at INTEGER,
                    held BLOB,
                    audit_ack INTEGER NOT NULL DEFAULT 0,
                    clock_skew INTEGER NOT NULL DEFAULT 0
                );

                CREATE TABLE households (
                    id BLOB PRIMARY KEY,
                    created_at INTEGER NOT NULL,
                    created_by TEXT NOT NULL
                );
                CREATE TABLE segments (
                    id INTEGER PRIMARY KEY,
                    household BLOB NOT NULL,
                    purpose TEXT NOT NULL,
                    epoch INTEGER NOT NULL,
                    context BLOB NOT NULL,
                    context_seq INTEGER NOT NULL,
                    context_writer INTEGER NOT NULL,
                    context_other_seq INTEGER NOT NULL,
                    last_seq INTEGER NOT NULL,
                    created_seq INTEGER NOT NULL DEFAULT 0,
                    digest BLOB NOT NULL DEFAULT x'',
                    UNIQUE (household, purpose)
                );
                CREATE INDEX segments_last_seq ON segments(last_seq);
                CREATE TABLE epochs (
                    household BLOB NOT NULL,
                    purpose TEXT NOT NULL,
                    epoch INTEGER NOT NULL,
                    PRIMARY KEY (household, purpose)
                ) WITHOUT ROWID;
                CREATE TABLE elements (
                    segment_id INTEGER NOT NULL REFERENCES segments(id),
                    key BLOB NOT NULL,
                    seq INTEGER NOT NULL,
                    writer INTEGER NOT NULL,
                    other_seq INTEGER NOT NULL,
                    data BLOB NOT NULL,
                    PRIMARY KEY (segment_id, key)
                ) WITHOUT ROWID;

                CREATE TABLE ops (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    household BLOB NOT NULL,
                    purpose TEXT NOT NULL,
                    epoch INTEGER NOT NULL,
                    replica INTEGER NOT NULL,
                    counter INTEGER NOT NULL,
                    fingerprint BLOB NOT NULL,
                    rejection TEXT,
                    at INTEGER NOT NULL,
                    UNIQUE (household, purpose, epoch, replica, counter)
                );
                CREATE TABLE quarantine (
                    seq INTEGER PRIMARY KEY,
                    household BLOB NOT NULL,
                    purpose TEXT NOT NULL,
                    device_id TEXT NOT NULL,
                    user TEXT NOT NULL,
                    reason TEXT NOT NULL,
                    op BLOB NOT NULL,
                    at INTEGER NOT NULL,
                    status TEXT NOT NULL DEFAULT 'held'
                );
                CREATE INDEX quarantine_household ON quarantine(household, purpose);

                CREATE TABLE assignments (
                    user_id INTEGER NOT NULL REFERENCES users(id),
                    household BLOB NOT NULL,
                    until INTEGER,
                    created_at INTEGER NOT NULL,
                    PRIMARY KEY (user_id, household)
                );
                CREATE INDEX assignments_household ON assignments(household);
                CREATE TABLE grants (
                    id INTEGER PRIMARY KEY,
                    user_id INTEGER NOT NULL REFERENCES users(id),
                    purpose TEXT NOT NULL,
                    access TEXT NOT NULL,
                    household BLOB,
                    until INTEGER,
                    created_by TEXT NOT NULL,
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE consent_blocks (
                    id INTEGER PRIMARY KEY,
                    household BLOB NOT NULL,
                    purpose TEXT,
                    created_by TEXT NOT NULL,
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE erasures (
                    id INTEGER PRIMARY KEY,
                    household BLOB NOT NULL,
                    purpose TEXT NOT NULL,
                    old_epoch INTEGER NOT NULL,
                    at INTEGER NOT NULL,
                    by TEXT NOT NULL
                );
                CREATE TABLE conflicts (
                    segment_id INTEGER NOT NULL,
                    name TEXT NOT NULL,
                    item TEXT NOT NULL DEFAULT '',
                    kind TEXT NOT NULL,
                    value_ids TEXT NOT NULL,
                    detected_at INTEGER NOT NULL,
                    PRIMARY KEY (segment_id, name, item)
                ) WITHOUT ROWID;

                CREATE TABLE audit (
                    seq INTEGER PRIMARY KEY,
                    at INTEGER NOT NULL,
                    actor TEXT NOT NULL,
                    device TEXT NOT NULL DEFAULT '',
                    action TEXT NOT NULL,
                    household BLOB,
                    purpose TEXT NOT NULL DEFAULT '',
                    count INTEGER NOT NULL DEFAULT 0,
                    detail TEXT NOT NULL DEFAULT '',
                    mac BLOB NOT NULL
                );
                CREATE INDEX audit_household ON audit(household);
                CREATE TABLE device_reads (
                    device_id TEXT NOT NULL,
                    device_seq INTEGER NOT NULL,
                    PRIMARY KEY (device_id, device_seq)
                ) WITHOUT ROWID;
                """)
        }
        // A pull reads the elements changed since the device's cursor; without
        // this it read every element of the segment (every contact note) and
        // filtered them.
        migrator.registerMigration("v2-elements-by-seq") { db in
            try db.execute(sql: "CREATE INDEX elements_changed ON elements(segment_id, seq)")
        }
        // Every field name the store has run with, bound to its purpose and type
        // (SchemaBindings): a later --schema may retire a field, never rebind it.
        migrator.registerMigration("v3-schema-fields") { db in
            try db.execute(sql: "CREATE TABLE schema_fields (name TEXT PRIMARY KEY, purpose TEXT NOT NULL, type TEXT NOT NULL) WITHOUT ROWID")
        }
        // Facts about the store itself, e.g. which audit key signs its log (AuditLog).
        migrator.registerMigration("v4-store-meta") { db in
            try db.execute(sql: "CREATE TABLE store_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID")
        }
        // Each offline read's chain hash, so that a read that reuses a stored number (a device
        // restored from a backup) is told from a repeat of the same read (a lost response).
        migrator.registerMigration("v5-device-read-hashes") { db in
            try db.execute(sql: "ALTER TABLE device_reads ADD COLUMN chain_hash BLOB")
            // Reads stored under a number already taken, by hash: a repeat of one is skipped.
            try db.execute(sql: """
                CREATE TABLE device_reads_reused (
                    device_id TEXT NOT NULL,
                    chain_hash BLOB NOT NULL,
                    PRIMARY KEY (device_id, chain_hash)
                ) WITHOUT ROWID
                """)
        }
        return migrator
    }
}
