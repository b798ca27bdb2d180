import GRDB

/// Recognises a database file that is not, or no longer, an SQLite database
/// (truncated, overwritten, a wrong file restored), so the server and the
/// device can say "restore it from backup" instead of a raw SQLite error.
public enum DamagedStore {
    public static func isDamage(_ error: any Error) -> Bool {
        guard let error = error as? DatabaseError else { return false }
        return error.resultCode == .SQLITE_CORRUPT || error.resultCode == .SQLITE_NOTADB
    }
}
