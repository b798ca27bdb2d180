import SyncCore

/// The stored form of element keys: the `elements` table's key column.
extension ElementKey {
    var storageKey: [UInt8] {
        var writer = BinaryWriter(capacity: 24)
        switch self {
        case .creation:
            writer.byte(0)
        case .field(let name):
            writer.byte(1)
            writer.string(name)
        case .logEntry(let log, let dot):
            writer.byte(2)
            writer.string(log)
            writer.dot(dot)
        case .item(let collection, let id):
            writer.byte(3)
            writer.string(collection)
            writer.dot(id)
        }
        return writer.bytes
    }
}

extension CausalContext {
    var storageBytes: [UInt8] {
        var writer = BinaryWriter(capacity: 32)
        writer.context(self)
        return writer.bytes
    }

    init(storageBytes: [UInt8]) throws {
        var reader = BinaryReader(storageBytes)
        self = try reader.context()
    }
}
