/// A type with a compact binary form.
public protocol BinaryCodable {
    func encode(to writer: inout BinaryWriter)
    init(from reader: inout BinaryReader) throws(SyncCoreError)
    /// About how many bytes the binary form takes, so that its buffer is
    /// allocated once instead of growing (and being copied) while written.
    var encodedSizeHint: Int { get }
}

extension BinaryCodable {
    public var encodedSizeHint: Int { 256 }

    /// The binary form of a whole message.
    public func binaryEncoded() -> [UInt8] {
        var writer = BinaryWriter(capacity: encodedSizeHint)
        encode(to: &writer)
        return writer.bytes
    }

    /// Decodes a whole message; trailing bytes are an error.
    public init(binary bytes: [UInt8]) throws(SyncCoreError) {
        var reader = BinaryReader(bytes)
        self = try Self(from: &reader)
        guard reader.isAtEnd else { throw BinaryReader.malformed("trailing bytes") }
    }
}

/// Register values carry either text or position bytes.
protocol RegisterPayload: Hashable, Sendable {
    func encodePayload(to writer: inout BinaryWriter)
    static func decodePayload(from reader: inout BinaryReader) throws(SyncCoreError) -> Self
    func hashPayload(into hasher: inout ElementHasher)
}

extension String: RegisterPayload {
    func hashPayload(into hasher: inout ElementHasher) { hasher.add(self) }
    func encodePayload(to writer: inout BinaryWriter) { writer.string(self) }
    static func decodePayload(from reader: inout BinaryReader) throws(SyncCoreError) -> String { try reader.string() }
}

extension Array: RegisterPayload where Element == UInt8 {
    func hashPayload(into hasher: inout ElementHasher) { hasher.add(self) }
    func encodePayload(to writer: inout BinaryWriter) { writer.data(self) }
    static func decodePayload(from reader: inout BinaryReader) throws(SyncCoreError) -> [UInt8] { try reader.data() }
}
