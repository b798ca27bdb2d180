import GRDB
import HTTPTypes
import SyncCore

/// DESIGN §2: "a field's purpose and type never change". The purpose binding
/// is what keeps a field's data with the people granted that purpose, so a
/// `--schema` that moved `address` from REGIE to WMO would quietly hand data
/// written under one purpose to the holders of another (and a type change
/// would let new values of another type sit beside the stored ones). The
/// store remembers each field it has run with and refuses a schema that
/// rebinds or drops one; retiring a field and adding new ones are fine.
enum SchemaBindings {
    static func checkAndRecord(_ schema: Schema, in db: Database) throws {
        for row in try Row.fetchAll(db, sql: "SELECT name, purpose, type FROM schema_fields ORDER BY name") {
            let name: String = row["name"]
            let purpose: String = row["purpose"]
            let type: String = row["type"]
            guard let field = schema.field(name) else {
                throw refusal("drops field \"\(name)\" (purpose \(purpose)), which this store has held. Keep it in the schema with \"retired\": true")
            }
            if field.purpose.rawValue != purpose {
                throw refusal("moves field \"\(name)\" from purpose \(purpose) to \(field.purpose.rawValue). A field's purpose never changes: add a new field for \(field.purpose.rawValue) and retire this one (moving its data is an audited migration)")
            }
            if field.type.rawValue != type {
                throw refusal("changes the type of field \"\(name)\" from \(type) to \(field.type.rawValue). A field's type never changes: add a new field and retire this one")
            }
        }
        let insert = try db.cachedStatement(sql: "INSERT OR IGNORE INTO schema_fields (name, purpose, type) VALUES (?, ?, ?)")
        for field in schema.fields {
            try insert.execute(arguments: [field.name, field.purpose.rawValue, field.type.rawValue])
        }
    }

    private static func refusal(_ what: String) -> ServerError {
        ServerError(.internalError, "The schema given to fieldsyncd \(what). The server did not start; start it with a schema that keeps every field's purpose and type.",
                    status: .internalServerError)
    }
}
