public import Foundation

/// The field registry (DESIGN §2): a versioned schema that binds every field,
/// log and collection to exactly one purpose. Devices receive the whole schema,
/// identified by a content hash; only data is filtered.
public struct Schema: Hashable, Sendable, Codable {
    public struct PurposeInfo: Hashable, Sendable, Codable {
        public var code: Purpose
        public var title: String
        /// Art. 9 special-category data: every disclosure is audited as sensitive,
        /// and involvement under it is shown without the purpose to outsiders.
        public var sensitive: Bool
        /// Never disclosed to any device (e.g. BSN).
        public var serverOnly: Bool

        public init(code: Purpose, title: String, sensitive: Bool = false, serverOnly: Bool = false) {
            self.code = code
            self.title = title
            self.sensitive = sensitive
            self.serverOnly = serverOnly
        }

        enum CodingKeys: String, CodingKey { case code, title, sensitive, serverOnly }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            code = try c.decode(Purpose.self, forKey: .code)
            title = try c.decodeIfPresent(String.self, forKey: .title) ?? code.rawValue
            sensitive = try c.decodeIfPresent(Bool.self, forKey: .sensitive) ?? false
            serverOnly = try c.decodeIfPresent(Bool.self, forKey: .serverOnly) ?? false
        }
    }

    public enum FieldType: String, Hashable, Sendable, Codable {
        case text, date, bool, number, choice, workerRef
    }

    public struct Field: Hashable, Sendable, Codable {
        public var name: String
        public var purpose: Purpose
        public var type: FieldType
        public var sensitive: Bool
        public var retired: Bool
        /// For `choice` fields.
        public var options: [String]
        /// A post-merge invariant: `single` means concurrent distinct values are
        /// an invariant violation (one regisseur, DOMAIN §3.4).
        public var invariant: String?
        public var description: String?

        public init(name: String, purpose: Purpose, type: FieldType, sensitive: Bool = false, retired: Bool = false,
                    options: [String] = [], invariant: String? = nil, description: String? = nil) {
            self.name = name
            self.purpose = purpose
            self.type = type
            self.sensitive = sensitive
            self.retired = retired
            self.options = options
            self.invariant = invariant
            self.description = description
        }

        enum CodingKeys: String, CodingKey { case name, purpose, type, sensitive, retired, options, invariant, description }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            purpose = try c.decode(Purpose.self, forKey: .purpose)
            type = try c.decode(FieldType.self, forKey: .type)
            sensitive = try c.decodeIfPresent(Bool.self, forKey: .sensitive) ?? false
            retired = try c.decodeIfPresent(Bool.self, forKey: .retired) ?? false
            options = try c.decodeIfPresent([String].self, forKey: .options) ?? []
            invariant = try c.decodeIfPresent(String.self, forKey: .invariant)
            description = try c.decodeIfPresent(String.self, forKey: .description)
        }
    }

    public struct Log: Hashable, Sendable, Codable {
        public var name: String
        public var purpose: Purpose
        public var kinds: [String]
        public var retired: Bool

        public init(name: String, purpose: Purpose, kinds: [String], retired: Bool = false) {
            self.name = name
            self.purpose = purpose
            self.kinds = kinds
            self.retired = retired
        }

        enum CodingKeys: String, CodingKey { case name, purpose, kinds, retired }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            purpose = try c.decode(Purpose.self, forKey: .purpose)
            kinds = try c.decodeIfPresent([String].self, forKey: .kinds) ?? []
            retired = try c.decodeIfPresent(Bool.self, forKey: .retired) ?? false
        }
    }

    public struct Collection: Hashable, Sendable, Codable {
        public var name: String
        public var purpose: Purpose
        public var statuses: [String]
        public var retired: Bool

        public init(name: String, purpose: Purpose, statuses: [String] = ["open", "done"], retired: Bool = false) {
            self.name = name
            self.purpose = purpose
            self.statuses = statuses
            self.retired = retired
        }

        enum CodingKeys: String, CodingKey { case name, purpose, statuses, retired }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            purpose = try c.decode(Purpose.self, forKey: .purpose)
            statuses = try c.decodeIfPresent([String].self, forKey: .statuses) ?? ["open", "done"]
            retired = try c.decodeIfPresent(Bool.self, forKey: .retired) ?? false
        }
    }

    public var format: Int
    public var name: String
    public var version: Int
    public var purposes: [PurposeInfo]
    public var fields: [Field]
    public var logs: [Log]
    public var collections: [Collection]

    public init(name: String, version: Int, purposes: [PurposeInfo], fields: [Field], logs: [Log],
                collections: [Collection]) throws(SyncCoreError) {
        self.format = 1
        self.name = name
        self.version = version
        self.purposes = purposes
        self.fields = fields
        self.logs = logs
        self.collections = collections
        try validate()
        buildIndexes()
    }

    // Lookup tables, rebuilt after decoding; not part of the hash or the JSON.
    /// By the name's bytes (names are snake_case ASCII, so bytes are the name).
    private var fieldIndex: [ByteKey: Int] = [:]
    private var logIndex: [PurposeAndName: Int] = [:]
    private var collectionIndex: [PurposeAndName: Int] = [:]

    /// A log or collection is named within its purpose. A key of both, not a
    /// "PURPOSE/name" string: every pushed op looks one up, and building the
    /// string allocated for each.
    private struct PurposeAndName: Hashable, Sendable {
        var purpose: Purpose
        var name: ByteKey

        init(purpose: Purpose, name: String) {
            self.purpose = purpose
            self.name = ByteKey(name)
        }

        func _rawHashValue(seed: Int) -> Int {
            KeyHash.hash(purpose.code, UInt64(bitPattern: Int64(name._rawHashValue(seed: seed))), seed: seed)
        }
    }

    enum CodingKeys: String, CodingKey { case format, name, version, purposes, fields, logs, collections }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        format = try c.decodeIfPresent(Int.self, forKey: .format) ?? 1
        name = try c.decode(String.self, forKey: .name)
        version = try c.decode(Int.self, forKey: .version)
        purposes = try c.decode([PurposeInfo].self, forKey: .purposes)
        fields = try c.decodeIfPresent([Field].self, forKey: .fields) ?? []
        logs = try c.decodeIfPresent([Log].self, forKey: .logs) ?? []
        collections = try c.decodeIfPresent([Collection].self, forKey: .collections) ?? []
        try validate()
        buildIndexes()
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(format, forKey: .format)
        try c.encode(name, forKey: .name)
        try c.encode(version, forKey: .version)
        try c.encode(purposes, forKey: .purposes)
        try c.encode(fields, forKey: .fields)
        try c.encode(logs, forKey: .logs)
        try c.encode(collections, forKey: .collections)
    }

    public static func == (lhs: Schema, rhs: Schema) -> Bool { lhs.contentHash == rhs.contentHash }
    public func hash(into hasher: inout Hasher) { hasher.combine(contentHash) }

    /// Loads a schema from JSON, with an error that names the problem.
    public static func load(json data: Data) throws(SyncCoreError) -> Schema {
        do {
            return try JSONDecoder().decode(Schema.self, from: data)
        } catch let error as SyncCoreError {
            throw error
        } catch let DecodingError.keyNotFound(key, context) {
            throw SyncCoreError(.invalidSchema, "Schema is missing \"\(key.stringValue)\" at \(Self.path(context.codingPath)). Add it and load the schema again.")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw SyncCoreError(.invalidSchema, "Schema has a value of the wrong type at \(Self.path(context.codingPath)). \(context.debugDescription)")
        } catch let DecodingError.dataCorrupted(context) {
            throw SyncCoreError(.invalidSchema, "Schema is not valid JSON or has a bad value at \(Self.path(context.codingPath)): \(context.debugDescription)")
        } catch {
            throw SyncCoreError(.invalidSchema, "Schema could not be read: \(error)")
        }
    }

    private static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.isEmpty ? "the top level" : codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    private func validate() throws(SyncCoreError) {
        func fail(_ message: String) -> SyncCoreError { SyncCoreError(.invalidSchema, message) }
        guard format == 1 else { throw fail("Schema format \(format) is not supported (expected 1). Upgrade FieldSync.") }
        var codes = Set<Purpose>()
        for purpose in purposes {
            guard Self.isCode(purpose.code.rawValue) else { throw fail("Purpose code \"\(purpose.code)\" must be upper-case letters, digits and _.") }
            guard codes.insert(purpose.code).inserted else { throw fail("Purpose \(purpose.code) is listed twice.") }
        }
        var names = Set<String>()
        for field in fields {
            guard Self.isName(field.name) else { throw fail("Field name \"\(field.name)\" must be snake_case (a-z, 0-9, _).") }
            guard names.insert(field.name).inserted else { throw fail("Field \(field.name) is listed twice; field names must be unique.") }
            guard codes.contains(field.purpose) else { throw fail("Field \(field.name) names purpose \(field.purpose), which the schema does not list.") }
            if field.type == .choice, field.options.isEmpty { throw fail("Choice field \(field.name) has no options.") }
        }
        var logKeys = Set<String>()
        for log in logs {
            guard Self.isName(log.name) else { throw fail("Log name \"\(log.name)\" must be snake_case.") }
            guard codes.contains(log.purpose) else { throw fail("Log \(log.name) names purpose \(log.purpose), which the schema does not list.") }
            guard logKeys.insert("\(log.purpose)/\(log.name)").inserted else { throw fail("Log \(log.name) is listed twice for \(log.purpose).") }
            guard !log.kinds.isEmpty else { throw fail("Log \(log.name) (\(log.purpose)) lists no kinds.") }
        }
        var collectionKeys = Set<String>()
        for collection in collections {
            guard Self.isName(collection.name) else { throw fail("Collection name \"\(collection.name)\" must be snake_case.") }
            guard codes.contains(collection.purpose) else { throw fail("Collection \(collection.name) names purpose \(collection.purpose), which the schema does not list.") }
            guard collectionKeys.insert("\(collection.purpose)/\(collection.name)").inserted else { throw fail("Collection \(collection.name) is listed twice for \(collection.purpose).") }
            guard !collection.statuses.isEmpty else { throw fail("Collection \(collection.name) lists no statuses.") }
        }
        guard codes.contains(.regie) else { throw fail("The schema must list the REGIE purpose (the shared plan).") }
    }

    private static func isName(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64 && text.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
    }

    private static func isCode(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 32 && text.utf8.allSatisfy { ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
    }

    private mutating func buildIndexes() {
        fieldIndex = Dictionary(uniqueKeysWithValues: fields.enumerated().map { (ByteKey($1.name), $0) })
        logIndex = Dictionary(uniqueKeysWithValues: logs.enumerated().map { (PurposeAndName(purpose: $1.purpose, name: $1.name), $0) })
        collectionIndex = Dictionary(uniqueKeysWithValues: collections.enumerated().map {
            (PurposeAndName(purpose: $1.purpose, name: $1.name), $0)
        })
        contentHash = Self.computeHash(self)
    }

    /// SHA-256 of the canonical JSON (sorted keys), as lowercase hex.
    public private(set) var contentHash: String = ""

    private static func computeHash(_ schema: Schema) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(schema)) ?? Data()
        return SHA256Digest.hex(SHA256Digest.hash(Array(data)))
    }

    /// The first 16 hex digits of the content hash: what a device sends (64 bits
    /// are plenty to notice a different schema, and it keeps a sync small).
    public var shortHash: String { String(contentHash.prefix(16)) }

    /// Whether a device's schema hash (short or full) names this schema.
    public func matches(_ hash: String) -> Bool { hash.count >= 16 && contentHash.hasPrefix(hash) }

    public func field(_ name: String) -> Field? { withField(name) { $0 } }
    public func log(_ name: String, purpose: Purpose) -> Log? { withLog(name, purpose: purpose) { $0 } }
    public func collection(_ name: String, purpose: Purpose) -> Collection? { withCollection(name, purpose: purpose) { $0 } }

    // Definitions read in place, for the validator that checks every op: a
    // copy of a definition retains each of its strings and lists.
    func withField<Result>(_ name: String, _ body: (Field) -> Result) -> Result? {
        guard let index = fieldIndex[ByteKey(name)] else { return nil }
        return fields.withUnsafeBufferPointer { body($0[index]) }
    }
    /// The validator's check of a write of `value` to field `name` in a segment
    /// of `purpose`: nil when the schema has no such field, else the refusal
    /// (nil inside: fine). The definition is read through a pointer, field by
    /// field: handed whole to a closure or to `typeProblem`, it was copied
    /// first (each of its strings and lists retained), for every pushed write.
    func checkWrite(of name: String, purpose: Purpose, value: String) -> RefusalReason?? {
        guard let index = fieldIndex[ByteKey(name)] else { return nil }
        return fields.withUnsafeBufferPointer { fields -> RefusalReason?? in
            let field = fields.baseAddress! + index
            guard field.pointee.purpose == purpose else { return .some(.unknownField) }
            if field.pointee.retired { return .some(.fieldRetired) }
            // Free text, nearly every field: `typeProblem`'s first check, without the copy.
            if field.pointee.type == .text { return .some(value.utf8.count <= Self.maxValueBytes ? nil : .invalid) }
            return .some(typeProblem(value, for: field.pointee) != nil ? .invalid : nil)
        }
    }
    func withLog<Result>(_ name: String, purpose: Purpose, _ body: (Log) -> Result) -> Result? {
        guard let index = logIndex[PurposeAndName(purpose: purpose, name: name)] else { return nil }
        return logs.withUnsafeBufferPointer { body($0[index]) }
    }
    func withCollection<Result>(_ name: String, purpose: Purpose, _ body: (Collection) -> Result) -> Result? {
        guard let index = collectionIndex[PurposeAndName(purpose: purpose, name: name)] else { return nil }
        return collections.withUnsafeBufferPointer { body($0[index]) }
    }
    func lists(_ code: Purpose) -> Bool { withPurpose(code) { _ in true } ?? false }
    /// A schema lists a dozen or so purposes: a scan (each compares a
    /// precomputed code first) is cheaper than hashing the key.
    public func purpose(_ code: Purpose) -> PurposeInfo? { purposes.first { $0.code == code } }

    public func fields(of purpose: Purpose) -> [Field] { fields.filter { $0.purpose == purpose } }
    public func logs(of purpose: Purpose) -> [Log] { logs.filter { $0.purpose == purpose } }
    public func collections(of purpose: Purpose) -> [Collection] { collections.filter { $0.purpose == purpose } }

    /// Purposes a device may ever hold (all but server-only ones).
    public var devicePurposes: [Purpose] { purposes.filter { !$0.serverOnly }.map(\.code) }
    /// A purpose no device may hold: server-only, or not in the schema at all.
    public func isServerOnly(_ code: Purpose) -> Bool { withPurpose(code) { $0.serverOnly } ?? true }

    public func isSensitive(_ code: Purpose) -> Bool { withPurpose(code) { $0.sensitive } ?? false }

    /// A purpose's definition read in place: the policy asks for every segment
    /// of every pull, and `purpose(_:)` copied the definition (its title retained).
    private func withPurpose<Result>(_ code: Purpose, _ body: (PurposeInfo) -> Result) -> Result? {
        purposes.withUnsafeBufferPointer { purposes in
            for index in purposes.indices where purposes[index].code == code { return body(purposes[index]) }
            return nil
        }
    }

    /// The most UTF-8 bytes a field's value may take, whatever its type.
    static let maxValueBytes = 64 * 1024

    /// Checks a value against a field's type; returns a message naming the
    /// problem (never the value itself), or nil when it is fine.
    public func typeProblem(_ value: String, for field: Field) -> String? {
        guard value.utf8.count <= Self.maxValueBytes else { return "\(field.name) takes at most 64 KiB of text" }
        // Empty clears a field (a date entered by mistake, a choice that no longer holds); a
        // worker reference names who is responsible, so it is replaced, never emptied.
        if value.isEmpty, field.type != .workerRef { return nil }
        switch field.type {
        case .text: return nil
        case .workerRef: return value.isEmpty ? "\(field.name) needs a worker name or RESIDENT" : nil
        case .bool: return value == "true" || value == "false" ? nil : "\(field.name) takes true or false"
        case .number: return Self.isDecimal(value) ? nil : "\(field.name) takes a number like 12, -3 or 2.5"
        case .date: return Self.isDate(value) ? nil : "\(field.name) takes a date as YYYY-MM-DD"
        case .choice:
            return field.options.contains(value) ? nil : "\(field.name) takes one of: \(field.options.joined(separator: ", "))"
        }
    }

    /// Digits with an optional sign and decimal point: not `NaN`, `inf`, `1e400` or `0x10`, which
    /// `Double(_:)` takes but no caseworker means and no report can sum.
    static func isDecimal(_ text: String) -> Bool {
        var digits = text.utf8[...]
        if digits.first == UInt8(ascii: "-") || digits.first == UInt8(ascii: "+") { digits = digits.dropFirst() }
        let parts = digits.split(separator: UInt8(ascii: "."), maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, !whole.isEmpty, parts.count == 1 || !parts[1].isEmpty,
              parts.allSatisfy({ $0.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") } }) else { return false }
        return Double(text)?.isFinite == true
    }

    static func isDate(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]) else { return false }
        let days = [31, (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return year >= 1900 && (1...12).contains(month) && day >= 1 && day <= days[month - 1]
    }
}
